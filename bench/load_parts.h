// load_parts.h: what brrr-bench's three load engines share; internal to //bench:load_generator.
//
// The reactor engine (load_generator.cc) runs each connection as a brrr task on the runtime's
// event loops; the busy-polling engine (busy_poll_load.cc) spins over non-blocking sockets on
// plain threads and never sleeps in the kernel; the ring engine (ring_load.cc) spins the same
// way on one io_uring per thread. The two spinning engines share their connections' state and
// ending (SpinningConnection) and their runs (SpinningRun). All send the same bytes (StreamPattern), check
// every byte that comes back and count it the same way (TakeEcho into Counters), and are
// watched from the calling thread by the same Supervise (progress, the end of the run, the
// finish timeout) and summed by Summarize, so their reports mean the same.
//
//   Shared shared(o.size);                       // the pattern, the address, stop and abort
//   std::vector<Counters*> counters = ...;       // one per engine thread
//   int64_t start = MonotonicNanos();
//   shared.Measure(start, o);                    // the warm-up, then the measured period
//   ... start the engine's threads ...
//   int64_t stopped_at = Supervise(o, shared, counters, start, hooks, on_progress);
//   ... join them ...
//   LoadResult r = Summarize(shared, counters, stopped_at);
//
// Threads: each Counters is written by one engine thread and read by any (SingleWriter); the
// stop and abort flags of Shared are set by the supervising thread and read by the engines.
#ifndef BRRR_BENCH_LOAD_PARTS_H_
#define BRRR_BENCH_LOAD_PARTS_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/load_generator.h"
#include "runtime/single_writer.h"
#include "runtime/socket_address.h"

namespace brrr::bench {

constexpr uint32_t kMaxMessage = kSizeRange.max;

// A pipelined window is sent in one write of at most about this many bytes.
constexpr size_t kMaxBatchBytes = 64 * 1024;

// The bytes each connection sends, as one endless stream of random bytes: byte k of connection
// c is pattern[(c * 104729 + k) % kPeriod]. The period is prime, so it lines up with no buffer
// or message size: bytes that come back moved, repeated or dropped do not match. The buffer
// repeats its start past the period, so any `window` bytes of a stream are one contiguous slice:
// a pipelined batch is sent, and a receive is checked, in place with one call.
class StreamPattern {
 public:
  static constexpr size_t kPeriod = 1'048'573;

  explicit StreamPattern(size_t window);

  // The next `window` bytes of connection's stream from `offset` on.
  const char* at(int connection, uint64_t offset) const {
    return bytes_.data() + (static_cast<uint64_t>(connection) * 104729 + offset) % kPeriod;
  }

 private:
  std::vector<char> bytes_;
};

// The receive buffer for a message size: a whole message, within [4 KiB, 1 MiB].
inline size_t ReceiveBufferSize(uint32_t size) {
  return std::min<size_t>(std::max<uint32_t>(size, 4096), 1 << 20);
}

// How many messages go out in one write when `room` of the window is free: without a rate the
// whole free window (up to about kMaxBatchBytes), as a pipelining client writes its pipeline,
// so the load generator is not what limits a pipelined run; with a rate, one at a time.
inline uint64_t BatchMessages(const LoadOptions& o, uint64_t room) {
  if (o.rate > 0 || room <= 1) return 1;
  return std::min<uint64_t>(room, kMaxBatchBytes / o.size + 1);
}

// What every engine thread shares: the stream pattern, the stop signals, and where to report.
struct Shared {
  explicit Shared(uint32_t size)
      : pattern(kMaxBatchBytes + std::max<size_t>(size, ReceiveBufferSize(size))) {}

