// RelayedConnection on real sockets: a TCP connection on loopback relayed to a socket pair whose
// other end stands for gRPC. Bytes go both ways intact, a call past the bound waits for one to
// end, each side's end reaches the other, and a client that does not read is let go.
#include "control/admin/admin_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/unique_fd.h"
#include "tests/control/http2_frames.h"

namespace brrr::control {
namespace {

using std::chrono::milliseconds;
using testing::H2CallHeaders;
using testing::H2EmptyRequest;
using testing::H2Frame;
using testing::H2Preface;
using testing::kH2Data;
using testing::kH2EndStream;
using testing::kH2Goaway;
using testing::kH2Headers;
using testing::kH2Settings;

// A connected TCP pair on 127.0.0.1: the client's end (blocking) and the server's (non-blocking).
std::pair<UniqueFd, UniqueFd> TcpPair() {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), size), 0);
  EXPECT_EQ(::listen(listener.get(), 1), 0);
  EXPECT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &size), 0);
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&address), size), 0);
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  timeval timeout{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(client.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(client.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return {std::move(client), std::move(server)};
}

// One poll(2) round for `connection`, as the admin listener does it. False once it has ended.
bool Step(RelayedConnection& connection, int timeout_ms) {
  pollfd fds[2];
  connection.Interest(&fds[0], &fds[1]);
  ::poll(fds, 2, timeout_ms);
  return connection.OnReady(fds[0].revents, fds[1].revents, RelayedConnection::Clock::now());
}

// A client connection relayed on a thread of its own until it ends or the test ends.
class RelayTest : public ::testing::Test {
 protected:
  // `server_send_buffer` (bytes, 0: the system's): SO_SNDBUF of the relay's socket toward the
  // client, small to make the relay's sends to a slow client come up short.
  void Open(uint32_t max_streams, int server_send_buffer = 0) {
    auto [client, server] = TcpPair();
    if (server_send_buffer > 0) {
      ASSERT_EQ(::setsockopt(server.get(), SOL_SOCKET, SO_SNDBUF, &server_send_buffer, sizeof server_send_buffer), 0);
    }
    client_ = std::move(client);
    absl::StatusOr<RelayedConnection::Opened> opened =
        RelayedConnection::Open(std::move(server), "a peer", max_streams);
    ASSERT_TRUE(opened.ok()) << opened.status();
    connection_ = std::move(opened->connection);
    grpc_.reset(opened->grpc_fd);
    ::fcntl(grpc_.get(), F_SETFL, ::fcntl(grpc_.get(), F_GETFL) & ~O_NONBLOCK);
    timeval timeout{.tv_sec = 10, .tv_usec = 0};
    ::setsockopt(grpc_.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  void StartRelaying() {
    relay_ = std::thread([this] {
      while (!stop_.load() && Step(*connection_, 10)) {
      }
      ended_.store(!stop_.load());
    });
  }
  void TearDown() override {
    stop_.store(true);
    if (relay_.joinable()) relay_.join();
  }
  bool EndsWithin(milliseconds limit) {
    for (auto give_up = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < give_up;) {
      if (ended_.load()) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  UniqueFd client_;
  UniqueFd grpc_;  // gRPC's end, blocking here
  std::unique_ptr<RelayedConnection> connection_;
  std::thread relay_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ended_{false};
};

bool SendAll(int fd, const std::string& bytes) {
  for (size_t at = 0; at < bytes.size();) {
    ssize_t n = ::send(fd, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

// Exactly `n` bytes, or fewer on an end, an error or the receive timeout.
std::string Receive(int fd, size_t n) {
  std::string bytes(n, '\0');
  size_t at = 0;
  while (at < n) {
    ssize_t got = ::recv(fd, bytes.data() + at, n - at, 0);
    if (got <= 0) break;
    at += static_cast<size_t>(got);
  }
  bytes.resize(at);
  return bytes;
}

// Whether `fd` has nothing to read for `ms` (a wait that should not end).
bool NothingFor(int fd, int ms) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, ms) == 0;
}

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 random(seed);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// Frames with bodies of every byte value, larger than the relay's buffers, both ways at once.
TEST_F(RelayTest, BytesGoBothWaysIntact) {
  Open(4);
  StartRelaying();
  std::string from_client = H2Preface() + H2Frame(kH2Settings, 0, 0, "") + H2CallHeaders(1);
  std::string from_grpc = H2Frame(kH2Settings, 0, 0, "");
  for (unsigned i = 0; i < 40; ++i) {
    from_client += H2Frame(kH2Data, 0, 1, RandomBytes(16000, i));
    from_grpc += H2Frame(kH2Data, 0, 1, RandomBytes(16000, 100 + i));
  }
  std::thread client_writer([&] { EXPECT_TRUE(SendAll(client_.get(), from_client)); });
  std::thread grpc_writer([&] { EXPECT_TRUE(SendAll(grpc_.get(), from_grpc)); });
  EXPECT_TRUE(Receive(grpc_.get(), from_client.size()) == from_client);
  EXPECT_TRUE(Receive(client_.get(), from_grpc.size()) == from_grpc);
  client_writer.join();
  grpc_writer.join();
}

// A client that reads slowly, through a small receive buffer: the relay's buffer toward it
// fills while part of it is still unwritten, and what is left moves to the front to make room
// for more of gRPC's bytes. Every byte still arrives once, in order.
TEST_F(RelayTest, BytesReachAClientThatReadsSlowlyIntact) {
  Open(4, /*server_send_buffer=*/4096);
  int small = 4096;
  ASSERT_EQ(::setsockopt(client_.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  timeval timeout{.tv_sec = 10, .tv_usec = 0};  // a relay that stops cannot block the writer for ever
  ::setsockopt(grpc_.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  StartRelaying();
  std::string from_grpc = H2Frame(kH2Settings, 0, 0, "");
  for (unsigned i = 0; i < 40; ++i) from_grpc += H2Frame(kH2Data, 0, 1, RandomBytes(16000, 200 + i));
  std::thread grpc_writer([&] { EXPECT_TRUE(SendAll(grpc_.get(), from_grpc)); });
  std::string received;
  char piece[700];
  while (received.size() < from_grpc.size()) {
    ssize_t n = ::recv(client_.get(), piece, sizeof piece, 0);
    if (n <= 0) break;  // an end, an error or the 10 s receive timeout
    received.append(piece, static_cast<size_t>(n));
  }
  grpc_writer.join();
  EXPECT_EQ(received.size(), from_grpc.size());
  EXPECT_TRUE(received == from_grpc) << "the bytes differ";
}

// At a shutdown (EndOnceIdle, AdminListener::EndIdleConnections): after gRPC's GOAWAY, a call
// still open goes on, the client's bytes with it; once it has ended, the client's input ends,
// so that gRPC closes the connection (gRPC 1.51 would keep it until the client answered the
// PING sent with the GOAWAY, which a client between calls does not read). Then gRPC's close
// ends the connection as always.
TEST_F(RelayTest, AtAShutdownTheClientsInputEndsOnceTheGoawayHasGoneAndNoCallIsOpen) {
  Open(4);
  connection_->EndOnceIdle();
  StartRelaying();
  const std::string call = H2Preface() + H2Frame(kH2Settings, 0, 0, "") + H2CallHeaders(1) + H2EmptyRequest(1);
  ASSERT_TRUE(SendAll(client_.get(), call));
  EXPECT_EQ(Receive(grpc_.get(), call.size()), call);
  const std::string goaway = H2Frame(kH2Goaway, 0, 0, std::string("\x7f\xff\xff\xff\0\0\0\0", 8));
  ASSERT_TRUE(SendAll(grpc_.get(), goaway));
  EXPECT_EQ(Receive(client_.get(), goaway.size()), goaway);
  const std::string ping = H2Frame(0x6, 0, 0, std::string(8, 'p'));  // the call is open: still passes
  ASSERT_TRUE(SendAll(client_.get(), ping));
  EXPECT_EQ(Receive(grpc_.get(), ping.size()), ping);
  const std::string trailers = H2Frame(kH2Headers, kH2EndStream | 0x4, 1, "t");
  ASSERT_TRUE(SendAll(grpc_.get(), trailers));
  EXPECT_EQ(Receive(client_.get(), trailers.size()), trailers);
  char byte;
  EXPECT_EQ(::recv(grpc_.get(), &byte, 1, 0), 0) << "gRPC's end did not see the end of its input (10 s)";
  grpc_.reset();  // gRPC closes its end
  EXPECT_TRUE(EndsWithin(milliseconds(10'000)));
}

// With room for one call, the second call's frames wait (those before it pass) until the first
// call's trailers have gone to the client; then they pass.
TEST_F(RelayTest, ACallPastTheBoundWaitsForOneToEnd) {
  Open(1);
  StartRelaying();
  const std::string first = H2Preface() + H2Frame(kH2Settings, 0, 0, "") + H2CallHeaders(1) + H2EmptyRequest(1);
  const std::string second = H2CallHeaders(3) + H2EmptyRequest(3);
  ASSERT_TRUE(SendAll(client_.get(), first + second));
  EXPECT_EQ(Receive(grpc_.get(), first.size()), first);
  EXPECT_TRUE(NothingFor(grpc_.get(), 200));
  const std::string trailers = H2Frame(kH2Headers, kH2EndStream | 0x4, 1, "t");
  ASSERT_TRUE(SendAll(grpc_.get(), trailers));
  EXPECT_EQ(Receive(client_.get(), trailers.size()), trailers);
  EXPECT_EQ(Receive(grpc_.get(), second.size()), second);
}

// The client's end of input reaches gRPC after its last byte; gRPC's answer still comes back.
TEST_F(RelayTest, TheClientsEndReachesGrpcAfterItsBytes) {
  Open(4);
  StartRelaying();
  const std::string bytes = H2Preface() + H2Frame(kH2Data, 0, 1, RandomBytes(50000, 7));
  ASSERT_TRUE(SendAll(client_.get(), bytes));
  ASSERT_EQ(::shutdown(client_.get(), SHUT_WR), 0);
  EXPECT_TRUE(Receive(grpc_.get(), bytes.size() + 1) == bytes);  // and then the end
  const std::string reply = H2Frame(kH2Settings, 0, 0, "");
  ASSERT_TRUE(SendAll(grpc_.get(), reply));
  EXPECT_EQ(Receive(client_.get(), reply.size()), reply);
}

// A client that ends its input while the bound holds its next call: the held bytes would wait
// for ever (the open calls may wait for their requests behind them), so they are dropped and
// the end passes on to gRPC; then gRPC's close ends the connection.
TEST_F(RelayTest, AHeldClientsEndReachesGrpcWithoutTheHeldBytes) {
  Open(1);
  StartRelaying();
  const std::string first = H2Preface() + H2Frame(kH2Settings, 0, 0, "") + H2CallHeaders(1);
  ASSERT_TRUE(SendAll(client_.get(), first + H2CallHeaders(3) + H2EmptyRequest(1)));
  ASSERT_EQ(::shutdown(client_.get(), SHUT_WR), 0);
  EXPECT_EQ(Receive(grpc_.get(), first.size()), first);
  char byte;
  EXPECT_EQ(::recv(grpc_.get(), &byte, 1, 0), 0);  // the end, within the receive timeout
  grpc_.reset();
  EXPECT_TRUE(EndsWithin(std::chrono::seconds(10)));
}

// The same when the held bytes fill the relay's buffer, so that the client is no longer read:
// its end is seen all the same.
TEST_F(RelayTest, AHeldClientsEndIsSeenWithItsBufferFull) {
  Open(1);
  StartRelaying();
  const std::string first = H2Preface() + H2Frame(kH2Settings, 0, 0, "") + H2CallHeaders(1);
  std::string held;
  for (uint32_t stream = 3; held.size() < 4 * RelayedConnection::kBufferBytes; stream += 2)
    held += H2CallHeaders(stream);
  ASSERT_TRUE(SendAll(client_.get(), first + held));
  EXPECT_EQ(Receive(grpc_.get(), first.size()), first);
  EXPECT_TRUE(NothingFor(grpc_.get(), 100));
  ASSERT_EQ(::shutdown(client_.get(), SHUT_WR), 0);
  char byte;
  EXPECT_EQ(::recv(grpc_.get(), &byte, 1, 0), 0);  // the end, within the receive timeout
}

// gRPC closes its end: what it wrote before reaches the client, then the client's connection
// ends and so does the relay.
TEST_F(RelayTest, GrpcsEndReachesTheClientAfterItsBytes) {
  Open(4);
  StartRelaying();
  const std::string bytes = H2Frame(kH2Data, 0, 1, RandomBytes(100000, 8));
  ASSERT_TRUE(SendAll(grpc_.get(), bytes));
  grpc_.reset();
  EXPECT_TRUE(Receive(client_.get(), bytes.size()) == bytes);
  EXPECT_TRUE(EndsWithin(std::chrono::seconds(10)));
  relay_.join();
  connection_.reset();  // as the listener drops a connection that ended
  char byte;
  EXPECT_EQ(::recv(client_.get(), &byte, 1, 0), 0);
}

// A client that resets the connection ends it at once; gRPC sees its end.
TEST_F(RelayTest, AClientResetEndsItAtOnce) {
  Open(4);
  StartRelaying();
  linger no_linger{.l_onoff = 1, .l_linger = 0};
  ASSERT_EQ(::setsockopt(client_.get(), SOL_SOCKET, SO_LINGER, &no_linger, sizeof no_linger), 0);
  client_.reset();
  EXPECT_TRUE(EndsWithin(std::chrono::seconds(10)));
  relay_.join();
  connection_.reset();  // as the listener drops a connection that ended
  char byte;
  EXPECT_EQ(::recv(grpc_.get(), &byte, 1, 0), 0);
}

// gRPC has closed its end and the client does not read what gRPC wrote before: the relay
// waits RelayedConnection::kLinger for it, not for ever.
TEST_F(RelayTest, AClientThatDoesNotReadIsLetGoAfterTheLinger) {
  Open(4);
  int small = 4096;
  ::setsockopt(client_.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  ::fcntl(grpc_.get(), F_SETFL, ::fcntl(grpc_.get(), F_GETFL) | O_NONBLOCK);
  const std::string chunk = H2Frame(kH2Data, 0, 1, RandomBytes(16000, 9));
  size_t written = 0;
  for (int round = 0; round < 1000; ++round) {  // until every buffer on the way is full
    ssize_t n = ::send(grpc_.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) written += static_cast<size_t>(n);
    ASSERT_TRUE(Step(*connection_, 1));
  }
  ASSERT_GT(written, 0u);
  grpc_.reset();
  for (int round = 0; round < 20; ++round) ASSERT_TRUE(Step(*connection_, 1)) << round;
  ASSERT_TRUE(connection_->deadline().has_value());
  EXPECT_TRUE(connection_->OnReady(0, 0, *connection_->deadline() - milliseconds(1)));
  EXPECT_FALSE(connection_->OnReady(0, 0, *connection_->deadline()));
}

}  // namespace
}  // namespace brrr::control
