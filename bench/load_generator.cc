#include "bench/load_generator.h"

#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_acked (glibc's lacks it)
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/busy_poll_load.h"
#include "bench/load_parts.h"
#include "bench/process_cpu.h"
#include "bench/ring_load.h"
#include "runtime/async.h"
#include "runtime/socket.h"

namespace brrr::bench {
namespace {

using std::chrono::milliseconds;

// A paced connection waits for its next message in slices this long, looking for the end of the run.
constexpr int64_t kPaceSliceNs = 10'000'000;

// One event loop and the counters of its connections.
struct LoopState : Counters {
  std::unique_ptr<EventLoop> loop;
};

// Of `bytes_out` written to the TCP socket `fd`, those its peer's kernel took. All of them,
// unless the peer reset the connection before this side closed it: a draining server closes a
// connection kDrainLinger after its drain deadline, and what a client stalled for longer sends
// it next is answered with a reset, which the client may never notice (it reads the end of
// stream queued before it and sends those messages again elsewhere). Then only the bytes the
// peer acknowledged reached it (tcpi_bytes_acked, less the SYN it counts too).
uint64_t BytesThePeerTook(int fd, uint64_t bytes_out) {
  constexpr uint8_t kClosed = 7;  // TCP_CLOSE in the kernel's states: reset, or never connected
  tcp_info info{};
  socklen_t size = sizeof info;
  constexpr size_t kWithBytesAcked = offsetof(tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0 || size < kWithBytesAcked ||
      info.tcpi_state != kClosed || info.tcpi_bytes_acked == 0) {
    return bytes_out;
  }
  return std::min<uint64_t>(bytes_out, info.tcpi_bytes_acked - 1);
}

// Whether a send failed with EPIPE: the peer had closed first, and this side's send after its
// end of stream drew the reset (the kernel reports a reset that comes after the peer's end of
// stream so; one on an open connection is ECONNRESET). What the peer sent before its end of
// stream, and the end itself, can still be read.
bool RefusedAfterThePeersEnd(const absl::Status& send) {
  return absl::StrContains(send.message(), std::strerror(EPIPE));
}

class Connection {
 public:
  Connection(const LoadOptions& o, Shared& shared, LoopState& ls, int id, double rate)
      : o_(o), shared_(shared), ls_(ls), id_(id), rate_(rate), echo_(o.depth), space_(*ls.loop) {}

  Task<> run() {
    absl::StatusOr<Socket> connected = co_await wait_for(ConnectTo(*ls_.loop, shared_.address), o_.connect_timeout);
    if (!connected.ok()) {
      ls_.connect_failures.add(1);
      shared_.error(absl::StrCat("connection ", id_, ": ", connected.status().message()));
      ls_.finished.add(1);
      co_return;
    }
    socket_ = std::move(*connected);
    start_ns_ = MonotonicNanos();
    for (;;) {
      ls_.connected.add(1);
      ended_ = Ending::kNone;
      sending_done_ = false;
      echo_.received_bytes = echo_.received * o_.size;
      co_await gather(send_loop(), receive_loop());
      close_counting_sent();
      ls_.connected.add(-1);
      if (ended_ == Ending::kNone || failed_ || aborted_) break;  // the normal end, or a failure
      // Ended by the server (--reconnect): what had not come back whole is sent again.
      ls_.resent.add(sent_ - echo_.received);
      resend_until_ = std::max(resend_until_, sent_);
      sent_ = echo_.received;
      if (shared_.stop.load() && sent_ >= resend_until_) break;  // nothing left to send or check
      if (!co_await reconnect()) break;
      ls_.reconnects.add(1);
    }
    ls_.finished.add(1);
  }

  // The finish timeout passed with replies still missing: fail the pending operations.
  void abort() {
    if (failed_) return;
    aborted_ = true;
    close_counting_sent();
  }

  LoopState& loop_state() { return ls_; }

