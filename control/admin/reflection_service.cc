#include "control/admin/reflection_service.h"

#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "control/admin/reflection_lookup.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/method_handler.h"

namespace brrr::control {

namespace {

template <typename Response>
void SetError(const absl::Status& status, Response& response) {
  // absl and gRPC number their status codes alike.
  response.mutable_error_response()->set_error_code(static_cast<int>(status.code()));
  response.mutable_error_response()->set_error_message(std::string(status.message()));
}

template <typename Response>
void SetFiles(absl::StatusOr<std::vector<std::string>> files, Response& response) {
  if (!files.ok()) return SetError(files.status(), response);
  auto* answer = response.mutable_file_descriptor_response();
  for (std::string& file : *files) answer->add_file_descriptor_proto(std::move(file));
}

template <typename Response>
void SetExtensionNumbers(absl::StatusOr<ReflectionLookup::ExtensionNumbers> numbers, Response& response) {
  if (!numbers.ok()) return SetError(numbers.status(), response);
  auto* answer = response.mutable_all_extension_numbers_response();
  answer->set_base_type_name(numbers->base_type_name);
  for (int number : numbers->numbers) answer->add_extension_number(number);
}

template <typename Version>
typename Version::Response Answer(const typename Version::Request& request, const std::vector<std::string>& services,
                                  ReflectionLookup& lookup) {
  using Request = typename Version::Request;
  typename Version::Response response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  switch (request.message_request_case()) {
    case Request::kListServices:
      for (const std::string& name : services) response.mutable_list_services_response()->add_service()->set_name(name);
      break;
    case Request::kFileByFilename:
      SetFiles(lookup.FileByFilename(request.file_by_filename()), response);
      break;
    case Request::kFileContainingSymbol:
      SetFiles(lookup.FileContainingSymbol(request.file_containing_symbol()), response);
      break;
    case Request::kFileContainingExtension:
      SetFiles(lookup.FileContainingExtension(request.file_containing_extension().containing_type(),
                                              request.file_containing_extension().extension_number()),
               response);
      break;
    case Request::kAllExtensionNumbersOfType:
      SetExtensionNumbers(lookup.AllExtensionNumbersOfType(request.all_extension_numbers_of_type()), response);
      break;
    case Request::MESSAGE_REQUEST_NOT_SET:
      SetError(absl::InvalidArgumentError("the request asks nothing: set one of list_services, file_by_filename, "
                                          "file_containing_symbol, file_containing_extension or "
                                          "all_extension_numbers_of_type"),
               response);
      break;
  }
  return response;
}

}  // namespace

template <typename Version>
ReflectionService<Version>::ReflectionService(std::vector<std::string> service_names, UnreadStreams* unread)
    : method_(absl::StrCat("/", Version::Api::service_full_name(), "/ServerReflectionInfo")),
      service_names_(std::move(service_names)),
      unread_(unread) {
  AddMethod(new grpc::internal::RpcServiceMethod(
      method_.c_str(), grpc::internal::RpcMethod::BIDI_STREAMING,
      new grpc::internal::BidiStreamingHandler<ReflectionService, grpc::ByteBuffer, grpc::ByteBuffer>(
          [](ReflectionService* service, grpc::ServerContext* context, Stream* stream) {
            return service->ServerReflectionInfo(context, stream);
          },
          this)));
}

template <typename Version>
grpc::Status ReflectionService<Version>::ServerReflectionInfo(grpc::ServerContext* context, Stream* stream) {
  ReflectionLookup lookup;
  grpc::ByteBuffer received;
  while (stream->Read(&received)) {
    Request request;
    if (!grpc::SerializationTraits<Request>::Deserialize(&received, &request).ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("the request is not a valid ", Request::descriptor()->full_name(),
                                       ": its bytes do not parse as that protobuf message"));
    }
    grpc::ByteBuffer answer;
    bool own_buffer = false;
    grpc::Status serialized = grpc::SerializationTraits<Response>::Serialize(
        Answer<Version>(request, service_names_, lookup), &answer, &own_buffer);
    if (!serialized.ok()) return serialized;
    // A failed write means the client has gone (or stopped reading); there is no one left to answer.
    auto write = [&] { return stream->Write(answer); };
    if (!(unread_ != nullptr ? unread_->Write(*context, "ServerReflectionInfo", write) : write())) break;
  }
  return grpc::Status::OK;
}

template class ReflectionService<ReflectionV1>;
template class ReflectionService<ReflectionV1Alpha>;

}  // namespace brrr::control
