// net.h: plain blocking sockets for tests: peers that do not use brrr, so brrr's sockets are
// not only tested against themselves. Loopback only; every call is bounded in time.
#ifndef BRRR_TESTS_TESTING_NET_H_
#define BRRR_TESTS_TESTING_NET_H_

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <string>

namespace brrr::testing {

// Open descriptors of this process (/proc/self/fd).
int CountOpenFds();

// Raises the soft RLIMIT_NOFILE to at least `want` (up to the hard limit). Returns the new soft limit.
uint64_t RaiseFdLimit(uint64_t want);

// `size` bytes in which every byte value occurs (for size >= 256), from `seed`.
std::string RandomBytes(size_t size, uint32_t seed);

// A TCP port on 127.0.0.1 that was free a moment ago (bound, then released), for programs
// that take a port number and cannot report the one they got. Picked at random below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range), where the connections of tests
// running alongside cannot take it before the program binds it. Never the same port twice in
// one process.
uint16_t PickFreePort();

// Whether a server on 127.0.0.1:`port` accepts a connection within `timeout` (tried every
// 10 ms): for a server whose output the test does not read, where no "listening on" line
// says that it is up.
bool WaitUntilAccepting(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The most a client that never reads can get a server to take from it before its sends block,
// when the server stops reading it once `server_bound` bytes are queued for it, on this
// machine's kernel: the buffers on the way in (the client's send buffer and the server's
// receive buffer, each up to its autotuning maximum, the third figure of
// net.ipv4.tcp_wmem and tcp_rmem), what the server's backend may read ahead of its stop (up to
// its receive buffer's contents: io_uring's multishot receive before Linux 6.17,
// server/connection.h), the
// bound, and the way out (the server's send buffer up to tcp_wmem's maximum, and the client's
// receive buffer, `client_receive_buffer` as set with SO_RCVBUF, which the kernel doubles).
// A test that stops a never-reading client at this many bytes fails a server that never
// stops reading, and never fails one that does, whatever the host's TCP settings (some raise
// tcp_rmem's maximum to 32 MiB or more).
size_t MostANeverReaderCanSend(size_t server_bound, size_t client_receive_buffer);

// Where the bytes of the IPv4 loopback connection between 127.0.0.1:`client_port` and
// 127.0.0.1:`server_port` sit, from /proc/net/tcp (both ends are in this network namespace):
// "client end: 0 bytes unacknowledged or unsent, 0 unread (established); server end: 65536
// bytes unacknowledged or unsent, 4608 unread (established, retransmission timer (3
// unanswered))" (an end not found is "gone"). For the failure message of a test whose exchange
// stalled: it tells a server that stopped reading (its end's unread bytes stay) from one that
// stopped sending, and both from TCP backing off its retransmissions or probing a closed window.
std::string LoopbackQueues(uint16_t client_port, uint16_t server_port);

// Sets a socket option with an int value (SO_SNDBUF, SO_RCVBUF...) on descriptor `fd` of process
// `pid` (a server under test, from its ListSockets), through a duplicate (pidfd_getfd; the
// duplicate is closed, the socket is the same). "" on success, else what failed and why. For
// tests whose point needs the server's kernel buffers fixed: left to itself the kernel grows
// them to megabytes.
std::string SetSocketOptionOf(int pid, int fd, int level, int option, int value);

// Waits up to `within` until the peer's kernel has acknowledged every byte sent on `fd` (its
// SIOCOUTQ is 0): on loopback, they are all in the peer's receive queue, read or not. Returns
// the bytes still unacknowledged then (0: all of them), or -errno if the socket cannot say.
int WaitUntilAcknowledged(int fd, std::chrono::milliseconds within);

// Waits up to `within` for the connection on `fd` to be reset by its peer, without sending
// (a send would draw a reset from any peer that has closed, cleanly or not). Returns the error
// the reset left: ECONNRESET, or EPIPE when the peer had ended its stream first. 0 when no
// reset came within `within`, or the connection ended without one (both sides shut).
// A server's reset can come a little after its process has exited: a socket an io_uring
// request still holds is closed when the kernel tears the ring down, after the exit.
int AwaitReset(int fd, std::chrono::milliseconds within);

// Whether `fd` has its end of stream (or a reset) to read now, without waiting.
bool EndReadableNow(int fd);

// A blocking TCP client. Every receive gives up after `timeout_ms` (SO_RCVTIMEO).
class BlockingClient {
 public:
  // Connects to 127.0.0.1:port (or [::1]:port). Aborts the test process on failure.
  // `receive_buffer` > 0: SO_RCVBUF before the connect (the window it offers depends on it).
  explicit BlockingClient(uint16_t port, bool ipv6 = false, int timeout_ms = 30000, int receive_buffer = 0);
  ~BlockingClient();
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;

  int fd() const { return fd_; }
  bool send_all(const std::string& data);
  // Reads exactly n bytes; returns what it got (fewer on EOF, error or timeout).
  std::string recv_exact(size_t n);
  // Reads until the server ends the stream: EOF, or a reset (ECONNRESET). The receive timeout
  // is a test failure, not an end: a server that should have closed but did not must fail the
  // test, not merely slow it down.
  std::string recv_until_eof();
  void shutdown_write();
  void set_linger_zero();  // close() sends RST
  void set_receive_buffer(int bytes);
  void close();

 private:
  int fd_ = -1;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_NET_H_
