#include "tests/testing/net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "gtest/gtest.h"

namespace brrr::testing {

int CountOpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

uint64_t RaiseFdLimit(uint64_t want) {
  rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < want) {
    r.rlim_cur = want < r.rlim_max ? want : r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
    getrlimit(RLIMIT_NOFILE, &r);
  }
  return r.rlim_cur;
}

namespace {

// The third figure (the autotuning maximum) of /proc/sys/net/ipv4/<name> ("min default max");
// 64 MiB where it cannot be read, more than any common setting.
size_t TcpBufferMaximum(const char* name) {
  constexpr size_t kUnknown = size_t{64} << 20;
  std::string path = std::string("/proc/sys/net/ipv4/") + name;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return kUnknown;
  unsigned long long min = 0, initial = 0, max = 0;
  int fields = std::fscanf(f, "%llu %llu %llu", &min, &initial, &max);
  std::fclose(f);
  return fields == 3 ? static_cast<size_t>(max) : kUnknown;
}

// One end of a connection in /proc/net/tcp: its line's tx_queue (bytes not yet acknowledged,
// sent or not) and rx_queue (bytes received, not read), if there is such a line.
struct TcpEnd {
  bool found = false;
  unsigned long tx_queue = 0, rx_queue = 0;
  unsigned state = 0;
  unsigned timer = 0;          // 0 none, 1 retransmission, 2 keep-alive, 3 TIME-WAIT, 4 zero-window probe
  unsigned long timeouts = 0;  // retransmission timeouts (or probes) in a row without an answer
};

TcpEnd FindTcpEnd(uint16_t local_port, uint16_t remote_port) {
  TcpEnd end;
  FILE* f = std::fopen("/proc/net/tcp", "r");
  if (f == nullptr) return end;
  char line[512];
  bool header = true;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::exchange(header, false)) continue;
    unsigned local_ip = 0, local = 0, remote_ip = 0, remote = 0, state = 0, timer = 0;
    unsigned long tx = 0, rx = 0, when = 0, timeouts = 0;
    if (std::sscanf(line, " %*d: %x:%x %x:%x %x %lx:%lx %x:%lx %lx", &local_ip, &local, &remote_ip, &remote, &state,
                    &tx, &rx, &timer, &when, &timeouts) != 10) {
      continue;
    }
    if (local == local_port && remote == remote_port && local_ip == htonl(INADDR_LOOPBACK)) {
      end = TcpEnd{true, tx, rx, state, timer, timeouts};
      break;
    }
  }
  std::fclose(f);
  return end;
}

std::string DescribeTcpEnd(const char* name, const TcpEnd& end) {
  if (!end.found) return std::string(name) + " end: gone";
  // The kernel's TCP states (include/net/tcp_states.h), as ss names them.
  static const char* const kStates[] = {"?",        "established", "syn-sent",   "syn-recv", "fin-wait-1", "fin-wait-2",
                                        "time-wait", "closed",      "close-wait", "last-ack", "listen",     "closing"};
  static const char* const kTimers[] = {"", ", retransmission timer", ", keep-alive timer", ", TIME-WAIT timer",
                                        ", zero-window probe timer"};
  const char* state = end.state < std::size(kStates) ? kStates[end.state] : "?";
  std::string timer = end.timer < std::size(kTimers) ? kTimers[end.timer] : ", a timer";
  if (end.timeouts > 0) timer += " (" + std::to_string(end.timeouts) + " unanswered)";
  return std::string(name) + " end: " + std::to_string(end.tx_queue) + " bytes unacknowledged or unsent, " +
         std::to_string(end.rx_queue) + " unread (" + state + timer + ")";
}

}  // namespace

std::string LoopbackQueues(uint16_t client_port, uint16_t server_port) {
  return DescribeTcpEnd("client", FindTcpEnd(client_port, server_port)) + "; " +
         DescribeTcpEnd("server", FindTcpEnd(server_port, client_port));
}

size_t MostANeverReaderCanSend(size_t server_bound, size_t client_receive_buffer) {
  const size_t send_buffer = TcpBufferMaximum("tcp_wmem");
  const size_t receive_buffer = TcpBufferMaximum("tcp_rmem");
  const size_t way_in = send_buffer + receive_buffer;
  const size_t read_ahead = receive_buffer;
  const size_t way_out = send_buffer + 2 * client_receive_buffer;
  return way_in + read_ahead + server_bound + way_out;
}

std::string RandomBytes(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  std::mt19937 rng(seed);
  for (size_t i = 0; i < size; ++i) {
    // The first 256 bytes are every value once (shuffled by the seed), so every byte value
    // is exercised even by small payloads.
    s[i] = static_cast<char>(i < 256 ? (i + seed) & 0xff : rng() & 0xff);
  }
  return s;
}

