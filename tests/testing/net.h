// net.h: plain blocking sockets for tests: peers that do not use brrr, so brrr's sockets are
// not only tested against themselves. Loopback only; every call is bounded in time.
#ifndef BRRR_TESTS_TESTING_NET_H_
#define BRRR_TESTS_TESTING_NET_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace brrr::testing {

// Open descriptors of this process (/proc/self/fd).
int CountOpenFds();

// Raises the soft RLIMIT_NOFILE to at least `want` (up to the hard limit). Returns the new soft limit.
uint64_t RaiseFdLimit(uint64_t want);

// `size` bytes in which every byte value occurs (for size >= 256), from `seed`.
std::string RandomBytes(size_t size, uint32_t seed);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), for
// programs that take a port number and cannot report the one they got.
uint16_t PickFreePort();

// A blocking TCP client. Every receive gives up after `timeout_ms` (SO_RCVTIMEO).
class BlockingClient {
 public:
  // Connects to 127.0.0.1:port (or [::1]:port). Aborts the test process on failure.
  explicit BlockingClient(uint16_t port, bool ipv6 = false, int timeout_ms = 30000);
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
