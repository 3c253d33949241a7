#include "control/admin/metrics_http.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"
#include "runtime/async.h"
#include "runtime/call_in_loop.h"
#include "runtime/line_output.h"
#include "runtime/retry_pacing.h"

namespace brrr::control {
namespace {

using std::chrono::milliseconds;

// How often the acceptor looks again while every connection place is taken.
constexpr Duration kCapPoll = milliseconds(10);
// How long a kept-alive connection must have waited for its next request before it may be
// closed for one in the backlog: a client sending requests back to back keeps its connection.
constexpr int64_t kIdleBeforeReclaimNs = 100'000'000;
// How long a request head may take before its connection may be closed for one in the backlog:
// a client sends its head at once, as the connection opens or after an answer (one or two
// packets, or a retransmission of them), so a head that has not come whole in a second is a
// client that holds a place without asking: a port scan, a bare TCP check, a slow sender.
constexpr int64_t kSlowHeadBeforeReclaimNs = 1'000'000'000;
// How long no byte of an answer may be taken before its connection may be closed for one in
// the backlog: a client reads its answers as they come.
constexpr int64_t kUnreadAnswerBeforeReclaimNs = 1'000'000'000;
// The listen backlog. Connections that have sent nothing wait in it too, for the deferral:
// past it the kernel answers with SYN cookies, which skip the deferral.
constexpr int kBacklog = 1024;

constexpr char kExpositionType[] = "text/plain; version=0.0.4; charset=utf-8";

// One request head from `connection`, with what was received after it kept in `received`:
// the request; nullopt if the peer closed first; InvalidArgument or ResourceExhausted for a
// head that is not HTTP (answered 400 or 431); Unavailable if receiving failed.
Task<absl::StatusOr<std::optional<HttpRequest>>> ReadRequest(Socket& connection, std::string& received) {
  char buffer[4096];
  for (;;) {
    size_t used = 0;
    absl::StatusOr<std::optional<HttpRequest>> parsed = ParseRequestHead(received, &used);
    if (!parsed.ok() || parsed->has_value()) {
      if (parsed.ok()) received.erase(0, used);
      co_return std::move(parsed);
    }
    absl::StatusOr<size_t> n = co_await connection.recv(buffer, sizeof buffer);
    if (!n.ok()) co_return absl::UnavailableError(n.status().message());
    if (*n == 0) co_return std::nullopt;
    received.append(buffer, *n);
  }
}

Task<absl::Status> SendAll(Socket& connection, const std::string& bytes) {
  co_return co_await connection.send_all(bytes.data(), bytes.size());
}

// Whether `fd` has something to be read: data, the end of the stream or an error.
bool HasBytes(int fd) {
  pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&readable, 1, 0) != 0;
}

// Whether a connection just accepted, with nothing received, was queued by the end of the
// listener's deferral rather than by its first bytes: the kernel sent its SYN-ACK again as
// the deferral ended (a connection admitted with a SYN cookie skips the deferral, and has
// not).
bool WaitedTheDeferral(int fd) {
  tcp_info info{};
  socklen_t length = sizeof info;
  return ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0 && info.tcpi_total_retrans > 0;
}

// How many connections wait in listening socket `fd`'s backlog (for a listener, TCP_INFO's
// tcpi_unacked is the backlog's length); 1 if it cannot say but one waits.
int64_t QueuedConnections(int fd) {
  tcp_info info{};
  socklen_t length = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0) return info.tcpi_unacked;
  pollfd waiting{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&waiting, 1, 0) == 1 ? 1 : 0;
}

