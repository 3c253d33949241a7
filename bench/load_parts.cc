#include "bench/load_parts.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/process_cpu.h"
#include "runtime/clock.h"

namespace brrr::bench {

StreamPattern::StreamPattern(size_t window) : bytes_(kPeriod + window) {
  std::mt19937_64 rng(0xB2B2);
  for (size_t i = 0; i < kPeriod; i += 8) {
    uint64_t r = rng();
    std::memcpy(&bytes_[i], &r, std::min<size_t>(8, kPeriod - i));
  }
  for (size_t i = kPeriod; i < bytes_.size(); ++i) bytes_[i] = bytes_[i - kPeriod];
}

absl::Status TakeEcho(const LoadOptions& o, const Shared& shared, Counters& counters, int id, const char* data,
                      size_t got, EchoProgress& echo) {
  const char* expected = shared.pattern.at(id, echo.received_bytes);
  if (std::memcmp(data, expected, got) != 0) {
    const char* first_wrong = std::mismatch(data, data + got, expected).first;
    uint64_t wrong = echo.received_bytes + static_cast<uint64_t>(first_wrong - data);
    counters.mismatches.add(1);
    return absl::DataLossError(absl::StrCat("connection ", id, ": message ", wrong / o.size,
                                            " came back different at byte ", wrong % o.size));
  }
  echo.received_bytes += got;
  uint64_t complete = echo.received_bytes / o.size;
  if (complete == echo.received) return absl::OkStatus();
  // Every message this receive completed arrived now.
  int64_t now = MonotonicNanos();
  if (now >= shared.measure_from_ns && now < shared.measure_until_ns.load(std::memory_order_relaxed)) {
    for (uint64_t m = echo.received; m < complete; ++m) {
      counters.latency.record(now - echo.sent_at[m % echo.sent_at.size()]);
    }
    counters.messages.add(complete - echo.received);
    counters.bytes.add((complete - echo.received) * o.size);
  }
  echo.received = complete;
  return absl::OkStatus();
}

bool SpinningConnection::connect() {
  fd_ = ::socket(shared_.address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ >= 0) {
    int one = 1;
    (void)::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // as the reactor engine's sockets
    timeval timeout{};
    timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(o_.connect_timeout).count();
    timeout.tv_usec = static_cast<suseconds_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(o_.connect_timeout).count() % 1'000'000);
    (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));  // bounds connect()
  }
  if (fd_ < 0 || ::connect(fd_, shared_.address.data(), shared_.address.size()) != 0) {
    int error = errno;
    close_socket();
    counters_.connect_failures.add(1);
    shared_.error(absl::StrCat("connection ", id_, ": connect to ", shared_.address.ToString(), ": ",
                               std::strerror(error)));
    done_ = true;
    counters_.finished.add(1);
    on_done();
    return false;
  }
  counters_.connected.add(1);
  return true;
}

bool SpinningConnection::take(const char* data, size_t got) {
  if (absl::Status s = TakeEcho(o_, shared_, counters_, id_, data, got, echo_); !s.ok()) {
    fail_with(std::string(s.message()));
    return false;
  }
  return true;
}

void SpinningConnection::end_of_stream() {
  if (write_shut_ && window_.all_echoed(o_, echo_)) {
    finish();  // the normal end: every reply came back whole
  } else {
    fail(absl::StrCat("the server closed the connection with ", window_.sent - echo_.received, " messages unanswered"));
  }
}

void SpinningConnection::half_close() {
  (void)::shutdown(fd_, SHUT_WR);
  write_shut_ = true;
}

void SpinningConnection::fail(const std::string& why) { fail_with(absl::StrCat("connection ", id_, ": ", why)); }

void SpinningConnection::fail_with(const std::string& error) {
  counters_.lost.add(1);
  shared_.error(error);
  finish();
}

void SpinningConnection::finish() {
  close_socket();
  done_ = true;
  counters_.connected.add(-1);
  counters_.finished.add(1);
  on_done();
}

void SpinningConnection::close_socket() {
  if (fd_ < 0) return;
  (void)::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
}

bool SendWindow::refill(const LoadOptions& o, EchoProgress& echo, bool stopping) {
  uint64_t in_flight = sent - echo.received;
  if (unsent == 0 && !stopping && in_flight < static_cast<uint64_t>(o.depth)) {
    uint64_t batch = BatchMessages(o, static_cast<uint64_t>(o.depth) - in_flight);
    int64_t now = MonotonicNanos();
    for (uint64_t i = 0; i < batch; ++i) echo.sent_at[(sent + i) % echo.sent_at.size()] = now;
    unsent_from = sent * o.size;
    unsent = batch * o.size;
    sent += batch;
  }
  return unsent > 0;
}

namespace {

// The server's CPU time over the measured period (LoadOptions::server_pid; 0: none).
class ServerCpuWindow {
 public:
  explicit ServerCpuWindow(int pid) : pid_(pid) {}
  bool started() const { return started_; }
  void start(int64_t now) {
    started_ = true;
    from_at_ = now;
    if (pid_ == 0) return;
    absl::StatusOr<int64_t> cpu = ProcessCpuNanos(pid_);
    from_cpu_ = cpu.ok() ? *cpu : -1;
  }
  // The share of one CPU used since start(); -1 if not measured or unreadable.
  double stop(int64_t now) const {
    if (pid_ == 0 || !started_ || from_cpu_ < 0 || now <= from_at_) return -1;
    absl::StatusOr<int64_t> cpu = ProcessCpuNanos(pid_);
    if (!cpu.ok()) return -1;
    return static_cast<double>(*cpu - from_cpu_) / static_cast<double>(now - from_at_);
  }

