#include "tests/testing/mixed_clients.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/net.h"

namespace brrr::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// No exchange may take longer, however loaded the machine: past it, the server is stuck.
constexpr seconds kExchangeLimit{60};

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
  std::string Bytes(size_t size) { return RandomBytes(size, static_cast<uint32_t>(rng_())); }

 private:
  std::mt19937_64 rng_;
};

// One non-blocking client connection to 127.0.0.1, closed when it goes (unless closed or reset before).
class Connection {
 public:
  // Connects; `receive_buffer` and `send_buffer` > 0 are set first (the window it offers is
  // fixed at the handshake).
  static absl::StatusOr<Connection> Open(uint16_t port, ClientTally& tally, int receive_buffer = 0,
                                         int send_buffer = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
    Connection c(fd, port);
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
    sockaddr_in local{};
    socklen_t size = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size);
    c.local_port_ = ntohs(local.sin_port);
    tally.connects++;
    return c;
  }
  Connection(Connection&& other)
      : fd_(std::exchange(other.fd_, -1)), server_port_(other.server_port_), local_port_(other.local_port_) {}
  Connection& operator=(Connection&&) = delete;
  ~Connection() { Close(); }

  int fd() const { return fd_; }
  uint16_t local_port() const { return local_port_; }
  // Where this connection's bytes sit at both ends (LoopbackQueues), for a failure message.
  std::string Queues() const { return LoopbackQueues(local_port_, server_port_); }
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
  Connection(int fd, uint16_t server_port) : fd_(fd), server_port_(server_port) {}
  int fd_;
  uint16_t server_port_;
  uint16_t local_port_ = 0;
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
                      ClientTally& tally) {
  const size_t n = data.size();
  size_t sent = shape.sent_before, got = 0;
  bool ended = false, shut = false, reading = !shape.reads_after_sending;
  const Clock::time_point give_up = Clock::now() + kExchangeLimit;
  Clock::time_point last_progress = Clock::now();
  std::string chunk(shape.receive_max, '\0');
  auto state = [&] { return absl::StrCat(" (", sent, " of ", n, " bytes sent, ", got, " echoed)"); };
  auto failed = [&](const std::string& what) { return absl::InternalError(what + state()); };
  auto wrong = [&](const std::string& what) { return absl::DataLossError(what + state()); };
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
    if (Clock::now() > give_up) {
      const double quiet = std::chrono::duration<double>(Clock::now() - last_progress).count();
      return failed(absl::StrCat("no end in ", kExchangeLimit.count(), " s (nothing moved in the last ",
                                 absl::SixDigits(quiet), " s; ", c.Queues(), ")"));
    }
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
        if (got + r > n) return wrong(absl::StrCat(got + r - n, " bytes echoed that were never sent"));
        if (std::memcmp(chunk.data(), data.data() + got, r) != 0) {
          ssize_t i = 0;
          while (chunk[i] == data[got + i]) ++i;
          return wrong(absl::StrCat("a wrong byte echoed at offset ", got + i, ": ", chunk[i] & 0xff, " for ",
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

// What a behaviour needs: where the server is, the run's end, the bound on what a client that
// never reads may get taken, the tally and the choices; it keeps the local ports of the
// connections it opened.
struct Client {
  uint16_t port;
  Clock::time_point end;
  size_t queue_bound;
  ClientTally& tally;
  Choices& choose;
  std::vector<uint16_t> local_ports;

  absl::StatusOr<Connection> Connect(int receive_buffer = 0, int send_buffer = 0) {
    absl::StatusOr<Connection> c = Connection::Open(port, tally, receive_buffer, send_buffer);
    if (c.ok()) local_ports.push_back(c->local_port());
    return c;
  }
};

// A client's way of behaving. Not OK: a promise the server broke (DataLoss: a wrong byte), or a
// connection it refused (Unavailable: only a draining server may).
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
  const size_t most = MostANeverReaderCanSend(client.queue_bound, kWindow);
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

// A number from the environment, or `otherwise`.
uint64_t FromEnvironment(const char* name, uint64_t otherwise) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : otherwise;
}

}  // namespace

uint64_t MixedClientsSeed() { return FromEnvironment("BRRR_MIXED_CLIENTS_SEED", std::random_device{}()); }

std::chrono::seconds MixedClientsDuration() { return seconds(FromEnvironment("BRRR_MIXED_CLIENTS_SECONDS", 5)); }

void MixedClients::Start(Clock::time_point end) {
  std::printf("mixed clients: seed %llu (BRRR_MIXED_CLIENTS_SEED replays it), %d workers for %.1f s\n",
              static_cast<unsigned long long>(options_.seed), options_.workers,
              std::chrono::duration<double>(end - Clock::now()).count());
  end_ = end;
  for (int w = 0; w < options_.workers; ++w) workers_.emplace_back([this, w] { Work(w); });
}

void MixedClients::Join() {
  for (std::thread& w : workers_) w.join();
  workers_.clear();
}

std::vector<std::string> MixedClients::Failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

void MixedClients::Work(int worker) {
  for (int iteration = 0; Clock::now() < end_; ++iteration) {
    Choices choose(options_.seed, worker, iteration);
    const Weighted& picked = Pick(choose);
    Client client{options_.port, end_, options_.queue_bound, tally_, choose, {}};
    absl::Status kept = picked.behaviour(client);
    if (kept.ok()) continue;
    if (absl::IsUnavailable(kept) && draining_.load()) return;  // refused: the listeners are closed
    if (!absl::IsDataLoss(kept) && options_.closed_on_purpose != nullptr &&
        std::any_of(client.local_ports.begin(), client.local_ports.end(), options_.closed_on_purpose)) {
      tally_.excused++;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back(absl::StrCat("seed ", options_.seed, ", worker ", worker, ", iteration ", iteration, " (",
                                     picked.name, "): ", kept.ToString()));
  }
}

}  // namespace brrr::testing
