// reflection_lookup.h: the answers of one server-reflection stream, looked up in a protobuf
// DescriptorPool (the generated pool: every .proto compiled into the binary). It knows the
// protocol's questions but not its messages, so both grpc.reflection.v1 and v1alpha
// (control/reflection_service.h) use it.
//
//   ReflectionLookup lookup;                       // one per stream
//   absl::StatusOr<std::vector<std::string>> files =
//       lookup.FileContainingSymbol("brrr.admin.v1.Admin.GetStats");
//   // *files: serialized FileDescriptorProtos, brrr/admin/v1/admin.proto first
//
// Files and dependencies: a file answer holds the file asked for, then its transitive
// dependencies that this lookup has not returned before. A client keeps what a stream sent
// it, so a dependency shared by several files crosses the stream once; the file asked for is
// always there, because clients read the first file as the answer (grpc-go does the same).
//
// Errors: NotFound, saying which name was not found and where it was looked for.
//
// Threads: one stream's thread; not thread-safe. Ownership: the pool must outlive it.
#ifndef BRRR_CONTROL_REFLECTION_LOOKUP_H_
#define BRRR_CONTROL_REFLECTION_LOOKUP_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"

namespace brrr::control {

class ReflectionLookup {
 public:
  explicit ReflectionLookup(
      const google::protobuf::DescriptorPool& pool = *google::protobuf::DescriptorPool::generated_pool());

  // By path, as other .proto files import it: "brrr/admin/v1/admin.proto".
  absl::StatusOr<std::vector<std::string>> FileByFilename(const std::string& filename);
  // By fully qualified name of a service, method, message, enum, enum value, field, oneof or
  // extension, nested ones included: "brrr.admin.v1.LoopStats.bytes_in".
  absl::StatusOr<std::vector<std::string>> FileContainingSymbol(const std::string& symbol);
  // The file that declares extension `number` of message type `containing_type`.
  absl::StatusOr<std::vector<std::string>> FileContainingExtension(const std::string& containing_type,
                                                                  int number);

  struct ExtensionNumbers {
    std::string base_type_name;  // fully qualified
    std::vector<int> numbers;    // ascending; empty if the type has no known extensions
  };
  // The extension numbers the pool knows for message type `type`.
  absl::StatusOr<ExtensionNumbers> AllExtensionNumbersOfType(const std::string& type) const;

 private:
  // `file`, then its transitive dependencies not sent before, each serialized once.
  std::vector<std::string> WithNewDependencies(const google::protobuf::FileDescriptor* file);

  const google::protobuf::DescriptorPool& pool_;
  absl::flat_hash_set<std::string> sent_;  // file names
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_REFLECTION_LOOKUP_H_
