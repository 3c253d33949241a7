#include "bench/load_generator.h"

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/async.h"
#include "runtime/socket.h"

namespace brrr::bench {
namespace {

using std::chrono::milliseconds;

constexpr uint32_t kMaxMessage = 16 << 20;

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

  explicit StreamPattern(size_t window) : bytes_(kPeriod + window) {
    std::mt19937_64 rng(0xB2B2);
    for (size_t i = 0; i < kPeriod; i += 8) {
      uint64_t r = rng();
      std::memcpy(&bytes_[i], &r, std::min<size_t>(8, kPeriod - i));
    }
    for (size_t i = kPeriod; i < bytes_.size(); ++i) bytes_[i] = bytes_[i - kPeriod];
  }

  // The next `window` bytes of connection's stream from `offset` on.
  const char* at(int connection, uint64_t offset) const {
    return bytes_.data() + (static_cast<uint64_t>(connection) * 104729 + offset) % kPeriod;
  }

 private:
  std::vector<char> bytes_;
};

// The receive buffer for a message size: a whole message, within [4 KiB, 1 MiB].
size_t ReceiveBufferSize(uint32_t size) { return std::min<size_t>(std::max<uint32_t>(size, 4096), 1 << 20); }

// What every loop shares: the stream pattern, the stop signal, and where to report.
struct Shared {
  explicit Shared(uint32_t size) : pattern(kMaxBatchBytes + std::max<size_t>(size, ReceiveBufferSize(size))) {}

  const StreamPattern pattern;
  SocketAddress address;
  std::atomic<bool> stop{false};
  int64_t measure_from_ns = 0;  // end of warm-up
  std::mutex error_mu;
  std::string first_error;  // guarded by error_mu

  void error(const std::string& e) {
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.empty()) first_error = e;
  }
};

// One loop's connections and its counters (written by the loop, read by the main thread).
struct LoopState {
  std::unique_ptr<EventLoop> loop;
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
  LatencyHistogram latency;
};

class Connection {
 public:
  Connection(const LoadOptions& o, Shared& shared, LoopState& ls, int id, double rate)
      : o_(o), shared_(shared), ls_(ls), id_(id), rate_(rate), sent_at_(o.depth), space_(*ls.loop) {}

