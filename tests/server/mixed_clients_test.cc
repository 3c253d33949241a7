// brrr-echo (two loops; every backend, and the copies whose system calls fail now and then)
// under clients that behave differently at once, picked at random for a few seconds: plain
// echoes with odd send and receive sizes, pipelines read only after everything is sent,
// half-closes, resets while sending and while receiving, clients that never read (and some that
// then read everything back), slow readers, storms of short connections, idle ones. Each
// behaviour has its own test elsewhere; this one is for what they do to each other. It asserts
// the server's promises together:
// - every byte of every echo a client waited for comes back, in order, and ends as the client
//   ended (an end of stream only after the whole echo of a half-closed connection);
// - a client that never reads gets no more taken from it than the high-water mark allows;
// - the metrics port answers throughout;
// - once the clients are gone every descriptor comes back and no connection is left;
// - the drain exits 0, and its summary accounts for every connection the clients made and no
//   more bytes than they sent and received;
// - a drain that starts halfway refuses new connections and lets every open one (and every one
//   waiting in the backlog) finish as it would have without it.
// The seed is printed; BRRR_MIXED_CLIENTS_SEED replays one, BRRR_MIXED_CLIENTS_SECONDS runs
// longer (a soak: `bazel test -c opt //tests/server:mixed_clients_test
// --test_env=BRRR_MIXED_CLIENTS_SECONDS=120`).
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/server/echo_server_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/http_client.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/side_ports.h"

namespace brrr {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The server's bound on what it holds per connection (flags below), which a client that never
// reads must meet.
constexpr size_t kHighWater = 65536;
constexpr size_t kReceiveBuffer = 16384;  // brrr-echo's default --recv_buffer_size
constexpr int kWorkers = 8;
// No exchange may take longer, however loaded the machine: past it, the server is stuck.
constexpr seconds kExchangeLimit{60};

// What the clients did, for the server's own accounts to be checked against.
struct Tally {
  std::atomic<uint64_t> connects{0};       // connections established (the server must serve each)
  std::atomic<uint64_t> bytes_sent{0};     // bytes the clients' kernels took
  std::atomic<uint64_t> bytes_checked{0};  // echo bytes received and found right
};

// A client's random choices, from the run's seed, the worker and its iteration: a failure names
// all three.
class Choices {
 public:
  Choices(uint64_t seed, int worker, int iteration) {
    std::seed_seq from{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(worker),
                       static_cast<uint32_t>(iteration)};
    rng_.seed(from);
  }

  size_t Uniform(size_t low, size_t high) { return std::uniform_int_distribution<size_t>(low, high)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  // From `low` to `high`, every power of two as likely as the next: small and large sizes both.
  size_t Size(size_t low, size_t high) {
    double x = std::uniform_real_distribution<double>(std::log(low), std::log(high + 1.0))(rng_);
    return std::clamp(static_cast<size_t>(std::exp(x)), low, high);
  }
  template <typename T>
  T OneOf(std::initializer_list<T> values) {
    return *(values.begin() + Uniform(0, values.size() - 1));
  }
  std::string Bytes(size_t size) { return testing::RandomBytes(size, static_cast<uint32_t>(rng_())); }

 private:
  std::mt19937_64 rng_;
};

// One non-blocking client connection to 127.0.0.1, closed when it goes (unless closed or reset before).
class Connection {
 public:
  // Connects; `receive_buffer` and `send_buffer` > 0 are set first (the window it offers is
  // fixed at the handshake).
  static absl::StatusOr<Connection> Open(uint16_t port, Tally& tally, int receive_buffer = 0, int send_buffer = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    Connection c(fd);
    if (receive_buffer > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    if (send_buffer > 0) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
    timeval limit{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);  // bounds the connect
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      // Unavailable for a refusal alone: what a draining server may answer.
      return errno == ECONNREFUSED ? absl::UnavailableError("connection refused")
                                   : absl::InternalError(absl::StrCat("connect: ", std::strerror(errno)));
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    tally.connects++;
    return c;
  }
  Connection(Connection&& other) : fd_(std::exchange(other.fd_, -1)) {}
  Connection& operator=(Connection&&) = delete;
  ~Connection() { Close(); }

  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes with a reset (SO_LINGER 0), as a client that crashes or gives up does.
  void Reset() {
    linger now{1, 0};
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &now, sizeof now);
    Close();
  }
  // Closes, now and then with a reset.
  void CloseSomeWay(Choices& choose) { choose.Chance(0.15) ? Reset() : Close(); }

