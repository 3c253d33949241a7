#include "tests/testing/backends.h"

#include "absl/status/status.h"
#include "runtime/plugin_loader.h"

namespace brrr::testing {

std::vector<std::string> AllBackends() { return {"select", "poll", "epoll", "io_uring"}; }

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

}  // namespace brrr::testing