  const StreamPattern pattern;
  SocketAddress address;
  std::atomic<bool> stop{false};   // the measured period is over: send no new message
  std::atomic<bool> abort{false};  // the finish timeout passed (the busy engine reads it)
  int64_t measure_from_ns = 0;     // end of warm-up
  // The end of the measured period: --duration after the warm-up, or sooner when the run is
  // stopped (Supervise). Echoes that arrive after it are checked but not counted.
  std::atomic<int64_t> measure_until_ns{0};
  double server_busy = -1;         // Supervise: LoadResult::server_busy
  std::mutex error_mu;
  std::string first_error;  // guarded by error_mu

  // The run starts now: the warm-up, then the measured period.
  void Measure(int64_t start_ns, const LoadOptions& o) {
    measure_from_ns = start_ns + o.warmup.count();
    measure_until_ns.store(measure_from_ns + o.duration.count());
  }

  void error(const std::string& e) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.empty()) first_error = e;
  }
};

// One engine thread's counters (written by that thread, read by the supervising one).
struct Counters {
  SingleWriter<uint64_t> messages;
  SingleWriter<uint64_t> bytes;
  SingleWriter<uint64_t> mismatches;
  SingleWriter<uint64_t> lost;
  SingleWriter<uint64_t> connect_failures;
  SingleWriter<uint64_t> clean_closes;
  SingleWriter<uint64_t> resets;
  SingleWriter<uint64_t> refused;
  SingleWriter<uint64_t> resent;
  SingleWriter<uint64_t> reconnects;
  SingleWriter<uint64_t> bytes_sent;  // every byte the kernel took, warm-up and resends included
  SingleWriter<int64_t> connected;
  SingleWriter<int64_t> finished;  // connections done (either way)
  int expected = 0;                // connections this thread runs: finished reaches it at the end
  LatencyHistogram latency;
};

// A connection's receiving side: how much of its echo came back checked, and when each message
// still in flight was sent.
struct EchoProgress {
  explicit EchoProgress(int depth) : sent_at(static_cast<size_t>(depth)) {}

  uint64_t received = 0;         // messages whose echo came back whole
  uint64_t received_bytes = 0;   // echoed bytes checked, on the connection's stream
  std::vector<int64_t> sent_at;  // by message number modulo depth
};

// A connection's sending side: the next batch of its window, and how much of it the kernel
// has not taken yet. One engine thread owns it.
struct SendWindow {
  uint64_t sent = 0;         // messages put in a batch so far
  uint64_t unsent_from = 0;  // the stream offset of the batch's first byte the kernel has not taken
  size_t unsent = 0;         // bytes of the batch the kernel has not taken yet

  // With the last batch all taken, room in the window and not `stopping`, starts the next batch
  // (BatchMessages) and stamps its messages' send time in `echo`. True if bytes wait to go out.
  bool refill(const LoadOptions& o, EchoProgress& echo, bool stopping);
  // The kernel took n more bytes of the batch.
  void took(size_t n) {
    unsent -= n;
    unsent_from += n;
  }
  // Every message sent came back whole: the normal end once the write side is shut.
  bool all_echoed(const LoadOptions& o, const EchoProgress& echo) const {
    return echo.received == sent && echo.received_bytes == echo.received * o.size;
  }
};

// One connection of a spinning engine, the part both engines share: its socket, connected
// blocking; what came back (echo_) and its window (window_); how it ends (an end of stream
// after every reply, a failure, the finish timeout). The engine's subclass does the receiving
// and sending. Owned and run by one engine thread.
class SpinningConnection {
 public:
  SpinningConnection(const LoadOptions& o, Shared& shared, Counters& counters, int id)
      : o_(o), shared_(shared), counters_(counters), id_(id), echo_(o.depth) {}
  virtual ~SpinningConnection() { close_socket(); }
  SpinningConnection(const SpinningConnection&) = delete;
  SpinningConnection& operator=(const SpinningConnection&) = delete;

  // Connects (blocking, up to o.connect_timeout, TCP_NODELAY); false, counted and reported, if
  // it could not (the connection is then done).
  bool connect();
  bool done() const { return done_; }
  int fd() const { return fd_; }
  // The finish timeout passed with replies still missing.
  void abort() {
    if (!done_) fail("no echo within the finish timeout");
  }

