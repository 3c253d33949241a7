#include "control/admin/reflection_lookup.h"

#include <algorithm>
#include <deque>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"

namespace brrr::control {

namespace protobuf = google::protobuf;

ReflectionLookup::ReflectionLookup(const protobuf::DescriptorPool& pool) : pool_(pool) {}

absl::StatusOr<std::vector<std::string>> ReflectionLookup::FileByFilename(const std::string& filename) {
  const protobuf::FileDescriptor* file = pool_.FindFileByName(filename);
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("no file \"", filename, "\" among the .proto files this server was built with"));
  }
  return WithNewDependencies(file);
}

absl::StatusOr<std::vector<std::string>> ReflectionLookup::FileContainingSymbol(const std::string& symbol) {
  const protobuf::FileDescriptor* file = pool_.FindFileContainingSymbol(symbol);
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("no symbol \"", symbol,
                                            "\" (service, method, message, enum or field; give its fully "
                                            "qualified name) among the .proto files this server was built with"));
  }
  return WithNewDependencies(file);
}

absl::StatusOr<std::vector<std::string>> ReflectionLookup::FileContainingExtension(const std::string& containing_type,
                                                                                  int number) {
  const protobuf::Descriptor* type = pool_.FindMessageTypeByName(containing_type);
  if (type == nullptr) {
    return absl::NotFoundError(absl::StrCat("no message type \"", containing_type,
                                            "\" among the .proto files this server was built with"));
  }
  const protobuf::FieldDescriptor* extension = pool_.FindExtensionByNumber(type, number);
  if (extension == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no extension ", number, " of message type \"", containing_type, "\" is known to this server"));
  }
  return WithNewDependencies(extension->file());
}

absl::StatusOr<ReflectionLookup::ExtensionNumbers> ReflectionLookup::AllExtensionNumbersOfType(
    const std::string& type) const {
  const protobuf::Descriptor* descriptor = pool_.FindMessageTypeByName(type);
  if (descriptor == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no message type \"", type, "\" among the .proto files this server was built with"));
  }
  std::vector<const protobuf::FieldDescriptor*> extensions;
  pool_.FindAllExtensions(descriptor, &extensions);
  ExtensionNumbers result;
  result.base_type_name = descriptor->full_name();
  for (const protobuf::FieldDescriptor* extension : extensions) result.numbers.push_back(extension->number());
  std::sort(result.numbers.begin(), result.numbers.end());
  return result;
}

std::vector<std::string> ReflectionLookup::WithNewDependencies(const protobuf::FileDescriptor* file) {
  std::vector<std::string> serialized;
  std::deque<const protobuf::FileDescriptor*> to_visit = {file};
  // Within one answer, a file reached twice (a diamond of imports) is also sent once.
  absl::flat_hash_set<std::string> visited;
  while (!to_visit.empty()) {
    const protobuf::FileDescriptor* next = to_visit.front();
    to_visit.pop_front();
    if (!visited.insert(next->name()).second) continue;
    bool asked_for = next == file;
    if (sent_.insert(next->name()).second || asked_for) {
      protobuf::FileDescriptorProto proto;
      next->CopyTo(&proto);
      serialized.push_back(proto.SerializeAsString());
    }
    for (int i = 0; i < next->dependency_count(); ++i) to_visit.push_back(next->dependency(i));
  }
  return serialized;
}

}  // namespace brrr::control