 private:
  // How a connection ended before the run did (--reconnect only).
  enum class Ending { kNone, kCleanClose, kReset };

  // Sends while there is room in the window (and, with a rate, when each message is due).
  // Past the end of the run it still sends again what a closed connection left unanswered.
  Task<> send_loop() {
    while (!failed_ && ended_ == Ending::kNone) {
      if (shared_.stop.load(std::memory_order_relaxed) && sent_ >= resend_until_) break;
      if (sent_ - echo_.received >= static_cast<uint64_t>(o_.depth)) {
        space_.clear();
        co_await space_.wait();
        continue;
      }
      int64_t due = MonotonicNanos();
      if (rate_ > 0 && sent_ >= resend_until_) {
        due = start_ns_ + static_cast<int64_t>(static_cast<double>(sent_) * 1e9 / rate_);
        // In slices, so that the end of the run (or a signal) does not wait for a message due
        // long after it: at a rate of one message in ten seconds, the run ended 20 s late.
        for (int64_t wait = due - MonotonicNanos();
             wait > 0 && !shared_.stop.load(std::memory_order_relaxed) && ended_ == Ending::kNone;
             wait = due - MonotonicNanos()) {
          co_await sleep(Duration(std::min<int64_t>(wait, kPaceSliceNs)));
        }
        if (shared_.stop.load(std::memory_order_relaxed) || ended_ != Ending::kNone) break;
      }
      uint64_t batch = BatchMessages(o_, static_cast<uint64_t>(o_.depth) - (sent_ - echo_.received));
      const char* data = shared_.pattern.at(id_, sent_ * o_.size);
      size_t bytes = batch * o_.size;  // at most kMaxBatchBytes + one message: within the window
      for (uint64_t i = 0; i < batch; ++i) echo_.sent_at[(sent_ + i) % o_.depth] = due;
      sent_ += batch;
      absl::Status s = co_await socket_.send_all(data, bytes);
      if (!s.ok()) {
        if (ended_ != Ending::kNone) break;  // the receiver saw the end first and closed
        // The server closed first: the receiver reads what it sent, then its end of stream, and
        // judges the close (clean, with messages unanswered), as if it had come before this send.
        if (RefusedAfterThePeersEnd(s)) co_return;
        end_or_fail(Ending::kReset, absl::StrCat("connection ", id_, ": ", s.message()));
        break;
      }
    }
    if (failed_ || ended_ != Ending::kNone) co_return;
    sending_done_ = true;
    // Half-close: the server sends back what it still holds, then closes, and the receiver
    // sees the end of stream once every reply is in.
    (void)socket_.shutdown_write();
  }

  // Reads the echo, checks every byte, and times each message.
  Task<> receive_loop() {
    std::vector<char> buf(ReceiveBufferSize(o_.size));
    while (!failed_ && ended_ == Ending::kNone) {
      absl::StatusOr<size_t> n = co_await socket_.recv(buf.data(), buf.size());
      if (ended_ != Ending::kNone) break;  // the sender saw the end first and closed
      if (!n.ok()) {
        end_or_fail(Ending::kReset, absl::StrCat("connection ", id_, ": ",
                                                 aborted_ ? "no echo within the finish timeout" : n.status().message()));
        break;
      }
      size_t got = *n;
      if (got == 0) {
        if (sending_done_ && echo_.received == sent_ && echo_.received_bytes == echo_.received * o_.size) break;  // the normal end
        end_or_fail(Ending::kCleanClose, absl::StrCat("connection ", id_, ": the server closed the connection with ",
                                                      sent_ - echo_.received, " messages unanswered"));
        break;
      }
      uint64_t before = echo_.received;
      if (absl::Status s = TakeEcho(o_, shared_, ls_, id_, buf.data(), got, echo_); !s.ok()) {
        fail(std::string(s.message()));
        break;
      }
      if (echo_.received != before) space_.set();
    }
  }

