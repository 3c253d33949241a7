// What the runtime itself costs per echoed message, with no kernel under it:
//
//   bazel run -c opt //bench:echo_path_bench
//
// A loop on the null backend (bench/null_reactor.c: every connection a client that sends its
// next message as soon as the last one is back, no system call anywhere) runs brrr-echo's
// data path for each connection: a Receiver on the loop's provided buffers hands each chunk
// to the handler, which pushes it on the connection's Sender; the Sender's deferred flush
// submits the send, and its completion comes back through the loop. So a message costs what
// brrr-echo's message costs outside the kernel, minus the server's own bookkeeping
// (server/connection.cc: counters, flow control, throttles): the loop's iteration, completion
// routing, the socket, receiver and sender layers, buffer recycling. On a real server that
// is a few per cent of the CPU beside the kernel's TCP work, too little to tell apart there
// on a machine whose timings drift by 10-50%; here it is all there is. (It still moves by
// about 10% from run to run on a shared VM: compare two builds over a dozen rounds that
// alternate them, as bench/JOURNAL.md's ninth run does.)
//
// Arguments: connections, message bytes (64: ping-pong; 1024: sixteen 64 B messages
// pipelined; 65536: four 16 KiB buffers per message). Reported: messages per second (items)
// and time_per_message (in seconds: 98.9n is 98.9 ns).
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "runtime/async.h"
#include "runtime/receiver.h"
#include "runtime/sender.h"
#include "runtime/socket.h"

namespace brrr {
namespace {

// The null backend, built beside this program (bazel-bin/bench/).
std::string NullPluginPath() {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "libbrrr_reactor_null.so";
  std::string path(exe, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/') + 1) + "libbrrr_reactor_null.so";
}

// Bytes echoed so far, and the loop stopped once a batch's worth went out.
struct EchoCount {
  EventLoop* loop = nullptr;
  uint64_t bytes = 0;
  uint64_t stop_at = 0;
};

// brrr-echo's data path for one connection (server/connection.cc's common case).
class EchoPath final : public Receiver::Handler, public Sender::Handler {
 public:
  EchoPath(Socket socket, EchoCount* count)
      : socket_(std::move(socket)), receiver_(socket_, *this), sender_(socket_, *this), count_(count) {
    receiver_.start();
  }

 private:
  void on_data(Chunk chunk) override { sender_.push(std::move(chunk)); }
  void on_end(absl::Status) override {}
  void on_sent(size_t bytes, size_t) override {
    count_->bytes += bytes;
    if (count_->bytes >= count_->stop_at) count_->loop->stop();
  }
  void on_send_error(absl::Status status) override {
    std::fprintf(stderr, "echo_path_bench: %s\n", std::string(status.message()).c_str());
    std::abort();
  }

  Socket socket_;  // declared first: destroyed last
  Receiver receiver_;
  Sender sender_;
  EchoCount* count_;
};

constexpr int kBatch = 4096;

void BM_EchoPath(benchmark::State& state) {
  const int connections = static_cast<int>(state.range(0));
  const int64_t message_bytes = state.range(1);
  ::setenv("BRRR_NULL_MESSAGE_SIZE", std::to_string(message_bytes).c_str(), 1);
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);

  EventLoopOptions options;  // brrr-echo's defaults: the stall watchdog, 1,024 x 16 KiB buffers
  options.backend = NullPluginPath();
  options.reactor.one_thread = true;
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create(options);
  if (!loop.ok()) {
    state.SkipWithError(std::string(loop.status().message()).c_str());
    return;
  }
  EchoCount count{.loop = loop->get()};
  std::vector<std::unique_ptr<EchoPath>> paths;
  for (int i = 0; i < connections; ++i) {
    // A real descriptor, so that the socket's close has one to close; the null backend never
    // touches it.
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      state.SkipWithError("socketpair failed (descriptor limit?)");
      return;
    }
    ::close(pair[1]);
    paths.push_back(std::make_unique<EchoPath>(Socket::Adopt(**loop, pair[0], "bench"), &count));
  }
  // The loop runs as brrr-echo's does (run_forever), a batch of messages at a time: each
  // benchmark iteration is one message echoed.
  auto run_batch = [&](uint64_t messages) {
    count.stop_at = count.bytes + messages * static_cast<uint64_t>(message_bytes);
    (*loop)->run_forever();
  };
  run_batch(kBatch);  // warm up
  const uint64_t start_bytes = count.bytes;
  while (state.KeepRunningBatch(kBatch)) run_batch(kBatch);
  const double messages = static_cast<double>(count.bytes - start_bytes) / static_cast<double>(message_bytes);
  state.SetItemsProcessed(static_cast<int64_t>(messages));
  state.counters["time_per_message"] =
      benchmark::Counter(messages, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  // The sockets close before the loop: receives still in flight are cancelled, and the
  // loop's destruction finishes closing them (as on the early returns above).
  paths.clear();
}
BENCHMARK(BM_EchoPath)
    ->ArgNames({"connections", "bytes"})
    ->Args({1, 64})
    ->Args({64, 64})
    ->Args({1000, 64})
    ->Args({64, 1024})
    ->Args({4, 65536});

}  // namespace
}  // namespace brrr