  Task<> run() {
    auto connected = co_await wait_for(ConnectTo(*ls_.loop, shared_.address), o_.connect_timeout);
    if (!connected.ok() || !connected->ok()) {
      ls_.connect_failures.add(1);
      shared_.error(absl::StrCat("connection ", id_, ": ",
                                 connected.ok() ? connected->status().message() : connected.status().message()));
      ls_.finished.add(1);
      co_return;
    }
    socket_ = std::move(**connected);
    start_ns_ = MonotonicNanos();
    for (;;) {
      ls_.connected.add(1);
      ended_ = Ending::kNone;
      sending_done_ = false;
      received_bytes_ = received_ * o_.size;
      co_await gather(send_loop(), receive_loop());
      close_counting_sent();
      ls_.connected.add(-1);
      if (ended_ == Ending::kNone || failed_ || aborted_) break;  // the normal end, or a failure
      // Ended by the server (--reconnect): what had not come back whole is sent again.
      ls_.resent.add(sent_ - received_);
      resend_until_ = std::max(resend_until_, sent_);
      sent_ = received_;
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
      if (sent_ - received_ >= static_cast<uint64_t>(o_.depth)) {
        space_.clear();
        co_await space_.wait();
        continue;
      }
      int64_t due = MonotonicNanos();
      if (rate_ > 0 && sent_ >= resend_until_) {
        due = start_ns_ + static_cast<int64_t>(static_cast<double>(sent_) * 1e9 / rate_);
        int64_t wait = due - MonotonicNanos();
        if (wait > 0) co_await sleep(Duration(wait));
        if (shared_.stop.load(std::memory_order_relaxed) || ended_ != Ending::kNone) break;
      }
      // Without a rate, the whole free window goes out in one send, as a pipelining client
      // writes its pipeline: the load generator must not be what limits a pipelined run.
      uint64_t room = static_cast<uint64_t>(o_.depth) - (sent_ - received_);
      uint64_t batch = rate_ > 0 || room == 1 ? 1 : std::min<uint64_t>(room, kMaxBatchBytes / o_.size + 1);
      const char* data = shared_.pattern.at(id_, sent_ * o_.size);
      size_t bytes = batch * o_.size;  // at most kMaxBatchBytes + one message: within the window
      for (uint64_t i = 0; i < batch; ++i) sent_at_[(sent_ + i) % o_.depth] = due;
      sent_ += batch;
      absl::Status s = co_await socket_.send_all(data, bytes);
      if (!s.ok()) {
        if (ended_ != Ending::kNone) break;  // the receiver saw the end first and closed
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
        if (sending_done_ && received_ == sent_ && received_bytes_ == received_ * o_.size) break;  // the normal end
        end_or_fail(Ending::kCleanClose, absl::StrCat("connection ", id_, ": the server closed the connection with ",
                                                      sent_ - received_, " messages unanswered"));
        break;
      }
      const char* expected = shared_.pattern.at(id_, received_bytes_);
      if (std::memcmp(buf.data(), expected, got) != 0) {
        const char* first_wrong = std::mismatch(buf.data(), buf.data() + got, expected).first;
        uint64_t wrong = received_bytes_ + static_cast<uint64_t>(first_wrong - buf.data());
        ls_.mismatches.add(1);
        fail(absl::StrCat("connection ", id_, ": message ", wrong / o_.size, " came back different at byte ",
                          wrong % o_.size));
        break;
      }
      received_bytes_ += got;
      uint64_t complete = received_bytes_ / o_.size;
      if (complete == received_) continue;
      // Every message this receive completed arrived now.
      int64_t now = MonotonicNanos();
      if (now >= shared_.measure_from_ns) {
        for (uint64_t m = received_; m < complete; ++m) ls_.latency.record(now - sent_at_[m % o_.depth]);
        ls_.messages.add(complete - received_);
        ls_.bytes.add((complete - received_) * o_.size);
      }
      received_ = complete;
      space_.set();
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
  // wire than counted, but a reset fails the run anyway.
  void close_counting_sent() {
    if (!socket_.valid()) return;
    ls_.bytes_sent.add(socket_.info().bytes_out);
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
      auto connected = co_await wait_for(ConnectTo(*ls_.loop, shared_.address), o_.connect_timeout);
      if (connected.ok() && connected->ok()) {
        socket_ = std::move(**connected);
        co_return true;
      }
      absl::Status why = connected.ok() ? connected->status() : connected.status();
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
  std::vector<int64_t> sent_at_;  // by message number modulo depth
  Event space_;                   // the window has room (or the connection is done)
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  uint64_t received_bytes_ = 0;  // echoed bytes checked, on this connection's stream
  uint64_t resend_until_ = 0;    // messages below this were sent before and are sent again
  int64_t start_ns_ = 0;
  Ending ended_ = Ending::kNone;
  bool sending_done_ = false;
  bool failed_ = false;
  bool aborted_ = false;
};

}  // namespace

absl::Status Validate(const LoadOptions& o) {
  if (o.connections < 1 || o.connections > 1'000'000) {
    return absl::InvalidArgumentError("--connections must be from 1 to 1000000");
  }
  if (o.size < 1 || o.size > kMaxMessage) return absl::InvalidArgumentError("--size must be from 1 byte to 16 MiB");
  if (o.depth < 1 || o.depth > 4096) return absl::InvalidArgumentError("--depth must be from 1 to 4096");
  if (o.duration <= Duration::zero()) return absl::InvalidArgumentError("--duration must be above 0");
  if (o.warmup < Duration::zero()) return absl::InvalidArgumentError("--warmup cannot be negative");
  if (o.rate < 0) return absl::InvalidArgumentError("--rate cannot be negative");
  if (o.threads < 1 || o.threads > 256) return absl::InvalidArgumentError("--threads must be from 1 to 256");
  auto address = SocketAddress::Parse(o.host, o.port);
  if (!address.ok()) return absl::InvalidArgumentError(absl::StrCat("--host: ", address.status().message()));
  return absl::OkStatus();
}

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& o, const std::function<void(const LoadProgress&)>& on_progress) {
  if (absl::Status valid = Validate(o); !valid.ok()) return valid;
  Shared shared(o.size);
  shared.address = *SocketAddress::Parse(o.host, o.port);

  std::vector<std::unique_ptr<LoopState>> loops;
  std::vector<std::unique_ptr<Connection>> connections;
  for (int t = 0; t < o.threads; ++t) {
    EventLoopOptions lo;
    lo.backend = o.backend;
    lo.plugin_dir = o.plugin_dir;
    lo.loop_id = static_cast<uint32_t>(t);
    lo.stall_sink = [](const std::string&) {};  // the load generator's own stalls are not news
    auto loop = EventLoop::Create(lo);
    if (!loop.ok()) return loop.status();
    auto ls = std::make_unique<LoopState>();
    ls->loop = *std::move(loop);
    loops.push_back(std::move(ls));
  }
  LoadResult result;
  result.backend = loops[0]->loop->stats().backend;
  double per_connection_rate = o.rate > 0 ? o.rate / o.connections : 0;
  for (int i = 0; i < o.connections; ++i) {
    LoopState& ls = *loops[i % o.threads];
    connections.push_back(std::make_unique<Connection>(o, shared, ls, i, per_connection_rate));
    create_task(*ls.loop, connections.back()->run(), "bench:connection");
  }

  int64_t start = MonotonicNanos();
  shared.measure_from_ns = start + o.warmup.count();
  int64_t end = shared.measure_from_ns + o.duration.count();
  std::vector<std::thread> threads;
  for (auto& ls : loops) {
    LoopState* s = ls.get();
    threads.emplace_back([s] { s->loop->run_forever(); });
  }
  // Each loop stops once all of its connections have finished.
  auto all_finished = [&](LoopState& ls, int index) {
    int mine = o.connections / o.threads + (index < o.connections % o.threads ? 1 : 0);
    return ls.finished.load() >= mine;
  };

  uint64_t last_messages = 0;
  uint64_t last_bytes = 0;
  int64_t last_report = start;
  bool stopping = false;
  int64_t stopped_at = end;  // the end of the measured period
  bool aborted = false;
  for (;;) {
    std::this_thread::sleep_for(milliseconds(20));
    int64_t now = MonotonicNanos();
    if (!stopping && (now >= end || (o.interrupted != nullptr && o.interrupted->load()))) {
      stopping = true;
      stopped_at = std::min(now, end);
      shared.stop.store(true);
      for (auto& ls : loops) ls->loop->call_soon_threadsafe([] {}, "bench:stop");  // wake idle loops
    }
    if (stopping && !aborted && now >= stopped_at + o.finish_timeout.count()) {
      aborted = true;
      for (auto& c : connections) {
        Connection* conn = c.get();
        conn->loop_state().loop->call_soon_threadsafe([conn] { conn->abort(); }, "bench:abort");
      }
    }
    bool done = true;
    for (size_t i = 0; i < loops.size(); ++i) {
      if (all_finished(*loops[i], static_cast<int>(i))) {
        loops[i]->loop->stop();
      } else {
        done = false;
      }
    }
    if (on_progress && now - last_report >= o.progress_every.count() && !done) {
      LoadProgress p;
      uint64_t messages = 0;
      uint64_t bytes = 0;
      for (auto& ls : loops) {
        messages += ls->messages.load();
        bytes += ls->bytes.load();
        p.connected += static_cast<int>(ls->connected.load());
        p.latency += ls->latency.snapshot();
      }
      p.elapsed_s = static_cast<double>(now - start) / 1e9;
      p.interval_s = static_cast<double>(now - last_report) / 1e9;
      p.messages = messages - last_messages;
      p.bytes = bytes - last_bytes;
      last_messages = messages;
      last_bytes = bytes;
      last_report = now;
      on_progress(p);
    }
    if (done) break;
  }
  for (std::thread& t : threads) t.join();
  int64_t measured_end = std::min(MonotonicNanos(), stopped_at);
  result.seconds = static_cast<double>(std::max<int64_t>(measured_end - shared.measure_from_ns, 1)) / 1e9;
  for (auto& ls : loops) {
    result.messages += ls->messages.load();
    result.bytes += ls->bytes.load();
    result.mismatches += ls->mismatches.load();
    result.lost_connections += ls->lost.load();
    result.connect_failures += ls->connect_failures.load();
    result.clean_closes += ls->clean_closes.load();
    result.resets += ls->resets.load();
    result.refused_connects += ls->refused.load();
    result.resent_messages += ls->resent.load();
    result.reconnects += ls->reconnects.load();
    result.bytes_sent += ls->bytes_sent.load();
    result.latency += ls->latency.snapshot();
  }
  result.first_error = shared.first_error;
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
  return absl::StrFormat(
      "{\"host\":\"%s\",\"port\":%u,\"backend\":\"%s\",\"connections\":%d,\"size\":%u,\"depth\":%d,"
      "\"rate\":%.0f,\"seconds\":%.3f,\"messages\":%u,\"bytes\":%u,\"messages_per_second\":%.1f,"
      "\"mb_per_second\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
      "\"mismatches\":%u,\"lost_connections\":%u,\"connect_failures\":%u,\"bytes_sent\":%u%s,\"ok\":%s,"
      "\"error\":\"%s\"}",
      o.host, o.port, r.backend, o.connections, o.size, o.depth, o.rate, r.seconds, r.messages, r.bytes,
      r.messages_per_second(), r.mb_per_second(), us(r.latency.percentile(0.5)), us(r.latency.percentile(0.99)),
      us(r.latency.percentile(0.999)), us(r.latency.max_ns), r.mismatches, r.lost_connections, r.connect_failures,
      r.bytes_sent, reconnect, r.ok() ? "true" : "false", error);
}

}  // namespace brrr::bench
