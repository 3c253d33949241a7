#include "tests/testing/backends.h"

#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "runtime/plugin_loader.h"

namespace brrr::testing {

std::vector<std::string> AllBackends() { return {"select", "poll", "epoll", "io_uring"}; }

std::vector<std::string> FaultyBackends() {
  const char* root = std::getenv("TEST_SRCDIR");
  std::string dir = std::string(root != nullptr ? root : ".") + "/brrr/tests/reactors/faults/";
  std::vector<std::string> paths;
  for (const char* name : {"select", "poll", "epoll"}) {
    paths.push_back(dir + name + "/libbrrr_reactor_" + name + ".so");
  }
  return paths;
}

std::string FaultyBackendName::operator()(const ::testing::TestParamInfo<std::string>& info) const {
  std::string file = info.param.substr(info.param.rfind('/') + 1);  // libbrrr_reactor_NAME.so
  return "faulty_" + file.substr(std::string("libbrrr_reactor_").size(),
                                 file.size() - std::string("libbrrr_reactor_").size() - 3);
}

bool IsFaulty(const std::string& backend) { return backend.find("/tests/reactors/faults/") != std::string::npos; }

bool BackendStarts(const std::string& backend, std::string* why) {
  PluginLoader loader = PluginLoader::Default();
  auto plugin = loader.Load(backend);
  if (!plugin.ok()) {
    // A missing or broken plugin is a build problem, not the kernel's: let NewLoop fail.
    return true;
  }
  auto reactor = Reactor::Create(*plugin);
  if (reactor.ok()) return true;
  *why = std::string(reactor.status().message());
  return false;
}

std::unique_ptr<EventLoop> NewLoop(const std::string& backend, EventLoopOptions options) {
  options.backend = backend;
  auto loop = EventLoop::Create(std::move(options));
  EXPECT_TRUE(loop.ok()) << loop.status();
  if (!loop.ok()) return nullptr;
  return *std::move(loop);
}

bool IoUringFeatureExpected(const char* off_env, int major, int minor) {
  const char* off = std::getenv(off_env);
  if (off != nullptr && std::strcmp(off, "0") == 0) return false;
  utsname u{};
  int kernel_major = 0;
  int kernel_minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &kernel_major, &kernel_minor) != 2) return false;
  return kernel_major > major || (kernel_major == major && kernel_minor >= minor);
}

}  // namespace brrr::testing