namespace {

// The first port of the range the kernel gives connect() and bind(port 0)
// (net.ipv4.ip_local_port_range), or 0 if it cannot be read.
int EphemeralRangeStart() {
  FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (f == nullptr) return 0;
  int low = 0;
  int high = 0;
  const bool read = std::fscanf(f, "%d %d", &low, &high) == 2;
  std::fclose(f);
  return read ? low : 0;
}

// Whether nothing holds `port` on 127.0.0.1 now: a listener, a connection or TIME_WAIT (a
// bind without SO_REUSEADDR fails on any of them). Port 0 asks the kernel for one; the port
// bound is returned through `port`.
bool BindsNow(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::perror("PickFreePort: socket");
    std::abort();
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(*port);
  socklen_t size = sizeof a;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size) == 0;
  ::close(fd);
  if (bound) *port = ntohs(a.sin_port);
  return bound;
}

}  // namespace

uint16_t PickFreePort() {
  // Below the ephemeral range: every connect() of every test running beside this one takes
  // its local port from that range, so a port picked there can be taken between the pick and
  // the server's bind (seen in CI: "the port is in use"); below it only explicit binds
  // compete. At random, so that tests picking at the same moment rarely meet. Never one
  // this process was given before: a test that picks several ports before it binds any (a
  // server's metrics port, then its admin port) must not get the same twice.
  static std::mutex mutex;
  static std::set<uint16_t> given;
  std::lock_guard<std::mutex> lock(mutex);
  const int start = EphemeralRangeStart();
  constexpr int kSpan = 12288;
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(start - kSpan, start - 1);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // Below the range when it leaves room, else the kernel's choice (inside it).
    uint16_t port = start - kSpan >= 1024 ? static_cast<uint16_t>(pick(rng)) : 0;
    if (BindsNow(&port) && given.insert(port).second) return port;
  }
  std::fprintf(stderr, "PickFreePort: no free loopback port in 1000 tries\n");
  std::abort();
}

bool WaitUntilAccepting(uint16_t port, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  do {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool accepted = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    if (accepted) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < give_up);
  return false;
}

namespace {

// A blocking connect that a signal (or io_uring task work queued on this thread, which
// interrupts blocking calls the same way) cannot fail: after EINTR the handshake goes on in
// the kernel, so wait for it and read its outcome. 0 or an errno.
int ConnectThroughInterruptions(int fd, const sockaddr* address, socklen_t size) {
  if (::connect(fd, address, size) == 0) return 0;
  if (errno != EINTR) return errno;
  pollfd p{fd, POLLOUT, 0};
  while (::poll(&p, 1, -1) < 0) {
    if (errno != EINTR) return errno;
  }
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
  return error;
}

}  // namespace

BlockingClient::BlockingClient(uint16_t port, bool ipv6, int timeout_ms, int receive_buffer) {
  fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    std::perror("test client socket");
    std::abort();
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (receive_buffer > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  int rc;
  if (ipv6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_loopback;
    rc = ConnectThroughInterruptions(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = ConnectThroughInterruptions(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) {
    std::fprintf(stderr, "test client: connect to port %u: %s\n", port, std::strerror(rc));
    std::abort();
  }
}

BlockingClient::~BlockingClient() { close(); }

bool BlockingClient::send_all(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string BlockingClient::recv_exact(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd_, out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

std::string BlockingClient::recv_until_eof() {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = ::recv(fd_, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ADD_FAILURE() << "fd " << fd_ << ": no end of stream within the receive timeout (" << out.size()
                    << " bytes received); the server never closed the connection";
      break;
    }
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

void BlockingClient::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

void BlockingClient::set_linger_zero() {
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void BlockingClient::set_receive_buffer(int bytes) {
  setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

void BlockingClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int WaitUntilAcknowledged(int fd, std::chrono::milliseconds within) {
  const auto give_up = std::chrono::steady_clock::now() + within;
  for (;;) {
    int unacknowledged = 0;
    if (::ioctl(fd, SIOCOUTQ, &unacknowledged) != 0) return -errno;
    if (unacknowledged == 0 || std::chrono::steady_clock::now() >= give_up) return unacknowledged;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool EndReadableNow(int fd) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, 0) != 1) return false;
  char byte;
  ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

int AwaitReset(int fd, std::chrono::milliseconds within) {
  const auto give_up = std::chrono::steady_clock::now() + within;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - std::chrono::steady_clock::now());
    pollfd p{fd, 0, 0};  // POLLERR and POLLHUP are reported unasked
    int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
    return error;
  }
}

std::string SetSocketOptionOf(int pid, int fd, int level, int option, int value) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return std::string("pidfd_open: ") + std::strerror(errno);
  int copy = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  int error = errno;
  ::close(pidfd);
  if (copy < 0) return "pidfd_getfd of descriptor " + std::to_string(fd) + ": " + std::strerror(error);
  int rc = ::setsockopt(copy, level, option, &value, sizeof value);
  error = errno;
  ::close(copy);
  return rc == 0 ? "" : std::string("setsockopt: ") + std::strerror(error);
}

}  // namespace brrr::testing
