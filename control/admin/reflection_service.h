// reflection_service.h: gRPC server reflection (the ServerReflectionInfo stream that grpcurl
// and other clients without .proto files use), served in both versions of the protocol:
// grpc.reflection.v1 and grpc.reflection.v1alpha. The two have the same messages in different
// packages, so one template serves both (libgrpc++_reflection serves v1alpha only). Like every
// admin service it is guarded by the admin plane's token rule (call_gate.h), not by itself.
//
//   std::vector<std::string> names = {"brrr.admin.v1.Admin", "grpc.reflection.v1.ServerReflection", ...};
//   ReflectionV1Service v1(names);
//   ReflectionV1AlphaService v1alpha(names);
//   builder.RegisterService(&v1);
//   builder.RegisterService(&v1alpha);
//
// What it answers, from the generated DescriptorPool (every .proto compiled into the binary):
//   list_services                  the service names given to the constructor
//   file_by_filename, file_containing_symbol, file_containing_extension
//                                  the file, then its transitive dependencies not yet sent on
//                                  this stream (see reflection_lookup.h)
//   all_extension_numbers_of_type  the extension numbers of a message type
// An unknown name gets an error_response with NOT_FOUND, a request that asks nothing one with
// INVALID_ARGUMENT; the stream goes on. Every response echoes valid_host (the request's host)
// and original_request. A request whose bytes do not parse as a ServerReflectionRequest ends
// the stream with INVALID_ARGUMENT, as the Admin methods answer one (call_gate.h): the method
// reads raw bytes for that, since gRPC's typed read cannot tell such a request from the end of
// the stream.
//
// Threads: gRPC's; each stream runs on one of them and has its own state.
#ifndef BRRR_CONTROL_REFLECTION_SERVICE_H_
#define BRRR_CONTROL_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "control/admin/unread_streams.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/impl/service_type.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/sync_stream.h"

namespace brrr::control {

// The generated types of one version of the protocol.
struct ReflectionV1 {
  using Api = grpc::reflection::v1::ServerReflection;
  using Request = grpc::reflection::v1::ServerReflectionRequest;
  using Response = grpc::reflection::v1::ServerReflectionResponse;
};
struct ReflectionV1Alpha {
  using Api = grpc::reflection::v1alpha::ServerReflection;
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;
};

// Serves Version::Api's one method, ServerReflectionInfo, under its own name.
template <typename Version>
class ReflectionService final : public grpc::Service {
 public:
  using Request = typename Version::Request;
  using Response = typename Version::Response;
  using Stream = grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

  // `service_names`: fully qualified, as list_services reports them. `unread`: ends the stream
  // of a client that stopped reading the answers (null: nothing does).
  explicit ReflectionService(std::vector<std::string> service_names, UnreadStreams* unread = nullptr);

  // Answers each request in order until the client finishes writing (OK), or until one does not
  // parse (INVALID_ARGUMENT, naming the message expected).
  grpc::Status ServerReflectionInfo(grpc::ServerContext* context, Stream* stream);

 private:
  const std::string method_;  // "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"; gRPC keeps a pointer
  std::vector<std::string> service_names_;
  UnreadStreams* unread_;
};

using ReflectionV1Service = ReflectionService<ReflectionV1>;
using ReflectionV1AlphaService = ReflectionService<ReflectionV1Alpha>;

// Defined in reflection_service.cc, for these two versions only.
extern template class ReflectionService<ReflectionV1>;
extern template class ReflectionService<ReflectionV1Alpha>;

}  // namespace brrr::control

#endif  // BRRR_CONTROL_REFLECTION_SERVICE_H_