  // The connection ended before the run did: with --reconnect it is counted and opened again
  // (the other loop, still waiting on the socket, is released by closing it); else it is lost.
  void end_or_fail(Ending how, const std::string& why) {
    if (!o_.reconnect || aborted_) {
      fail(why);
      return;
    }
    if (ended_ != Ending::kNone || failed_) return;
    ended_ = how;
    space_.set();
    if (how == Ending::kCleanClose) {
      // The socket stays open until the sender has seen the end: a send in flight completes
      // (the server reads and discards until this side closes), so the bytes it put on the
      // wire are counted in bytes_sent exactly.
      ls_.clean_closes.add(1);
    } else {
      ls_.resets.add(1);
      shared_.error(why);
      close_counting_sent();  // releases the other loop, which may wait on the socket
    }
  }

  // Adds what the kernel took on this socket to bytes_sent, then closes it. Exact once no send
  // is in flight (after both loops ended); a send cut short by a reset may have put more on the
  // wire than counted, but a reset fails the run anyway. What the server's kernel refused is
  // left out (BytesThePeerTook).
  void close_counting_sent() {
    if (!socket_.valid()) return;
    ls_.bytes_sent.add(BytesThePeerTook(socket_.fd(), socket_.info().bytes_out));
    socket_.close();
  }

  // Connects again; a refused connect is counted and tried again every 50 ms, for up to the
  // connect timeout. False (the connection is lost) if it never connects.
  Task<bool> reconnect() {
    int64_t give_up = MonotonicNanos() + o_.connect_timeout.count();
    for (;;) {
      if (aborted_) {
        fail(absl::StrCat("connection ", id_, ": reconnecting: no echo within the finish timeout"));
        co_return false;
      }
      absl::StatusOr<Socket> connected = co_await wait_for(ConnectTo(*ls_.loop, shared_.address), o_.connect_timeout);
      if (connected.ok()) {
        socket_ = std::move(*connected);
        co_return true;
      }
      absl::Status why = connected.status();
      bool refused = absl::StrContains(why.message(), std::strerror(ECONNREFUSED));
      if (refused) ls_.refused.add(1);
      if (!refused || aborted_ || MonotonicNanos() >= give_up) {
        fail(absl::StrCat("connection ", id_, ": reconnecting: ", why.message()));
        co_return false;
      }
      co_await sleep(milliseconds(50));
    }
  }

  void fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    ls_.lost.add(1);
    shared_.error(why);
    space_.set();
  }

  const LoadOptions& o_;
  Shared& shared_;
  LoopState& ls_;
  const int id_;
  const double rate_;
  Socket socket_;
  EchoProgress echo_;  // what came back checked, and when each message in flight was sent
  Event space_;        // the window has room (or the connection is done)
  uint64_t sent_ = 0;
  uint64_t resend_until_ = 0;    // messages below this were sent before and are sent again
  int64_t start_ns_ = 0;
  Ending ended_ = Ending::kNone;
  bool sending_done_ = false;
  bool failed_ = false;
  bool aborted_ = false;
};

}  // namespace

