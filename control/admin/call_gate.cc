#include "control/admin/call_gate.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

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

// Checks the rule, then runs the method's own handler, or answers UNAUTHENTICATED.
class GatedHandler final : public MethodHandler {
 public:
  GatedHandler(std::unique_ptr<RpcServiceMethod> method, const CallAuth& auth)
      : method_(std::move(method)), auth_(auth) {}

  void RunHandler(const HandlerParameter& param) override {
    grpc::Status allowed = auth_.Check(*param.server_context);
    if (allowed.ok()) {
      method_->handler()->RunHandler(param);
      return;
    }
    // A unary or server-streaming request was parsed into the call's arena, and only the
    // method's own handler would destroy it: every request of a protobuf service is a
    // MessageLite (its first and only base chain), whose destructor is virtual.
    if (param.request != nullptr) static_cast<google::protobuf::MessageLite*>(param.request)->~MessageLite();
    grpc::internal::ErrorMethodHandler<grpc::StatusCode::UNAUTHENTICATED>(allowed.error_message()).RunHandler(param);
  }

  void* Deserialize(grpc_call* call, grpc_byte_buffer* request, grpc::Status* status, void** data) override {
    return method_->handler()->Deserialize(call, request, status, data);
  }

 private:
  std::unique_ptr<RpcServiceMethod> method_;  // the original, with its handler
  const CallAuth& auth_;
};

}  // namespace

int GuardEveryMethod(grpc::Service& service, const CallAuth& auth) {
  int guarded = 0;
  for (std::unique_ptr<RpcServiceMethod>& slot : MethodsOf(service)) {
    // Generic methods (null) and async ones (no handler) do not occur in the admin plane's
    // services; a synchronous method always has a handler.
    if (slot == nullptr || slot->handler() == nullptr) continue;
    std::unique_ptr<RpcServiceMethod> original = std::move(slot);
    const char* name = original->name();
    grpc::internal::RpcMethod::RpcType type = original->method_type();
    slot = std::make_unique<RpcServiceMethod>(name, type, new GatedHandler(std::move(original), auth));
    ++guarded;
  }
  return guarded;
}

}  // namespace brrr::control
