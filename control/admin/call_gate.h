// call_gate.h: the admin plane's access rule (call_auth.h) and its bound on calls in progress
// (call_slots.h), applied once, to every method of every service the admin server registers,
// and to every call of a method none of them has: a new RPC is guarded without anyone
// remembering to, and a caller without the token cannot probe which methods exist.
//
//   CallAuth auth = ...;                  // outlives the services
//   CallSlots slots(64);                  // likewise
//   AdminService admin(...);
//   GuardEveryMethod(admin, auth, &slots);  // before builder.RegisterService(&admin)
//   UnknownMethodGate unknown(auth);        // likewise outlives the server
//   builder.RegisterCallbackGenericService(&unknown);
//
// How: gRPC C++ 1.51 has no supported way to refuse a call before its handler runs on a
// plaintext server (a server interceptor cannot end a call; an AuthMetadataProcessor needs
// secure credentials). So each method's handler is wrapped when the service is registered:
// the wrapper checks the rule first, and a refused call is answered UNAUTHENTICATED by gRPC's
// own error handler; the service never sees it. A call let in then takes a slot for as long as
// its handler runs (a stream's whole life); with none free it is answered RESOURCE_EXHAUSTED
// the same way. The wrapper reaches the service's method table through the standard's
// exemption for explicit template instantiation (call_gate.cc); a gRPC that renamed the table
// would not compile, so the dependency on 1.51's layout cannot fail silently.
//
// Left to gRPC, a call to a method no registered service has is answered UNIMPLEMENTED by
// gRPC's own handler, which no wrapper guards. A generic service is handed every such call
// instead: UnknownMethodGate answers UNAUTHENTICATED when the rule refuses the call, else
// UNIMPLEMENTED. It takes no slot: it answers at once, reading nothing.
//
// Threads: GuardEveryMethod before the service is registered; the wrappers and the gate run on
// gRPC's threads. Ownership: `auth`, `slots` and what `allowed` uses must outlive the service
// (the gate: the server).
#ifndef BRRR_CONTROL_ADMIN_CALL_GATE_H_
#define BRRR_CONTROL_ADMIN_CALL_GATE_H_

#include <functional>
#include <string>
#include <utility>

#include "control/admin/call_auth.h"
#include "control/admin/call_slots.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/impl/service_type.h"

namespace brrr::control {

// Called with grpc::ServerContext::peer() for each call `auth` lets through (AdminListener::
// MarkAllowed: that connection keeps its place). On gRPC's threads.
using CallAllowed = std::function<void(const std::string& peer)>;

// Wraps every method of `service` (generated protobuf services with synchronous methods) so
// that each call first passes `auth` (and `allowed` hears of it, if set), then takes one of
// `slots` (null: no bound). Returns how many methods it guarded.
int GuardEveryMethod(grpc::Service& service, const CallAuth& auth, CallSlots* slots = nullptr,
                     CallAllowed allowed = nullptr);

// Answers every call to a method no registered service has: UNAUTHENTICATED if `auth` refuses
// it, else UNIMPLEMENTED (and `allowed`, if set, hears of it, as of any call let through).
// Register it with ServerBuilder::RegisterCallbackGenericService; one server at most.
class UnknownMethodGate final : public grpc::CallbackGenericService {
 public:
  explicit UnknownMethodGate(const CallAuth& auth, CallAllowed allowed = nullptr)
      : auth_(auth), allowed_(std::move(allowed)) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override;

 private:
  const CallAuth& auth_;
  CallAllowed allowed_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_CALL_GATE_H_
