// raw_call.h: a unary gRPC call whose request is raw bytes, for tests of what a server does
// with a request that is not its message. Header-only, test-only.
//
//   grpc::GenericStub raw(channel);
//   grpc::Status s = testing::RawUnaryCall(raw, context.get(), "/brrr.admin.v1.Admin/GetStats", "\xff");
#ifndef BRRR_TESTS_CONTROL_RAW_CALL_H_
#define BRRR_TESTS_CONTROL_RAW_CALL_H_

#include <future>
#include <string>
#include <utility>

#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"

namespace brrr::testing {

// Sends `request` as the request of `method` (e.g. "/grpc.health.v1.Health/Check") and returns
// the call's status.
inline grpc::Status RawUnaryCall(grpc::GenericStub& stub, grpc::ClientContext* context, const std::string& method,
                                 const std::string& request) {
  grpc::Slice slice(request);
  grpc::ByteBuffer sent(&slice, 1);
  grpc::ByteBuffer received;
  std::promise<grpc::Status> done;
  stub.UnaryCall(context, method, grpc::StubOptions(), &sent, &received,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

}  // namespace brrr::testing

#endif  // BRRR_TESTS_CONTROL_RAW_CALL_H_
