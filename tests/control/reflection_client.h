// reflection_client.h: the client side of gRPC server reflection, for tests: one
// ServerReflectionInfo stream, one question at a time, in either version of the protocol
// (control/reflection_service.h's ReflectionV1 / ReflectionV1Alpha).
//
//   ReflectionClient<ReflectionV1> client(channel);
//   auto answer = client.FileContainingSymbol("brrr.admin.v1.Admin");
//   std::vector<FileDescriptorProto> files = Files(*answer);
//   grpc::Status end = client.Finish();
//
// Every call is bounded (10 s deadline for the stream). Threads: one test thread.
#ifndef BRRR_TESTS_CONTROL_REFLECTION_CLIENT_H_
#define BRRR_TESTS_CONTROL_REFLECTION_CLIENT_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "control/admin/reflection_service.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"

namespace brrr::testing {

template <typename Version>
class ReflectionClient {
 public:
  using Request = typename Version::Request;
  using Response = typename Version::Response;

  // `authorization`: the value of the "authorization" metadata ("Bearer s3cret"); none if empty.
  explicit ReflectionClient(const std::shared_ptr<grpc::Channel>& channel, const std::string& authorization = "") {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!authorization.empty()) context_.AddMetadata("authorization", authorization);
    stub_ = Version::Api::NewStub(channel);
    stream_ = stub_->ServerReflectionInfo(&context_);
  }

  // The answer, or nullopt once the stream has ended (see Finish for why).
  std::optional<Response> Ask(const Request& request) {
    if (!stream_->Write(request)) return std::nullopt;
    Response response;
    if (!stream_->Read(&response)) return std::nullopt;
    return response;
  }
  std::optional<Response> ListServices() {
    Request request;
    request.set_list_services("");
    return Ask(request);
  }
  std::optional<Response> FileByFilename(const std::string& filename) {
    Request request;
    request.set_file_by_filename(filename);
    return Ask(request);
  }
  std::optional<Response> FileContainingSymbol(const std::string& symbol) {
    Request request;
    request.set_file_containing_symbol(symbol);
    return Ask(request);
  }
  std::optional<Response> FileContainingExtension(const std::string& containing_type, int number) {
    Request request;
    request.mutable_file_containing_extension()->set_containing_type(containing_type);
    request.mutable_file_containing_extension()->set_extension_number(number);
    return Ask(request);
  }
  std::optional<Response> AllExtensionNumbersOfType(const std::string& type) {
    Request request;
    request.set_all_extension_numbers_of_type(type);
    return Ask(request);
  }

  // Ends the stream and returns how the server ended it.
  grpc::Status Finish() {
    stream_->WritesDone();
    return stream_->Finish();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<typename Version::Api::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> stream_;
};

// The service names of a list_services answer, in order.
template <typename Response>
std::vector<std::string> ServiceNames(const Response& response) {
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) names.push_back(service.name());
  return names;
}

// The files of a file_descriptor_response, parsed (a file that does not parse is left empty
// and fails the caller's expectations on its name).
template <typename Response>
std::vector<google::protobuf::FileDescriptorProto> Files(const Response& response) {
  std::vector<google::protobuf::FileDescriptorProto> files;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    files.emplace_back();
    if (!files.back().ParseFromString(bytes)) files.back().Clear();
  }
  return files;
}

// Their names, in order.
template <typename Response>
std::vector<std::string> FileNames(const Response& response) {
  std::vector<std::string> names;
  for (const auto& file : Files(response)) names.push_back(file.name());
  return names;
}

// Both versions of the protocol, for typed tests: TYPED_TEST_SUITE(T, ReflectionVersions,
// ReflectionVersionNames) names the cases ".../v1" and ".../v1alpha".
using ReflectionVersions = ::testing::Types<control::ReflectionV1, control::ReflectionV1Alpha>;
class ReflectionVersionNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, control::ReflectionV1> ? "v1" : "v1alpha";
  }
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_CONTROL_REFLECTION_CLIENT_H_
