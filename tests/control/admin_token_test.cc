// With --admin_token_file, every call of every service the admin plane serves needs
// `authorization: Bearer <token>`, exactly once. The methods are not listed here: they come
// from the server (reflection lists its services, their descriptors list the methods), and
// each is called as a generic call, streams included, so a new RPC is covered the day it is
// added, and one left without the check fails this test. A method no service has is refused
// the same way: a caller without the token cannot tell which methods exist.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/reflection_client.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptorProto;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

constexpr char kToken[] = "s3cret-token";

// How a call ended: its status, and whether the server sent a message first (it let the call in).
struct Outcome {
  grpc::Status status;
  bool answered = false;
};

// Calls `path` as a generic streaming call (which fits every kind of method): one empty
// request message, then half-close, then read and finish. `authorization`: the values of the
// "authorization" metadata to send (none, one, or several). Bounded by a 10 s deadline.
Outcome CallGeneric(const std::shared_ptr<grpc::Channel>& channel, const std::string& path,
                    const std::vector<std::string>& authorization) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  for (const std::string& value : authorization) context.AddMetadata("authorization", value);
  auto next = [&cq](intptr_t expected) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), expected);
    return ok;
  };
  Outcome outcome;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call = stub.PrepareCall(&context, path, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  next(1);
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);  // an empty message: valid for every request type
  call->Write(request, reinterpret_cast<void*>(2));
  next(2);
  call->WritesDone(reinterpret_cast<void*>(3));
  next(3);
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  outcome.answered = next(4);
  if (outcome.answered) context.TryCancel();  // a stream let in would go on
  call->Finish(&outcome.status, reinterpret_cast<void*>(5));
  next(5);
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return outcome;
}

// Adds `name` and the files it imports (fetched through reflection when missing) to `pool`.
void AddFile(const std::string& name, std::map<std::string, FileDescriptorProto>& files,
             testing::ReflectionClient<control::ReflectionV1>& reflection, DescriptorPool& pool) {
  if (pool.FindFileByName(name) != nullptr) return;
  if (files.count(name) == 0) {
    auto answer = reflection.FileByFilename(name);
    ASSERT_TRUE(answer.has_value()) << name;
    for (FileDescriptorProto& f : testing::Files(*answer)) files[f.name()] = f;
    ASSERT_EQ(files.count(name), 1u) << "reflection did not send " << name;
  }
  for (const std::string& dependency : files[name].dependency()) AddFile(dependency, files, reflection, pool);
  ASSERT_NE(pool.BuildFile(files[name]), nullptr) << name;
}

// The authorization metadata of a call that does not carry the token: none, a wrong token,
// another scheme, the token twice..., each with what it is.
std::vector<std::pair<std::string, std::vector<std::string>>> Refusals() {
  const std::string bearer = std::string("Bearer ") + kToken;
  return {
      {"no token", {}},
      {"a wrong token", {"Bearer wrong-token"}},
      {"the token and a byte more", {bearer + "X"}},
      {"the token but its last byte", {bearer.substr(0, bearer.size() - 1)}},
      {"another scheme", {std::string("Basic ") + kToken}},
      {"the token twice", {bearer, bearer}},
  };
}

// Paths no service of the admin plane has: an unknown method of each kind of service, and an
// unknown service.
constexpr const char* kUnknownMethods[] = {
    "/brrr.admin.v1.Admin/NoSuchMethod",
    "/grpc.health.v1.Health/NoSuchMethod",
    "/grpc.reflection.v1.ServerReflection/NoSuchMethod",
    "/no.such.Service/Method",
};

using AdminTokenTest = testing::AdminFixture;