// The bytes `fd` has been given to send and its peer has not acknowledged; -1 if unknown.
int64_t Unsent(int fd) {
  int bytes = 0;
  return ::ioctl(fd, SIOCOUTQ, &bytes) == 0 ? bytes : -1;
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(MetricsHttpOptions options,
                                                                            MetricsPages pages) {
  UniqueFd adopted(std::exchange(options.listener_fd, -1));  // closed on every way out unless adopted
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(options.host, options.port);
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the metrics host \"", options.host, "\" is not an IP address: ", address.status().message()));
  }
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(std::move(options), std::move(pages)));
  EventLoopOptions lo;
  lo.backend = server->options_.backend;
  lo.plugin_dir = server->options_.plugin_dir;
  lo.reactor.one_thread = true;  // run by thread_ alone, for its life
  lo.stall_sink = [](const std::string& line) { PrintToStderr("metrics port: %s\n", line.c_str()); };
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create(std::move(lo));
  if (!loop.ok()) return loop.status();
  server->loop_ = *std::move(loop);
  // No SO_REUSEPORT: no other process can bind the port while this one holds it.
  absl::StatusOr<Socket> listener =
      adopted.valid() ? absl::StatusOr<Socket>(Socket::Adopt(*server->loop_, adopted.release(), "listener"))
                      : Socket::Listen(*server->loop_, *address, SocketOptions{}, kBacklog);
  if (!listener.ok()) {
    return absl::Status(listener.status().code(), absl::StrCat("cannot serve metrics on ", address->ToString(), ": ",
                                                               listener.status().message()));
  }
  // Set on a handed-over listener too (the same socket: it was set there already).
  const int defer_seconds = std::chrono::duration_cast<std::chrono::seconds>(kDeferAccept).count();
  if (::setsockopt(listener->fd(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot defer accepting on the metrics port ", address->ToString()));
  }
  absl::StatusOr<SocketAddress> local = listener->local_address();
  if (!local.ok()) return local.status();
  server->address_ = local->ToString();
  server->port_ = local->port();
  server->listener_fd_ = listener->fd();
  std::optional<Future<>> start;
  if (!server->options_.accept_at_start) {
    server->accept_start_.emplace(*server->loop_);
    start = server->accept_start_->get_future();
  }
  server->acceptor_ =
      create_task(*server->loop_, server->accept_loop(*std::move(listener), std::move(start)), "metrics:accept");
  server->thread_ = std::thread([s = server.get()] {
    // Named for top -H and bench/metrics_overhead.sh, which measures this thread's CPU.
    pthread_setname_np(pthread_self(), "brrr-metrics");
    s->loop_->run_forever();
  });
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (loop_ == nullptr) return;
  if (handed_over_.load()) {
    // A client accepted here just before the hand-over asked this process, not the new one:
    // answer it before going. Bounded: a client that never sends a request is not waited for.
    int64_t until = MonotonicNanos() + kHandedOverGrace.count();
    while (unanswered_.load() > 0 && MonotonicNanos() < until) std::this_thread::sleep_for(milliseconds(1));
  }
  if (thread_.joinable()) {
    // The listener and every connection close on the loop's own thread, and the loop stops once
    // the backend has let go of their sockets. Left to the loop's destruction on this thread, a
    // one-thread io_uring ring (which only its own thread may enter) leaves its requests to the
    // kernel's teardown of the ring, which holds their sockets open after this process has
    // gone: a scraper waits for its end of stream, and the port still takes connections.
    if (!loop_->call_soon_threadsafe([this] { close_everything(); }, "metrics:close")) loop_->stop();
    thread_.join();
  }
  // What is left (nothing, unless the loop stopped at close_everything's limit) goes with the loop.
  connections_.clear();
  acceptor_ = Future<>();
  listener_fd_ = -1;
  // Unset only if close_everything did not run. Before the loop goes: the promise's state
  // belongs to it.
  accept_start_.reset();
  loop_.reset();
}

void MetricsHttpServer::close_everything() {
  stopping_ = true;
  // Bounded: a task that does not end by then is destroyed with the loop.
  loop_->call_later(kCloseLimit, [this] { loop_->stop(); }, "metrics:close_limit");
  acceptor_.cancel();
  accept_start_.reset();  // never set: nothing waits for it once the accept loop is cancelled
  acceptor_.add_done_callback([this] { stop_once_closed(); }, "metrics:acceptor_ended");
  for (auto& [number, connection] : connections_) connection.cancel();
}

void MetricsHttpServer::stop_once_closed() {
  if (!stopping_ || !acceptor_.done() || !connections_.empty() || stop_asked_) return;
  stop_asked_ = true;
  loop_->stop_once_sockets_closed(kCloseLimit);
}

void MetricsHttpServer::start_serving(Socket connection) {
  const uint64_t number = next_connection_++;
  Future<> task = create_task(*loop_, serve(std::move(connection)), "metrics:connection");
  task.add_done_callback(
      [this, number] {
        connections_.erase(number);
        stop_once_closed();
      },
      "metrics:connection_ended");
  connections_.emplace(number, std::move(task));
}

absl::StatusOr<UniqueFd> MetricsHttpServer::DuplicateListener() {
  if (loop_ == nullptr) return absl::FailedPreconditionError("the metrics port has stopped");
  auto dup = CallInLoop(
      *loop_,
      [this]() -> absl::StatusOr<int> {
        if (acceptor_.done()) return absl::FailedPreconditionError("the metrics port no longer accepts");
        int fd = ::fcntl(listener_fd_, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) return absl::ErrnoToStatus(errno, "duplicating the metrics listener");
        return fd;
      },
      std::chrono::seconds(5), "metrics:duplicate_listener");
  if (!dup.ok()) return dup.status();
  if (!dup->ok()) return dup->status();
  return UniqueFd(**dup);
}

void MetricsHttpServer::StartAccepting() {
  if (loop_ == nullptr) return;
  (void)CallInLoop(
      *loop_,
      [this] {
        if (accept_start_.has_value()) accept_start_->set_result();
        accept_start_.reset();
        return true;
      },
      std::chrono::seconds(5), "metrics:start_accepting");
}

void MetricsHttpServer::StopAccepting() {
  if (loop_ == nullptr) return;
  // Cancelling the accept loop closes the listener it owns.
  (void)CallInLoop(
      *loop_,
      [this] {
        handed_over_.store(true);
        return acceptor_.cancel();
      },
      std::chrono::seconds(5), "metrics:stop_accepting");
}

Task<> MetricsHttpServer::accept_loop(Socket listener, std::optional<Future<>> start) {
  RetryBackoff backoff;
  // StopAccepting cancels this task at the hand-over: it ends at its next wait.
  try {
    if (start.has_value()) co_await *start;
    for (;;) {
      if (open_descriptors_.load() >= static_cast<int64_t>(options_.max_connections)) {
        if (IsPowerOfTen(++waits_at_cap_)) {
          PrintToStderr(
              "metrics port: all %u connections are in use; new ones wait in the backlog, and idle, silent or unread "
              "ones are closed for them (%llu times so far; --metrics_max_connections)\n",
              options_.max_connections, static_cast<unsigned long long>(waits_at_cap_));
        }
        while (open_descriptors_.load() >= static_cast<int64_t>(options_.max_connections)) {
          make_room(listener);
          co_await sleep(kCapPoll);
        }
      }
      // The place is taken before the accept, so that the count never falls behind the
      // descriptors open; the socket gives it back when its descriptor is closed.
      open_descriptors_.fetch_add(1);
      absl::StatusOr<Socket> connection = co_await listener.accept();
      if (!connection.ok()) {
        open_descriptors_.fetch_sub(1);
        if (absl::IsCancelled(connection.status())) co_return;
        // Out of descriptors (or memory): pause instead of spinning on a listener that stays
        // readable; reported at the 1st, 10th, 100th... error.
        if (IsPowerOfTen(++accept_errors_)) {
          PrintToStderr("metrics port: %s (%llu accept errors so far); retrying in %lld ms\n",
                        std::string(connection.status().message()).c_str(),
                        static_cast<unsigned long long>(accept_errors_),
                        static_cast<long long>(std::chrono::duration_cast<milliseconds>(backoff.pause()).count()));
        }
        co_await sleep(backoff.pause());
        backoff.failed();
        continue;
      }
      backoff.succeeded();
      connection->count_descriptor_in(&open_descriptors_);
      start_serving(*std::move(connection));
    }
  } catch (const CancelledError&) {
  }
  // Stopping: the clients queued are reset as the listener closes (this process goes).
  if (stopping_) co_return;
  // A client whose connection arrived as the accept was cancelled asked this process, and it
  // may be waiting in the backlog unseen by the new one (Socket::accept_queued): answered here.
  while (open_descriptors_.load() < static_cast<int64_t>(options_.max_connections)) {
    open_descriptors_.fetch_add(1);
    absl::StatusOr<std::optional<Socket>> queued = listener.accept_queued();
    if (!queued.ok() || !queued->has_value()) {
      open_descriptors_.fetch_sub(1);
      break;
    }
    (*queued)->count_descriptor_in(&open_descriptors_);
    start_serving(std::move(**queued));
  }
}

bool MetricsHttpServer::may_close(Wait& w, int64_t now_ns) {
  if (w.for_answer) {
    const int64_t unsent = Unsent(w.fd);
    if (unsent != w.unsent) {  // a byte taken (or the first look): it reads
      w.unsent = unsent;
      w.since_ns = now_ns;
    }
    return now_ns - w.since_ns >= kUnreadAnswerBeforeReclaimNs;
  }
  const int64_t waited = now_ns - w.since_ns;
  const bool idle = w.kept_alive && w.received->empty() && waited >= kIdleBeforeReclaimNs;
  // Bytes waiting in a connection's socket may complete its head: its task is about to take
  // them, so it is busy, not idle.
  return (idle || waited >= kSlowHeadBeforeReclaimNs) && !HasBytes(w.fd);
}

void MetricsHttpServer::make_room(const Socket& listener) {
  if (waits_.empty()) return;
  int64_t queued = QueuedConnections(listener.fd());
  const int64_t now = MonotonicNanos();
  for (auto it = waits_.begin(); it != waits_.end() && queued > 0;) {
    Wait& w = it->second;
    if (!may_close(w, now)) {
      ++it;
      continue;
    }
    uint64_t* count = nullptr;
    const char* why = nullptr;
    if (w.for_answer) {
      // A reset: what it did not read is not worth delivering. Its send ends (EPIPE) and its
      // task closes the connection.
      linger reset{.l_onoff = 1, .l_linger = 0};
      (void)::setsockopt(w.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      ::shutdown(w.fd, SHUT_RDWR);
      count = &reclaimed_unread_;
      why = "a connection that took no byte of its answer in 1 s";
    } else {
      // Its pending receive ends as at the client's close, and its task closes the connection.
      ::shutdown(w.fd, SHUT_RD);
      const bool idle = w.kept_alive && w.received->empty();
      count = idle ? &reclaimed_idle_ : &reclaimed_slow_;
      why = idle ? "an idle connection" : "a connection that sent no whole request in 1 s";
    }
    it = waits_.erase(it);
    --queued;
    if (IsPowerOfTen(++*count)) {
      PrintToStderr("metrics port: closed %s for one waiting in the backlog (%llu so far; --metrics_max_connections)\n",
                    why, static_cast<unsigned long long>(*count));
    }
  }
}

Task<> MetricsHttpServer::serve(Socket connection) {
  // Leaves the table of waits when the task ends, however it ends (destroyed with the loop too).
  struct WaitEntry {
    ~WaitEntry() { clear(); }
    void clear() {
      if (key != 0) server.waits_.erase(key);
      key = 0;
    }
    MetricsHttpServer& server;
    uint64_t key = 0;  // in waits_ while waiting for a request
  } waiting{*this};
  struct FirstAnswer {
    explicit FirstAnswer(std::atomic<int>& count) : count(count) { count.fetch_add(1); }
    ~FirstAnswer() { given(); }
    void given() {
      if (!done) count.fetch_sub(1);
      done = true;
    }
    std::atomic<int>& count;
    bool done = false;
  } first_answer(unanswered_);
  std::string received;
  // Accepted without a byte at the end of the deferral: silent since it opened, that long ago.
  int64_t silent_before_ns =
      !HasBytes(connection.fd()) && WaitedTheDeferral(connection.fd()) ? kDeferAccept.count() : 0;
  for (;;) {
    // While it waits for a request, make_room may close it: kept alive after an answer with
    // nothing of the next request arrived (idle), or without a whole head for a second (slow).
    waiting.key = next_wait_++;
    waits_.emplace(waiting.key, Wait{.fd = connection.fd(),
                                     .since_ns = MonotonicNanos() - std::exchange(silent_before_ns, 0),
                                     .for_answer = false,
                                     .kept_alive = first_answer.done,
                                     .received = &received});
    absl::StatusOr<std::optional<HttpRequest>> read =
        co_await wait_for(ReadRequest(connection, received), options_.idle_timeout);
    waiting.clear();
    if (!read.ok()) {
      // Not HTTP: say why, then close (where the next request would start is unknown). Idle,
      // or a head that took too long (DeadlineExceeded): close.
      if (absl::IsInvalidArgument(read.status()) || absl::IsResourceExhausted(read.status())) {
        std::string answer =
            FormatResponse(Text(HttpStatusFor(read.status()), absl::StrCat(read.status().message(), "\n")),
                           /*keep_alive=*/false, /*head_only=*/false);
        (void)co_await wait_for(SendAll(connection, answer), options_.idle_timeout);
      }
      co_return;
    }
    if (!read->has_value()) co_return;  // the client closed
    const HttpRequest& request = **read;
    // After a hand-over, each client is sent to the new process for its next request.
    bool keep_alive = request.keep_alive() && !handed_over_.load();
    std::string answer = FormatResponse(Answer(request), keep_alive, /*head_only=*/request.method == "HEAD");
    // While its answer waits to be taken, make_room may close it: no byte taken for a second.
    waiting.key = next_wait_++;
    waits_.emplace(waiting.key, Wait{.fd = connection.fd(),
                                     .since_ns = MonotonicNanos(),
                                     .for_answer = true,
                                     .kept_alive = first_answer.done,
                                     .received = nullptr});
    absl::Status sent = co_await wait_for(SendAll(connection, answer), options_.idle_timeout);
    waiting.clear();
    first_answer.given();
    if (!sent.ok() || !keep_alive) co_return;
  }
}

HttpResponse MetricsHttpServer::Answer(const HttpRequest& request) const {
  if (absl::Status allowed = options_.auth.CheckHeader(request.values("authorization")); !allowed.ok()) {
    HttpResponse r = Text(401, absl::StrCat(allowed.message(), "\n"));
    r.headers.push_back("WWW-Authenticate: Bearer realm=\"brrr\"");
    return r;
  }
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = Text(405, absl::StrCat("method ", request.method, " is not allowed here: use GET or HEAD\n"));
    r.headers.push_back("Allow: GET, HEAD");
    return r;
  }
  absl::string_view path = request.path();
  if (path == "/metrics") {
    HttpResponse r = Text(200, exposition());
    r.content_type = kExpositionType;
    return r;
  }
  if (path == "/healthz") return Text(200, "ok\n");
  if (path == "/readyz") {
    std::string why = pages_.not_ready ? pages_.not_ready() : std::string();
    return why.empty() ? Text(200, "ready\n") : Text(503, absl::StrCat("not ready: ", why, "\n"));
  }
  return Text(
      404, absl::StrCat("no page at ", absl::CHexEscape(path), ": this port serves /metrics, /healthz and /readyz\n"));
}

std::string MetricsHttpServer::exposition() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : pages_.collectables) {
    std::vector<prometheus::MetricFamily> more = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace brrr::control