 private:
  int pid_;
  bool started_ = false;
  int64_t from_at_ = 0;
  int64_t from_cpu_ = -1;
};

}  // namespace

int64_t Supervise(const LoadOptions& o, Shared& shared, const std::vector<Counters*>& counters, int64_t start,
                  const EngineHooks& hooks, const std::function<void(const LoadProgress&)>& on_progress) {
  int64_t end = shared.measure_until_ns.load();
  uint64_t last_messages = 0;
  uint64_t last_bytes = 0;
  int64_t last_report = start;
  bool stopping = false;
  int64_t stopped_at = end;  // the end of the measured period
  bool aborted = false;
  ServerCpuWindow server_cpu(o.server_pid);
  for (;;) {
    // Ticks of 20 ms, cut short at the end of the warm-up and of the measured period, where
    // the server's CPU time is read.
    int64_t now = MonotonicNanos();
    int64_t next = now + 20'000'000;
    if (!server_cpu.started() && shared.measure_from_ns > now) next = std::min(next, shared.measure_from_ns);
    if (!stopping && end > now) next = std::min(next, end);
    std::this_thread::sleep_for(std::chrono::nanoseconds(next - now));
    now = MonotonicNanos();
    if (!server_cpu.started() && now >= shared.measure_from_ns) server_cpu.start(now);
    if (!stopping && (now >= end || (o.interrupted != nullptr && o.interrupted->load()))) {
      stopping = true;
      stopped_at = std::min(now, end);
      shared.measure_until_ns.store(stopped_at);
      shared.server_busy = server_cpu.stop(now);
      shared.stop.store(true);
      if (hooks.wake) hooks.wake();
    }
    if (stopping && !aborted && now >= stopped_at + o.finish_timeout.count()) {
      aborted = true;
      shared.abort.store(true);
      if (hooks.abort) hooks.abort();
    }
    bool done = true;
    for (size_t i = 0; i < counters.size(); ++i) {
      if (counters[i]->finished.load() >= counters[i]->expected) {
        if (hooks.on_finished) hooks.on_finished(i);
      } else {
        done = false;
      }
    }
    // A report that is due is made even when this tick also saw the run finish: the tick that
    // ends a run no longer than o.progress_every is its only report, and whether the threads
    // finish before the counters are read here is a race.
    if (on_progress && now - last_report >= o.progress_every.count()) {
      LoadProgress p;
      uint64_t messages = 0;
      uint64_t bytes = 0;
      for (Counters* c : counters) {
        messages += c->messages.load();
        bytes += c->bytes.load();
        p.connected += static_cast<int>(c->connected.load());
        p.latency += c->latency.snapshot();
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
    if (done) return stopped_at;
  }
}

LoadResult Summarize(Shared& shared, const std::vector<Counters*>& counters, int64_t stopped_at) {
  LoadResult result;
  int64_t measured_end = std::min(MonotonicNanos(), stopped_at);
  result.seconds = static_cast<double>(std::max<int64_t>(measured_end - shared.measure_from_ns, 1)) / 1e9;
  for (Counters* c : counters) {
    result.messages += c->messages.load();
    result.bytes += c->bytes.load();
    result.mismatches += c->mismatches.load();
    result.lost_connections += c->lost.load();
    result.connect_failures += c->connect_failures.load();
    result.clean_closes += c->clean_closes.load();
    result.resets += c->resets.load();
    result.refused_connects += c->refused.load();
    result.resent_messages += c->resent.load();
    result.reconnects += c->reconnects.load();
    result.bytes_sent += c->bytes_sent.load();
    result.latency += c->latency.snapshot();
  }
  std::lock_guard<std::mutex> lock(shared.error_mu);
  result.first_error = shared.first_error;
  result.server_busy = shared.server_busy;
  return result;
}

SpinningRun::SpinningRun(const LoadOptions& o) : o_(o), shared_(o.size) {
  shared_.address = *SocketAddress::Parse(o.host, o.port);
  for (int t = 0; t < o.threads; ++t) {
    counters_.push_back(std::make_unique<Counters>());
    counter_list_.push_back(counters_.back().get());
  }
}

Counters& SpinningRun::expect(int connection) {
  Counters& c = counters(static_cast<size_t>(connection % o_.threads));
  ++c.expected;
  return c;
}

absl::StatusOr<LoadResult> SpinningRun::Run(const std::function<void(size_t)>& body, const char* engine,
                                            const char* backend,
                                            const std::function<void(const LoadProgress&)>& on_progress) {
  int64_t start = MonotonicNanos();
  shared_.Measure(start, o_);
  std::vector<std::thread> threads;
  try {
    for (size_t t = 0; t < counters_.size(); ++t) threads.emplace_back([&body, t] { body(t); });
  } catch (const std::system_error& e) {
    shared_.stop.store(true);
    shared_.abort.store(true);
    for (std::thread& t : threads) t.join();
    return absl::ResourceExhaustedError(absl::StrCat(engine, ": cannot start thread ", threads.size() + 1, " of ",
                                                     o_.threads, ": ", e.what(), "; ask for fewer --threads"));
  }
  int64_t stopped_at = Supervise(o_, shared_, counter_list_, start, EngineHooks{}, on_progress);
  for (std::thread& t : threads) t.join();
  LoadResult result = Summarize(shared_, counter_list_, stopped_at);
  result.backend = backend;
  return result;
}

}  // namespace brrr::bench