TEST_F(AdminTokenTest, EveryMethodOfEveryServiceRefusesACallWithoutTheToken) {
  SetToken(kToken);
  Start();
  const std::string bearer = std::string("Bearer ") + kToken;

  // The services and their methods, from the server itself.
  testing::ReflectionClient<control::ReflectionV1> reflection(channel_, bearer);
  auto listed = reflection.ListServices();
  ASSERT_TRUE(listed.has_value());
  std::vector<std::string> services = testing::ServiceNames(*listed);
  std::set<std::string> service_set(services.begin(), services.end());
  for (const char* expected : {"brrr.admin.v1.Admin", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                               "grpc.reflection.v1alpha.ServerReflection"}) {
    EXPECT_EQ(service_set.count(expected), 1u) << expected << " is not listed";
  }
  DescriptorPool pool;
  std::map<std::string, FileDescriptorProto> files;
  std::vector<const MethodDescriptor*> methods;
  for (const std::string& service : services) {
    auto answer = reflection.FileContainingSymbol(service);
    ASSERT_TRUE(answer.has_value()) << service;
    std::vector<FileDescriptorProto> defining = testing::Files(*answer);
    ASSERT_FALSE(defining.empty()) << service;
    for (FileDescriptorProto& f : defining) files[f.name()] = f;
    AddFile(defining.front().name(), files, reflection, pool);
    const ServiceDescriptor* descriptor = pool.FindServiceByName(service);
    ASSERT_NE(descriptor, nullptr) << service;
    EXPECT_GT(descriptor->method_count(), 0) << service;
    for (int i = 0; i < descriptor->method_count(); ++i) methods.push_back(descriptor->method(i));
  }
  EXPECT_TRUE(reflection.Finish().ok());
  // The server lists every method this build's Admin has (a method served but left out of
  // reflection would escape the walk below).
  const ServiceDescriptor* compiled = admin::GetStatsRequest::descriptor()->file()->FindServiceByName("Admin");
  ASSERT_NE(compiled, nullptr);
  const ServiceDescriptor* served = pool.FindServiceByName(compiled->full_name());
  ASSERT_NE(served, nullptr);
  for (int i = 0; i < compiled->method_count(); ++i) {
    EXPECT_NE(served->FindMethodByName(compiled->method(i)->name()), nullptr) << compiled->method(i)->full_name();
  }

  // Every method, called without the token, with a wrong one, with another scheme, and with
  // the right one twice: UNAUTHENTICATED, and nothing sent back.
  size_t calls = 0;
  for (const MethodDescriptor* method : methods) {
    std::string path = "/" + method->service()->full_name() + "/" + method->name();
    std::string kind = method->client_streaming() ? (method->server_streaming() ? "bidi stream" : "client stream")
                                                  : (method->server_streaming() ? "server stream" : "unary");
    for (const auto& [what, authorization] : Refusals()) {
      Outcome outcome = CallGeneric(channel_, path, authorization);
      EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << path << " (" << kind << ") with " << what << ": " << outcome.status.error_message();
      EXPECT_FALSE(outcome.answered) << path << " (" << kind << ") with " << what << " sent a message";
      ++calls;
    }
  }
  EXPECT_GE(methods.size(), static_cast<size_t>(compiled->method_count()) + 4);  // + health (2), reflection (2)
  std::printf("%zu methods of %zu services, %zu calls refused\n", methods.size(), services.size(), calls);

  // None of them did anything: the server still serves, not draining, with no injection.
  admin::Stats stats = Stats();
  EXPECT_FALSE(stats.draining());
  EXPECT_EQ(stats.injections_size(), 0);
}

// A method no service has answered UNIMPLEMENTED before the token was looked at, so a caller
// without it could probe which methods exist. It is refused like any other without the token,
// and only a call with the token hears that the method does not exist.
TEST_F(AdminTokenTest, AMethodNoServiceHasIsRefusedWithoutTheTokenAndUnimplementedWithIt) {
  SetToken(kToken);
  Start();
  for (const std::string path : kUnknownMethods) {
    for (const auto& [what, authorization] : Refusals()) {
      Outcome outcome = CallGeneric(channel_, path, authorization);
      EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
          << path << " with " << what << ": " << outcome.status.error_message();
      EXPECT_FALSE(outcome.answered) << path << " with " << what << " sent a message";
    }
    Outcome outcome = CallGeneric(channel_, path, {std::string("Bearer ") + kToken});
    EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << path << " with the token: " << outcome.status.error_message();
    EXPECT_FALSE(outcome.answered) << path << " with the token sent a message";
  }
  // The refusals did not cost the server its service.
  EXPECT_FALSE(Stats().draining());
}

// Without a token file every caller is let in, to hear UNIMPLEMENTED for a method no service
// has, whatever authorization it sends.
TEST_F(AdminTokenTest, WithoutATokenFileAMethodNoServiceHasIsUnimplemented) {
  Start();
  for (const std::string path : kUnknownMethods) {
    for (const auto& [what, authorization] : Refusals()) {
      Outcome outcome = CallGeneric(channel_, path, authorization);
      EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
          << path << " with " << what << ": " << outcome.status.error_message();
      EXPECT_FALSE(outcome.answered) << path << " with " << what << " sent a message";
    }
  }
}

}  // namespace
}  // namespace brrr