 protected:
  // Checks and counts `got` bytes that came back; false if they differ (the connection failed).
  bool take(const char* data, size_t got);
  // The server ended the stream: the normal end once the write side is shut and every reply
  // came back whole, a failure otherwise.
  void end_of_stream();
  // Shuts the write side: the server sends back what it still holds, then closes.
  void half_close();
  void fail(const std::string& why);
  // Called once, when the connection becomes done.
  virtual void on_done() {}

  const LoadOptions& o_;
  Shared& shared_;
  Counters& counters_;
  const int id_;
  int fd_ = -1;
  EchoProgress echo_;
  SendWindow window_;
  bool write_shut_ = false;
  bool done_ = false;

 private:
  void finish();
  void fail_with(const std::string& error);
  // Shut down before the close: a receive armed in an io_uring holds the socket open past
  // close(), and shutting it down ends that receive and the connection now.
  void close_socket();
};

// Checks `got` bytes that came back on connection `id` against what it sent, then counts the
// messages they complete (after the warm-up: messages, bytes, round-trip latency). At the first
// wrong byte it counts a mismatch and returns the error that says which message and byte; the
// caller ends the connection.
absl::Status TakeEcho(const LoadOptions& o, const Shared& shared, Counters& counters, int id, const char* data,
                      size_t got, EchoProgress& echo);

// How Supervise reaches an engine's threads; each hook may be empty.
struct EngineHooks {
  std::function<void()> wake;               // after `stop` is set: idle threads must see it
  std::function<void()> abort;              // the finish timeout passed with replies missing
  std::function<void(size_t)> on_finished;  // counters[i] has finished all its connections
};

// Watches a run from the calling thread until every connection has finished: calls
// `on_progress` every o.progress_every, ends the measured period at its end (or when
// o.interrupted is set) by setting shared.stop, and past o.finish_timeout calls hooks.abort.
// With o.server_pid, reads the server's CPU time as the measured period starts and ends, into
// shared.server_busy. Returns when the measured period ended.
int64_t Supervise(const LoadOptions& o, Shared& shared, const std::vector<Counters*>& counters, int64_t start,
                  const EngineHooks& hooks, const std::function<void(const LoadProgress&)>& on_progress);

// The result of a finished run, summed over its threads' counters (backend left empty).
LoadResult Summarize(Shared& shared, const std::vector<Counters*>& counters, int64_t stopped_at);

// A run of one of the spinning engines: o.threads threads, thread t with counters(t) and the
// connections i with i % o.threads == t. Its threads see shared().stop and abort themselves,
// so Supervise needs no hooks.
//
//   SpinningRun run(o);
//   ... build each thread's connections with run.shared() and run.counters(t) ...
//   return run.Run([&](size_t t) { /* spin over thread t's connections */ }, "--busy_poll", "busy-poll",
//                  on_progress);
class SpinningRun {
 public:
  explicit SpinningRun(const LoadOptions& o);

  Shared& shared() { return shared_; }
  // Thread t's counters; counts connection i (i % threads == t) as expected by that thread.
  Counters& counters(size_t t) { return *counters_[t]; }
  Counters& expect(int connection);

  // Starts the threads (each runs `body(t)`), watches the run, joins them and sums it up as
  // `backend`. Fails if a thread cannot be started (`engine`, its flag, says whose).
  absl::StatusOr<LoadResult> Run(const std::function<void(size_t)>& body, const char* engine, const char* backend,
                                 const std::function<void(const LoadProgress&)>& on_progress);

 private:
  const LoadOptions& o_;
  Shared shared_;
  std::vector<std::unique_ptr<Counters>> counters_;
  std::vector<Counters*> counter_list_;
};

}  // namespace brrr::bench

#endif  // BRRR_BENCH_LOAD_PARTS_H_