 private:
  explicit Connection(int fd) : fd_(fd) {}
  int fd_;
};

// How a client sends `data` and reads its echo, besides doing both at once.
struct ExchangeShape {
  size_t send_max = 65536;     // bytes per send, at most (each a random count from 1)
  size_t receive_max = 65536;  // bytes per receive, at most
  milliseconds pause_after_receive{0};
  bool reads_after_sending = false;            // reads nothing until all is sent (or sending stalls 1.5 s)
  bool half_close = false;                     // shuts its side once all is sent: the echo, then an end of stream
  std::optional<size_t> reset_after_sent;      // resets the connection once this many bytes went
  std::optional<size_t> reset_after_received;  // or once this many came back
  size_t sent_before = 0;                      // the first bytes of `data` went before the exchange
};

// Sends `data` on `c` and checks its echo byte for byte, shaped by `shape`. OK also when the
// shape's reset ended it.
absl::Status Exchange(Connection& c, const std::string& data, const ExchangeShape& shape, Choices& choose,
                      Tally& tally) {
  const size_t n = data.size();
  size_t sent = shape.sent_before, got = 0;
  bool ended = false, shut = false, reading = !shape.reads_after_sending;
  const Clock::time_point give_up = Clock::now() + kExchangeLimit;
  Clock::time_point last_progress = Clock::now();
  std::string chunk(shape.receive_max, '\0');
  auto failed = [&](const std::string& what) {
    return absl::InternalError(absl::StrCat(what, " (", sent, " of ", n, " bytes sent, ", got, " echoed)"));
  };
  for (;;) {
    if ((shape.reset_after_sent && sent >= *shape.reset_after_sent) ||
        (shape.reset_after_received && got >= *shape.reset_after_received)) {
      c.Reset();
      return absl::OkStatus();
    }
    if (sent == n && shape.half_close && !shut) {
      ::shutdown(c.fd(), SHUT_WR);
      shut = true;
    }
    if (got == n && (!shape.half_close || ended)) return absl::OkStatus();
    if (ended) return failed("an end of stream before the whole echo");
    if (Clock::now() > give_up) return failed(absl::StrCat("no end in ", kExchangeLimit.count(), " s"));
    if (!reading && (sent == n || Clock::now() - last_progress > milliseconds(1500))) reading = true;
    pollfd p{c.fd(), static_cast<short>((sent < n ? POLLOUT : 0) | (reading ? POLLIN : 0)), 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    if (reading && (p.revents & (POLLIN | POLLERR | POLLHUP))) {
      ssize_t r = ::recv(c.fd(), chunk.data(), choose.Uniform(1, shape.receive_max), 0);
      if (r == 0) {
        ended = true;
        continue;
      }
      if (r < 0 && errno != EAGAIN && errno != EINTR) return failed(absl::StrCat("receive: ", std::strerror(errno)));
      if (r > 0) {
        if (got + r > n) return failed(absl::StrCat(got + r - n, " bytes echoed that were never sent"));
        if (std::memcmp(chunk.data(), data.data() + got, r) != 0) {
          ssize_t i = 0;
          while (chunk[i] == data[got + i]) ++i;
          return failed(absl::StrCat("a wrong byte echoed at offset ", got + i, ": ", chunk[i] & 0xff, " for ",
                                     data[got + i] & 0xff));
        }
        got += r;
        tally.bytes_checked += r;
        last_progress = Clock::now();
        if (shape.pause_after_receive.count() > 0) std::this_thread::sleep_for(shape.pause_after_receive);
      }
    }
    if (sent < n && (p.revents & POLLOUT)) {
      size_t size = std::min(choose.Uniform(1, shape.send_max), n - sent);
      ssize_t w = ::send(c.fd(), data.data() + sent, size, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) return failed(absl::StrCat("send: ", std::strerror(errno)));
      if (w > 0) {
        sent += w;
        tally.bytes_sent += w;
        last_progress = Clock::now();
      }
    } else if (!reading && (p.revents & (POLLERR | POLLHUP))) {
      return failed("the connection failed while the client sent");
    }
  }
}

// What a behaviour needs: where the server is, the run's end, the tally and the choices.
struct Client {
  uint16_t port;
  Clock::time_point end;
  Tally& tally;
  Choices& choose;

  absl::StatusOr<Connection> Connect(int receive_buffer = 0, int send_buffer = 0) {
    return Connection::Open(port, tally, receive_buffer, send_buffer);
  }
};

// A client's way of behaving. Not OK: a promise the server broke (or a connection it refused:
// Unavailable, which only a draining server may do).
using Behaviour = absl::Status (*)(Client&);

// One to four echoes of any size, sent and received in pieces of any size.
absl::Status PlainEchoes(Client& client) {
  absl::StatusOr<Connection> c = client.Connect();
  if (!c.ok()) return c.status();
  for (size_t i = client.choose.Uniform(1, 4); i > 0 && Clock::now() < client.end; --i) {
    ExchangeShape shape;
    shape.send_max = client.choose.OneOf<size_t>({1, 7, 512, 4096, 65536, 1 << 20});
    shape.receive_max = client.choose.OneOf<size_t>({1, 13, 1024, 16384, 1 << 20});
    // A byte at a time, 16 KiB at most (here and below): the test is not about that client's patience.
    const size_t most = std::min(shape.send_max, shape.receive_max) < 100 ? 16384 : 256 * 1024;
    absl::Status echoed =
        Exchange(*c, client.choose.Bytes(client.choose.Size(1, most)), shape, client.choose, client.tally);
    if (!echoed.ok()) return echoed;
  }
  c->CloseSomeWay(client.choose);
  return absl::OkStatus();
}

// Many small messages sent back to back, the echoes read only once all are sent.
absl::Status Pipeline(Client& client) {
  absl::StatusOr<Connection> c = client.Connect();
  if (!c.ok()) return c.status();
  std::string all;
  for (size_t i = client.choose.Uniform(10, 200); i > 0; --i) all += client.choose.Bytes(client.choose.Size(1, 4096));
  ExchangeShape shape;
  shape.send_max = client.choose.OneOf<size_t>({64, 4096, 1 << 20});
  shape.receive_max = client.choose.OneOf<size_t>({100, 4096, 65536});
  shape.reads_after_sending = true;
  absl::Status echoed = Exchange(*c, all, shape, client.choose, client.tally);
  if (echoed.ok()) c->CloseSomeWay(client.choose);
  return echoed;
}

// Sends, shuts its side: the whole echo must come back, then an end of stream (and only that,
// for a client that sent nothing).
absl::Status HalfClose(Client& client) {
  absl::StatusOr<Connection> c = client.Connect();
  if (!c.ok()) return c.status();
  ExchangeShape shape;
  shape.half_close = true;
  shape.reads_after_sending = client.choose.Chance(0.5);
  shape.send_max = client.choose.OneOf<size_t>({1, 4096, 1 << 20});
  const size_t size = client.choose.Chance(0.1) ? 0 : client.choose.Size(1, shape.send_max > 1 ? 256 * 1024 : 4096);
  return Exchange(*c, client.choose.Bytes(size), shape, client.choose, client.tally);
}

// Resets its connection partway through sending.
absl::Status ResetWhileSending(Client& client) {
  absl::StatusOr<Connection> c = client.Connect();
  if (!c.ok()) return c.status();
  ExchangeShape shape;
  std::string data = client.choose.Bytes(client.choose.Size(1, 256 * 1024));
  shape.reset_after_sent = client.choose.Uniform(0, data.size());
  shape.reads_after_sending = client.choose.Chance(0.5);
  return Exchange(*c, data, shape, client.choose, client.tally);
}

// Resets its connection partway through reading the echo.
absl::Status ResetWhileReceiving(Client& client) {
  absl::StatusOr<Connection> c = client.Connect();
  if (!c.ok()) return c.status();
  ExchangeShape shape;
  shape.receive_max = client.choose.OneOf<size_t>({1, 4096});
  std::string data = client.choose.Bytes(client.choose.Size(1, shape.receive_max > 1 ? 256 * 1024 : 16384));
  shape.reset_after_received = client.choose.Uniform(0, data.size());
  return Exchange(*c, data, shape, client.choose, client.tally);
}

// Sends and never reads until the server stops taking its bytes, which must happen within the
// high-water mark's bound; then reads the whole echo back (half the time) or goes.
absl::Status NeverReads(Client& client) {
  constexpr int kWindow = 4096;
  absl::StatusOr<Connection> c = client.Connect(kWindow, client.choose.OneOf<int>({4096, 1 << 20}));
  if (!c.ok()) return c.status();
  const size_t most = testing::MostANeverReaderCanSend(kHighWater + kReceiveBuffer, kWindow);
  const std::string block = client.choose.Bytes(65536);
  std::string sent;
  const Clock::time_point stop = Clock::now() + milliseconds(client.choose.Uniform(1000, 3000));
  Clock::time_point last_progress = Clock::now();
  while (Clock::now() < stop && Clock::now() - last_progress < seconds(1)) {
    pollfd p{c->fd(), POLLOUT, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t w = ::send(c->fd(), block.data(), block.size(), MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return absl::InternalError(absl::StrCat("send: ", std::strerror(errno)));
    if (w <= 0) continue;
    sent.append(block, 0, w);
    client.tally.bytes_sent += w;
    last_progress = Clock::now();
    if (sent.size() > most) {
      return absl::InternalError(absl::StrCat("a client that never reads got ", sent.size(),
                                              " bytes taken, more than the ", most,
                                              " a server that stops reading at its high-water mark can take"));
    }
  }
  if (!client.choose.Chance(0.5)) {
    c->CloseSomeWay(client.choose);
    return absl::OkStatus();
  }
  ExchangeShape read_back;
  read_back.sent_before = sent.size();
  absl::Status echoed = Exchange(*c, sent, read_back, client.choose, client.tally);
  if (!echoed.ok()) return absl::InternalError(absl::StrCat("reading back what it had sent: ", echoed.message()));
  return absl::OkStatus();
}

// Reads its echo in small pieces with pauses, through a small window now and then: the server
// pauses at its high-water mark and resumes, many times over.
absl::Status ReadsSlowly(Client& client) {
  absl::StatusOr<Connection> c = client.Connect(client.choose.OneOf<int>({4096, 16384, 0}));
  if (!c.ok()) return c.status();
  ExchangeShape shape;
  shape.receive_max = client.choose.OneOf<size_t>({512, 4096, 16384});
  shape.pause_after_receive = milliseconds(client.choose.OneOf<int>({1, 5}));
  shape.half_close = client.choose.Chance(0.3);
  shape.reads_after_sending = shape.half_close && client.choose.Chance(0.5);
  // About two seconds of reading at half the piece size per pause.
  const size_t most = 2 * shape.receive_max / 2 * 1000 / static_cast<size_t>(shape.pause_after_receive.count());
  absl::Status echoed = Exchange(*c, client.choose.Bytes(client.choose.Size(16384, std::max<size_t>(most, 16384))),
                                 shape, client.choose, client.tally);
  if (echoed.ok()) c->CloseSomeWay(client.choose);
  return echoed;
}

// Short connections one after another: closed or reset at once, or after a few bytes.
absl::Status Storm(Client& client) {
  for (size_t i = client.choose.Uniform(10, 60); i > 0 && Clock::now() < client.end; --i) {
    absl::StatusOr<Connection> c = client.Connect();
    if (!c.ok()) return c.status();
    if (client.choose.Chance(0.5)) {
      std::string some = client.choose.Bytes(client.choose.Uniform(1, 3000));
      ssize_t w = ::send(c->fd(), some.data(), some.size(), MSG_NOSIGNAL);
      if (w > 0) client.tally.bytes_sent += w;
    }
    client.choose.Chance(0.5) ? c->Reset() : c->Close();
  }
  return absl::OkStatus();
}

// Connects, says nothing for a while, then echoes a little.
absl::Status IdleFirst(Client& client) {
  absl::StatusOr<Connection> c = client.Connect();
  if (!c.ok()) return c.status();
  const Clock::time_point wake = Clock::now() + milliseconds(client.choose.Uniform(200, 1500));
  std::this_thread::sleep_until(std::min(wake, client.end));
  absl::Status echoed =
      Exchange(*c, client.choose.Bytes(client.choose.Uniform(1, 5000)), ExchangeShape{}, client.choose, client.tally);
  if (echoed.ok()) c->CloseSomeWay(client.choose);
  return echoed;
}

struct Weighted {
  const char* name;
  Behaviour behaviour;
  int weight;
};

constexpr Weighted kBehaviours[] = {
    {"plain echoes", PlainEchoes, 6},
    {"pipeline", Pipeline, 3},
    {"half-close", HalfClose, 4},
    {"reset while sending", ResetWhileSending, 2},
    {"reset while receiving", ResetWhileReceiving, 2},
    {"never reads", NeverReads, 1},
    {"reads slowly", ReadsSlowly, 1},
    {"storm", Storm, 1},
    {"idle first", IdleFirst, 1},
};

const Weighted& Pick(Choices& choose) {
  int total = 0;
  for (const Weighted& w : kBehaviours) total += w.weight;
  int at = static_cast<int>(choose.Uniform(0, total - 1));
  for (const Weighted& w : kBehaviours) {
    if (at < w.weight) return w;
    at -= w.weight;
  }
  return kBehaviours[0];
}

// The failures of every worker, each naming the seed, worker, iteration and behaviour.
class Failures {
 public:
  void Add(std::string failure) {
    std::lock_guard<std::mutex> lock(mu_);
    all_.push_back(std::move(failure));
  }
  std::vector<std::string> All() {
    std::lock_guard<std::mutex> lock(mu_);
    return all_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> all_;
};

// Where the clients go, until when, and what they may meet.
struct ClientRun {
  uint64_t seed;
  uint16_t port;
  Clock::time_point end;
  // Set (before the signal) when the server is told to drain: from then on a refused
  // connection is what the server promises, and ends that worker's run.
  std::atomic<bool> draining{false};
  Tally tally;
  Failures failures;
};

// One worker: behaviours one after another until the run ends, each with its own choices.
void Work(ClientRun& run, int worker) {
  for (int iteration = 0; Clock::now() < run.end; ++iteration) {
    Choices choose(run.seed, worker, iteration);
    const Weighted& picked = Pick(choose);
    Client client{run.port, run.end, run.tally, choose};
    absl::Status kept = picked.behaviour(client);
    if (absl::IsUnavailable(kept) && run.draining.load()) return;  // refused: the listeners are closed
    if (!kept.ok()) {
      run.failures.Add(absl::StrCat("seed ", run.seed, ", worker ", worker, ", iteration ", iteration, " (",
                                    picked.name, "): ", kept.ToString()));
    }
  }
}

// Scrapes the metrics port every 250 ms until stopped; each answer must be a 200.
class Scraper {
 public:
  Scraper(uint16_t port, Failures& failures)
      : thread_([this, port, &failures] {
          while (!stop_.load()) {
            testing::HttpReply reply = testing::HttpGet(port, "/metrics");
            if (reply.status != 200) failures.Add(absl::StrCat("/metrics answered ", reply.status, ": ", reply.head));
            scrapes_++;
            std::this_thread::sleep_for(milliseconds(250));
          }
        }) {}
  ~Scraper() { Stop(); }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int scrapes() const { return scrapes_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> scrapes_{0};
  std::thread thread_;
};

// A number from the environment, or `otherwise`.
uint64_t FromEnvironment(const char* name, uint64_t otherwise) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : otherwise;
}

// The sum over the loops of a figure in a /metrics text (`name{loop="N"} value` lines).
double SumOverLoops(const std::string& text, const std::string& name) {
  double sum = 0;
  const std::string start = "\n" + name + "{loop=\"";
  for (size_t at = text.find(start); at != std::string::npos; at = text.find(start, at + 1)) {
    size_t value = text.find("} ", at);
    if (value != std::string::npos) sum += std::strtod(text.c_str() + value + 2, nullptr);
  }
  return sum;
}

// The figures of brrr-echo's last line, after its drain.
struct DrainSummary {
  unsigned long long served = 0, at_deadline = 0, by_signal = 0, bytes_in = 0, bytes_out = 0;
  unsigned long long clean = 0, reset = 0, discarded = 0, reset_in_backlog = 0;

  // From the server's output; false if the line is not there.
  bool Read(const std::string& out) {
    size_t at = out.find("brrr-echo: drained in ");
    if (at == std::string::npos) return false;
    double seconds = 0, up = 0;
    return std::sscanf(out.c_str() + at,
                       "brrr-echo: drained in %lf s: %llu connections served, %llu closed at the drain deadline, "
                       "%llu closed by a second signal, %llu bytes in, %llu bytes out, up %lf s; at the deadline "
                       "%llu closed cleanly, %llu with a reset, %llu bytes discarded after the end of stream; "
                       "%llu clients reset",
                       &seconds, &served, &at_deadline, &by_signal, &bytes_in, &bytes_out, &up, &clean, &reset,
                       &discarded, &reset_in_backlog) == 11;
  }
};

// On every backend, and on the copies of the readiness backends whose system calls fail now and
// then (testing::FaultyBackends: EINTR, spurious EAGAIN, short transfers, duplicated events).
class MixedClientsTest : public testing::EchoServerTest {
 protected:
  void SetUp() override {
    if (!testing::IsFaulty(GetParam())) EchoServerTest::SetUp();
  }

  // brrr-echo with two loops, the high-water mark above and a metrics port.
  void StartServer() {
    server_ = testing::StartOnFreeSidePorts(
        testing::EchoBinary(),
        [&](const testing::SidePorts& p) {
          std::vector<std::string> args = BackendFlags();
          args.insert(args.end(),
                      {"--port=0", "--loops=2", "--high_water=" + std::to_string(kHighWater), "--low_water=16384",
                       "--drain_timeout=120s", "--metrics_port=" + std::to_string(p.metrics)});
          return args;
        },
        &ports_);
    run_.port = server_->ListeningPort();
    ASSERT_NE(run_.port, 0) << server_->err();
  }

  // Runs the workers for the seconds BRRR_MIXED_CLIENTS_SECONDS says (5 by default), the metrics
  // port scraped until `midway` (if any) runs on this thread halfway through; then each failure
  // the workers met is the test's.
  void RunClients(const std::function<void()>& midway = nullptr) {
    run_.seed = FromEnvironment("BRRR_MIXED_CLIENTS_SEED", std::random_device{}());
    const seconds duration{FromEnvironment("BRRR_MIXED_CLIENTS_SECONDS", 5)};
    std::printf("seed %llu (BRRR_MIXED_CLIENTS_SEED replays it), %lld s of clients\n",
                static_cast<unsigned long long>(run_.seed), static_cast<long long>(duration.count()));
    Scraper scraper(ports_.metrics, run_.failures);
    run_.end = Clock::now() + duration;
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) workers.emplace_back(Work, std::ref(run_), w);
    if (midway) {
      std::this_thread::sleep_for(duration / 2);
      scraper.Stop();  // the metrics port closes when the server exits, which may come first
      midway();
    }
    for (std::thread& w : workers) w.join();
    scraper.Stop();
    EXPECT_GT(scraper.scrapes(), 0);
    for (const std::string& f : run_.failures.All()) ADD_FAILURE() << f;
    std::printf("%llu connections, %llu bytes sent, %llu echo bytes checked, %d scrapes\n",
                static_cast<unsigned long long>(run_.tally.connects.load()),
                static_cast<unsigned long long>(run_.tally.bytes_sent.load()),
                static_cast<unsigned long long>(run_.tally.bytes_checked.load()), scraper.scrapes());
  }

  // The server's exit status, which must come within 30 s (it has no connection left then), and
  // its summary, whose accounts must agree with what the clients did.
  void ExpectAnExitWhoseAccountsAgree() {
    std::optional<int> code = server_->Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << "no exit 30 s after the last client went";
    EXPECT_EQ(*code, 0) << server_->err();
    DrainSummary summary;
    ASSERT_TRUE(summary.Read(server_->out())) << server_->out();
    const Tally& t = run_.tally;
    EXPECT_EQ(summary.served + summary.reset_in_backlog, t.connects.load()) << server_->out();
    EXPECT_EQ(summary.at_deadline, 0u) << server_->out();
    EXPECT_LE(summary.bytes_out, summary.bytes_in) << server_->out();
    EXPECT_LE(summary.bytes_in + summary.discarded, t.bytes_sent.load()) << "the server read more than was sent";
    EXPECT_GE(summary.bytes_out, t.bytes_checked.load()) << "the clients checked more echo than the server sent";
  }

  std::unique_ptr<testing::Process> server_;
  testing::SidePorts ports_;
  ClientRun run_;

 private:
  // The flags that pick the backend: a faulty copy by its directory (.../faults/NAME/libbrrr_reactor_NAME.so).
  std::vector<std::string> BackendFlags() const {
    if (!testing::IsFaulty(GetParam())) return {"--backend=" + GetParam()};
    const std::string dir = GetParam().substr(0, GetParam().rfind('/'));
    return {"--backend=" + dir.substr(dir.rfind('/') + 1), "--plugin_dir=" + dir};
  }
};

TEST_P(MixedClientsTest, EveryClientGetsWhatItWasPromisedAndNothingIsLeftBehind) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const int fds_at_rest = SettledOpenFds(*server_);
  RunClients();
  // Every connection ends on the server's side too: its descriptors come back, no connection
  // is left open in its figures.
  EXPECT_EQ(WaitForOpenFds(*server_, fds_at_rest), fds_at_rest) << "descriptors left open after every client went";
  testing::HttpReply metrics = testing::HttpGet(ports_.metrics, "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.head;
  EXPECT_EQ(SumOverLoops(metrics.body, "brrr_connections_active"), 0) << metrics.body;
  EXPECT_EQ(SumOverLoops(metrics.body, "brrr_connections_accepted_total"),
            static_cast<double>(run_.tally.connects.load()))
      << metrics.body;
  server_->Signal(SIGTERM);
  ExpectAnExitWhoseAccountsAgree();
}

// SIGTERM halfway through: from then on connections are refused, and every one already made
// (or waiting in the backlog) is served to its end as it would have been without the drain.
TEST_P(MixedClientsTest, ADrainHalfwayLetsEveryConnectionFinishAsPromised) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  RunClients([&] {
    run_.draining.store(true);
    server_->Signal(SIGTERM);
  });
  ExpectAnExitWhoseAccountsAgree();
}

INSTANTIATE_TEST_SUITE_P(Backends, MixedClientsTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
INSTANTIATE_TEST_SUITE_P(Faulty, MixedClientsTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
