// seed_demo: runs the tutorial's examples on brrr's runtime and prints what they print.
//
//   bazel run //runtime/examples:seed_demo -- --backend=epoll
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "runtime/cli_usage.h"
#include "runtime/event_loop.h"
#include "runtime/examples/seed_examples.h"
#include "runtime/plugin_loader.h"

ABSL_FLAG(std::string, backend, "auto", "I/O backend: select, poll, epoll, io_uring, auto, or a plugin path");
ABSL_FLAG(std::string, plugin_dir, "", "Directory searched first for backend plugins");
ABSL_FLAG(int, sleep_ms, 500, "How long the examples' sleeps last, in milliseconds (0 to 60000)");

namespace {
constexpr int kMaxSleepMs = 60'000;  // three sleeps run: a minute each is already a long demo
}  // namespace

int main(int argc, char** argv) {
  brrr::SetUsage(
      "Runs the examples of the tutorial brrr grew out of (\"Making your server go Brrrrrrrr\")\n"
      "on brrr's event loop and prints what they print.\n\nUsage: seed_demo [--backend=auto] [--sleep_ms=500]\n"
      "Exit codes: 0 done, 2 bad arguments or no such backend, 6 what it printed could not be written.");
  brrr::ParseFlagsOnly(argc, argv, "seed_demo", /*exit_code=*/2);
  if (absl::Status dir = brrr::PluginLoader::CheckOverrideDir(absl::GetFlag(FLAGS_plugin_dir)); !dir.ok()) {
    std::fprintf(stderr, "seed_demo: --plugin_dir: %s\n", std::string(dir.message()).c_str());
    return 2;
  }
  const int sleep_ms = absl::GetFlag(FLAGS_sleep_ms);
  if (sleep_ms < 0 || sleep_ms > kMaxSleepMs) {
    std::fprintf(stderr, "seed_demo: --sleep_ms=%d: must be from 0 to %d\n", sleep_ms, kMaxSleepMs);
    return 2;
  }
  brrr::EventLoopOptions options;
  options.backend = absl::GetFlag(FLAGS_backend);
  options.plugin_dir = absl::GetFlag(FLAGS_plugin_dir);
  auto loop = brrr::EventLoop::Create(options);
  if (!loop.ok()) {
    std::fprintf(stderr, "seed_demo: %s\n", std::string(loop.status().message()).c_str());
    return 2;
  }
  const brrr::Duration delay = std::chrono::milliseconds(sleep_ms);
  auto print = [](const std::string& line) { std::printf("%s\n", line.c_str()); };
  auto section = [](const char* title) { std::printf("\n### %s\n", title); };

  std::printf("brrr seed demo on the %s backend\n", (*loop)->stats().backend.c_str());
  section("(1) Non-blocking tasks interleave");
  brrr::seed::NonBlockingTasks(**loop, print);
  section("(2) Blocking tasks run one after the other");
  brrr::seed::BlockingTasks(**loop, print);
  section("(3a) A busy-wait sleep holds the loop (watch for the stall report)");
  brrr::seed::BlockingSleep(**loop, delay, print);
  section("(3b) A non-blocking sleep lets the other task run");
  brrr::seed::NonBlockingSleep(**loop, delay, print);
  section("(3c) The same, as coroutines");
  brrr::seed::CoroutineSleeps(**loop, delay, print);
  section("(4) A coroutine runs when it is awaited");
  brrr::seed::CoroutineRunsWhenAwaited(**loop, print);
  section("(5) A future is set later");
  brrr::seed::FutureSetLater(**loop, print);
  section("(6) gather runs three operations concurrently");
  brrr::seed::GatherThree(**loop, print);
  section("(7) A generator is driven by its caller");
  brrr::seed::GeneratorOneToNine(print);

  brrr::LoopStats s = (*loop)->stats();
  std::printf("\nloop: %llu tasks run, %llu stalls, longest task %.3f s <%s>\n",
              static_cast<unsigned long long>(s.tasks_run), static_cast<unsigned long long>(s.stalls),
              static_cast<double>(s.longest_task_ns) / 1e9, s.longest_task.c_str());
  return brrr::ExitCodeAfterStdout("seed_demo", 0);
}