absl::Status Validate(const LoadOptions& o) {
  const struct {
    const char* flag;
    int64_t value;
    const IntegerRange& range;
  } whole_numbers[] = {
      {"--port", o.port, kPortRange},          {"--connections", o.connections, kConnectionsRange},
      {"--size", o.size, kSizeRange},          {"--depth", o.depth, kDepthRange},
      {"--threads", o.threads, kThreadsRange}, {"--server_pid", o.server_pid, kServerPidRange},
  };
  for (const auto& n : whole_numbers) {
    if (!n.range.Contains(n.value)) return absl::InvalidArgumentError(n.range.Refusal(n.flag, absl::StrCat(n.value)));
  }
  if (!kDurationRange.Contains(o.duration)) {
    return absl::InvalidArgumentError(kDurationRange.Refusal("--duration", o.duration));
  }
  if (!kWarmupRange.Contains(o.warmup)) return absl::InvalidArgumentError(kWarmupRange.Refusal("--warmup", o.warmup));
  if (!(o.rate >= 0) || !std::isfinite(o.rate)) {
    return absl::InvalidArgumentError("--rate must be a number of messages per second, 0 or more (0: unpaced)");
  }
  if (o.busy_poll && o.busy_ring) {
    return absl::InvalidArgumentError("--busy_poll and --busy_ring are two load engines: pick one");
  }
  if ((o.busy_poll || o.busy_ring) && (o.rate > 0 || o.reconnect)) {
    const char* engine = o.busy_poll ? "--busy_poll" : "--busy_ring";
    return absl::InvalidArgumentError(
        absl::StrCat(engine, " never waits, so it takes neither --rate nor --reconnect: drop them, or drop ", engine));
  }
  auto address = SocketAddress::Parse(o.host, o.port);
  if (!address.ok()) return absl::InvalidArgumentError(absl::StrCat("--host: ", address.status().message()));
  if (o.server_pid > 0) {
    if (absl::StatusOr<int64_t> cpu = ProcessCpuNanos(o.server_pid); !cpu.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--server_pid=", o.server_pid, ": cannot read its CPU time: ", cpu.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& o, const std::function<void(const LoadProgress&)>& on_progress) {
  if (absl::Status valid = Validate(o); !valid.ok()) return valid;
  if (o.busy_poll) return RunBusyPollLoad(o, on_progress);
  if (o.busy_ring) return RunRingLoad(o, on_progress);
  Shared shared(o.size);
  shared.address = *SocketAddress::Parse(o.host, o.port);

  std::vector<std::unique_ptr<LoopState>> loops;
  std::vector<Counters*> counters;
  std::vector<std::unique_ptr<Connection>> connections;
  for (int t = 0; t < o.threads; ++t) {
    EventLoopOptions lo;
    lo.backend = o.backend;
    lo.plugin_dir = o.plugin_dir;
    lo.loop_id = static_cast<uint32_t>(t);
    lo.stall_sink = [](const std::string&) {};  // the load generator's own stalls are not news
    lo.reactor.one_thread = true;                 // each loop runs on a thread of its own
    auto loop = EventLoop::Create(lo);
    if (!loop.ok()) return loop.status();
    auto ls = std::make_unique<LoopState>();
    ls->loop = *std::move(loop);
    counters.push_back(ls.get());
    loops.push_back(std::move(ls));
  }
  double per_connection_rate = o.rate > 0 ? o.rate / o.connections : 0;
  for (int i = 0; i < o.connections; ++i) {
    LoopState& ls = *loops[i % o.threads];
    ++ls.expected;
    connections.push_back(std::make_unique<Connection>(o, shared, ls, i, per_connection_rate));
    create_task(*ls.loop, connections.back()->run(), "bench:connection");
  }

  int64_t start = MonotonicNanos();
  shared.Measure(start, o);
  std::vector<std::thread> threads;
  for (auto& ls : loops) {
    LoopState* s = ls.get();
    threads.emplace_back([s] { s->loop->run_forever(); });
  }
  EngineHooks hooks;
  hooks.wake = [&] {
    for (auto& ls : loops) ls->loop->call_soon_threadsafe([] {}, "bench:stop");  // wake idle loops
  };
  hooks.abort = [&] {
    for (auto& c : connections) {
      Connection* conn = c.get();
      conn->loop_state().loop->call_soon_threadsafe([conn] { conn->abort(); }, "bench:abort");
    }
  };
  // Each loop stops once all of its connections have finished.
  hooks.on_finished = [&](size_t i) { loops[i]->loop->stop(); };
  int64_t stopped_at = Supervise(o, shared, counters, start, hooks, on_progress);
  for (std::thread& t : threads) t.join();
  LoadResult result = Summarize(shared, counters, stopped_at);
  result.backend = loops[0]->loop->stats().backend;
  connections.clear();
  for (auto& ls : loops) ls->loop.reset();
  return result;
}

std::string ResultText(const LoadOptions& o, const LoadResult& r) {
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::string s = absl::StrFormat(
      "%d connections x %u B, depth %d, %.1f s on %s: %.0f msg/s, %.1f MB/s, round trip p50 %.1f us, "
      "p99 %.1f us, p999 %.1f us, max %.1f us",
      o.connections, o.size, o.depth, r.seconds, r.backend, r.messages_per_second(), r.mb_per_second(),
      us(r.latency.percentile(0.5)), us(r.latency.percentile(0.99)), us(r.latency.percentile(0.999)),
      us(r.latency.max_ns));
  if (r.server_busy >= 0) {
    absl::StrAppend(&s, absl::StrFormat(", server CPU %.2f us/msg (%.0f%% of a core)", r.server_cpu_us_per_message(),
                                        r.server_busy * 100));
  }
  if (o.reconnect) {
    absl::StrAppend(&s, absl::StrFormat("\nreconnect: %u clean closes, %u resets, %u refused connects, %u resent "
                                        "messages, %u reconnects, %u bytes sent",
                                        r.clean_closes, r.resets, r.refused_connects, r.resent_messages, r.reconnects,
                                        r.bytes_sent));
  }
  if (!r.ok()) {
    absl::StrAppend(&s, absl::StrFormat("\nFAILED: %u mismatches, %u lost connections, %u connect failures", r.mismatches,
                                        r.lost_connections, r.connect_failures));
    if (o.reconnect) absl::StrAppend(&s, absl::StrFormat(", %u resets, %u refused connects", r.resets, r.refused_connects));
    absl::StrAppend(&s, "; first: ", r.first_error);
  }
  return s;
}

std::string ResultJson(const LoadOptions& o, const LoadResult& r) {
  auto us = [](int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::string error;
  for (char c : r.first_error) {
    if (c == '"' || c == '\\') error += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) error += c;
  }
  std::string reconnect;
  if (o.reconnect) {
    reconnect = absl::StrFormat(
        ",\"reconnect\":true,\"clean_closes\":%u,\"resets\":%u,\"refused_connects\":%u,\"resent_messages\":%u,"
        "\"reconnects\":%u",
        r.clean_closes, r.resets, r.refused_connects, r.resent_messages, r.reconnects);
  }
  std::string server_cpu;
  if (r.server_busy >= 0) {
    server_cpu = absl::StrFormat(",\"server_pid\":%d,\"server_busy\":%.4f,\"server_cpu_us_per_msg\":%.3f", o.server_pid,
                                 r.server_busy, r.server_cpu_us_per_message());
  }
  return absl::StrFormat(
      "{\"host\":\"%s\",\"port\":%u,\"backend\":\"%s\",\"connections\":%d,\"size\":%u,\"depth\":%d,"
      "\"rate\":%.10g,\"seconds\":%.3f,\"messages\":%u,\"bytes\":%u,\"messages_per_second\":%.1f,"
      "\"mb_per_second\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
      "\"mismatches\":%u,\"lost_connections\":%u,\"connect_failures\":%u,\"bytes_sent\":%u%s%s,\"ok\":%s,"
      "\"error\":\"%s\"}",
      o.host, o.port, r.backend, o.connections, o.size, o.depth, o.rate, r.seconds, r.messages, r.bytes,
      r.messages_per_second(), r.mb_per_second(), us(r.latency.percentile(0.5)), us(r.latency.percentile(0.99)),
      us(r.latency.percentile(0.999)), us(r.latency.max_ns), r.mismatches, r.lost_connections, r.connect_failures,
      r.bytes_sent, reconnect, server_cpu, r.ok() ? "true" : "false", error);
}

}  // namespace brrr::bench
