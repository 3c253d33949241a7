#include "control/admin/call_gate.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/method_handler.h"

namespace brrr::control {
namespace {

using grpc::internal::MethodHandler;
using grpc::internal::RpcServiceMethod;
using MethodTable = std::vector<std::unique_ptr<RpcServiceMethod>>;

// grpc::Service keeps its methods in a private member that only grpc::Server may read. An
// explicit instantiation may name a private member ([temp.spec.general]/6), and the friend it
// defines hands the member to MethodsOf.
MethodTable& MethodsOf(grpc::Service& service);

template <MethodTable grpc::Service::*Table>
struct MethodTableAccess {
  friend MethodTable& MethodsOf(grpc::Service& service) { return service.*Table; }
};
template struct MethodTableAccess<&grpc::Service::methods_>;

// The rule for one call: OK (and `allowed` hears of the call, if set), or UNAUTHENTICATED.
grpc::Status Admit(const grpc::ServerContextBase& context, const CallAuth& auth, const CallAllowed& allowed) {
  grpc::Status admitted = auth.Check(context);
  if (admitted.ok() && allowed) allowed(context.peer());
  return admitted;
}

// Checks the rule and takes a slot, then runs the method's own handler; or answers
// UNAUTHENTICATED or RESOURCE_EXHAUSTED.
class GatedHandler final : public MethodHandler {
 public:
  GatedHandler(std::unique_ptr<RpcServiceMethod> method, const CallAuth& auth, CallSlots* slots, CallAllowed allowed)
      : method_(std::move(method)),
        request_type_(RequestTypeOf(method_->name())),
        auth_(auth),
        slots_(slots),
        allowed_(std::move(allowed)) {}

  void RunHandler(const HandlerParameter& param) override {
    grpc::Status admitted = Admit(*param.server_context, auth_, allowed_);
    if (!admitted.ok()) {
      Refuse<grpc::StatusCode::UNAUTHENTICATED>(param, admitted.error_message());
      return;
    }
    // Held until the handler returns (a stream's whole life).
    std::optional<CallSlots::Slot> slot = slots_ != nullptr ? slots_->TryTake() : std::optional<CallSlots::Slot>();
    if (slots_ != nullptr && !slot.has_value()) {
      Refuse<grpc::StatusCode::RESOURCE_EXHAUSTED>(
          param, absl::StrCat("the admin plane is at its limit of ", slots_->limit(),
                              " calls in progress (--admin_max_calls; a stream counts until it ends); "
                              "try again when one has ended"));
      return;
    }
    method_->handler()->RunHandler(param);
  }

  // gRPC answers a request that does not parse INTERNAL, with protobuf's list of missing
  // required fields as the message: empty in proto3. It is the caller's to fix, so it is
  // INVALID_ARGUMENT, saying what was expected. RunHandler sends it once the rule has let the
  // call in (a caller without the token learns nothing of its request).
  void* Deserialize(grpc_call* call, grpc_byte_buffer* request, grpc::Status* status, void** data) override {
    const bool carried = request != nullptr;
    void* parsed = method_->handler()->Deserialize(call, request, status, data);
    if (!status->ok()) {
      *status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             carried ? absl::StrCat("the request is not a valid ", request_type_,
                                                    ": its bytes do not parse as that protobuf message")
                                     : absl::StrCat("the call carried no request (a ", request_type_, ")"));
    }
    return parsed;
  }

 private:
  // Answers the call `code` with `message` through gRPC's own error handler.
  template <grpc::StatusCode code>
  static void Refuse(const HandlerParameter& param, const std::string& message) {
    // A unary or server-streaming request was parsed into the call's arena, and only the
    // method's own handler would destroy it: every request of a protobuf service is a
    // MessageLite (its first and only base chain), whose destructor is virtual.
    if (param.request != nullptr) static_cast<google::protobuf::MessageLite*>(param.request)->~MessageLite();
    grpc::internal::ErrorMethodHandler<code>(message).RunHandler(param);
  }

  // "brrr.admin.v1.SetThrottleRequest" for "/brrr.admin.v1.Admin/SetThrottle", from the
  // protobuf descriptors linked in; "message of its method" if they do not know it.
  static std::string RequestTypeOf(const char* grpc_method) {
    std::string name = absl::StrReplaceAll(absl::StripPrefix(grpc_method, "/"), {{"/", "."}});
    const google::protobuf::MethodDescriptor* method =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name);
    return method != nullptr ? method->input_type()->full_name() : absl::StrCat("message of ", grpc_method);
  }

  std::unique_ptr<RpcServiceMethod> method_;  // the original, with its handler
  const std::string request_type_;
  const CallAuth& auth_;
  CallSlots* slots_;  // null: no bound
  CallAllowed allowed_;
};

// Ends its call with `status` as soon as it is made, reading nothing of it.
class AnswerAtOnce final : public grpc::ServerGenericBidiReactor {
 public:
  explicit AnswerAtOnce(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerGenericBidiReactor* UnknownMethodGate::CreateReactor(grpc::GenericCallbackServerContext* context) {
  grpc::Status admitted = Admit(*context, auth_, allowed_);
  if (!admitted.ok()) return new AnswerAtOnce(admitted);
  // Word for word gRPC's own answer, which a caller with the token got before.
  return new AnswerAtOnce(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, ""));
}

int GuardEveryMethod(grpc::Service& service, const CallAuth& auth, CallSlots* slots, CallAllowed allowed) {
  int guarded = 0;
  for (std::unique_ptr<RpcServiceMethod>& slot : MethodsOf(service)) {
    // Generic methods (null) and async ones (no handler) do not occur in the admin plane's
    // services; a synchronous method always has a handler.
    if (slot == nullptr || slot->handler() == nullptr) continue;
    std::unique_ptr<RpcServiceMethod> original = std::move(slot);
    const char* name = original->name();
    grpc::internal::RpcMethod::RpcType type = original->method_type();
    slot = std::make_unique<RpcServiceMethod>(name, type, new GatedHandler(std::move(original), auth, slots, allowed));
    ++guarded;
  }
  return guarded;
}

}  // namespace brrr::control
