// LoopbackQueues: what a stalled exchange's failure message says about where its bytes sit,
// checked on a real loopback connection whose server end reads nothing; WaitUntilAcknowledged
// on the same connection (and on a pipe, which cannot say).
#include "tests/testing/net.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace brrr::testing {
namespace {

uint16_t PortOf(int fd) {
  sockaddr_in a{};
  socklen_t size = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size);
  return ntohs(a.sin_port);
}

TEST(LoopbackQueuesTest, NamesTheBytesAServerEndHasNotRead) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  const uint16_t server_port = PortOf(listener);

  BlockingClient client(server_port);
  int server_end = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(server_end, 0);
  const uint16_t client_port = PortOf(client.fd());
  ASSERT_TRUE(client.send_all(std::string(1000, 'x')));
  // The server's kernel takes them, unread: every byte acknowledged.
  EXPECT_EQ(WaitUntilAcknowledged(client.fd(), std::chrono::seconds(10)), 0);
  // Loopback delivers within the send; the acknowledgement may trail it a little.
  std::string queues;
  for (int i = 0; i < 500; ++i) {
    queues = LoopbackQueues(client_port, server_port);
    if (queues.find("client end: 0 bytes") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_NE(queues.find("client end: 0 bytes unacknowledged or unsent, 0 unread"), std::string::npos) << queues;
  EXPECT_NE(queues.find("server end: 0 bytes unacknowledged or unsent, 1000 unread (established)"), std::string::npos)
      << queues;

  ::close(server_end);
  ::close(listener);
  client.close();
  // Another pair of ports: no such connection.
  EXPECT_EQ(LoopbackQueues(client_port, static_cast<uint16_t>(server_port + 1)), "client end: gone; server end: gone");
  // Not a socket: it cannot say.
  int pipe_ends[2];
  ASSERT_EQ(::pipe(pipe_ends), 0);
  EXPECT_LT(WaitUntilAcknowledged(pipe_ends[1], std::chrono::milliseconds(100)), 0);
  ::close(pipe_ends[0]);
  ::close(pipe_ends[1]);
}

}  // namespace
}  // namespace brrr::testing
