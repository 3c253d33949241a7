// The plugin ABI's connect and sends (runtime/reactor_abi.h), checked directly on every backend
// through the Reactor wrapper: a connect that succeeds or is refused, sends that never raise
// SIGPIPE, a released descriptor whose close ends its connection and whose number, used again,
// sends to the new one, gathered sends (SENDMSG) that keep their entries' order and check
// their arguments, and sends at once (try_send).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/reactor.h"
#include "tests/reactors/reactor_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using testing::AcceptOne;
using testing::BlockingClient;
using testing::Listener;
using testing::ReactorTest;

TEST_P(ReactorTest, ConnectSucceedsOrIsRefused) {
  Listener l;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(l.port);
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kConnect, .fd = fd, .len = sizeof a, .buf = &a}), 0);
  auto ok = WaitUntil([](auto& all) { return HasFinal(all, 1); });
  EXPECT_EQ(ok.back().result, 0);
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);

  uint16_t closed_port;
  {
    Listener gone;
    closed_port = gone.port;
  }
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  a.sin_port = htons(closed_port);
  ASSERT_EQ(reactor_->submit({.user_data = 2, .opcode = IoOpcode::kConnect, .fd = fd, .len = sizeof a, .buf = &a}), 0);
  auto refused = WaitUntil([](auto& all) { return HasFinal(all, 2); });
  EXPECT_EQ(refused.back().result, -ECONNREFUSED);
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, SendNeverRaisesSigpipe) {
  Listener l;
  auto client = std::make_unique<BlockingClient>(l.port);
  int fd = AcceptOne(l);
  client.reset();  // the peer is gone
  std::string data(1 << 20, 'p');
  int32_t last = 0;
  for (int i = 0; i < 50 && last >= 0; ++i) {
    uint64_t id = 10 + i;
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kSend, .fd = fd,
                                .len = static_cast<uint32_t>(data.size()), .buf = data.data()}),
              0);
    auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
    last = all.back().result;
  }
  EXPECT_TRUE(last == -EPIPE || last == -ECONNRESET) << last;  // and the process is still here
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// After release_fd, closing a descriptor that sent ends its connection: nothing a backend
// keeps for a descriptor (a registered-file table on io_uring, say) holds the socket open.
TEST_P(ReactorTest, ClosingAReleasedDescriptorEndsItsConnection) {
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  std::string expected;
  for (uint64_t id = 1; id <= 3; ++id) {
    std::string part = "reply " + std::to_string(id) + ";";
    expected += part;
    SendAll(fd, part, id);
  }
  EXPECT_EQ(client.recv_exact(expected.size()), expected);
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
  EXPECT_EQ(client.recv_until_eof(), "") << "the connection should have ended";
}

// A descriptor number that is released, closed and then given to another connection sends to
// that connection, not to the one it named before.
TEST_P(ReactorTest, ADescriptorNumberUsedAgainSendsToItsNewConnection) {
  Listener l;
  BlockingClient first(l.port);
  int fd = AcceptOne(l);
  SendAll(fd, "to the first", 1);
  EXPECT_EQ(first.recv_exact(12), "to the first");
  EXPECT_EQ(reactor_->release_fd(fd), 0);

  BlockingClient second(l.port);
  int other = AcceptOne(l);
  ASSERT_EQ(::dup3(other, fd, O_CLOEXEC), fd);  // closes fd and puts the new connection under it
  ::close(other);
  SendAll(fd, "to the second", 2);
  EXPECT_EQ(second.recv_exact(13), "to the second");
  EXPECT_EQ(first.recv_until_eof(), "") << "the first connection got bytes after it was closed";
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// A gathered send: several entries, some large enough that the kernel takes them in parts;
// what arrives is their concatenation, in order, with nothing lost or repeated.
TEST_P(ReactorTest, SendMsgSendsItsEntriesInOrder) {
  if (!reactor_->has(kCapSendMsg)) GTEST_SKIP() << GetParam() << " has no SENDMSG";
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  std::vector<std::string> parts = {"head:", std::string(300000, '\0'), "-middle-", std::string(70000, 'z'), ":tail"};
  for (size_t i = 0; i < parts[1].size(); ++i) parts[1][i] = static_cast<char>(i * 7 + i / 256);
  std::string expected;
  for (const std::string& p : parts) expected += p;

  std::string received;
  std::thread reader([&] { received = client.recv_exact(expected.size()); });
  size_t sent = 0;
  for (uint64_t id = 1; sent < expected.size() && id < 10000; ++id) {
    // The entries from where the last partial send stopped.
    std::vector<iovec> iov;
    size_t skip = sent;
    for (std::string& p : parts) {
      if (skip >= p.size()) {
        skip -= p.size();
        continue;
      }
      iov.push_back({p.data() + skip, p.size() - skip});
      skip = 0;
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kSendMsg, .fd = fd, .buf = &msg}), 0);
    auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
    ASSERT_GT(all.back().result, 0);
    sent += static_cast<size_t>(all.back().result);
  }
  reader.join();
  EXPECT_EQ(sent, expected.size());
  EXPECT_TRUE(received == expected) << "the bytes differ (" << received.size() << " received)";
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

TEST_P(ReactorTest, SendMsgNeverRaisesSigpipeAndChecksItsArguments) {
  if (!reactor_->has(kCapSendMsg)) GTEST_SKIP() << GetParam() << " has no SENDMSG";
  Listener l;
  auto client = std::make_unique<BlockingClient>(l.port);
  int fd = AcceptOne(l);
  std::string data(1 << 20, 'q');
  iovec iov[2] = {{data.data(), data.size() / 2}, {data.data() + data.size() / 2, data.size() / 2}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSendMsg, .fd = fd, .len = 2, .buf = &msg}), -EINVAL)
      << "len must be 0: the msghdr counts the entries";
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSendMsg, .flags = kOpMultishot, .fd = fd, .buf = &msg}),
            -EINVAL);
  EXPECT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSendMsg, .fd = fd}), -EFAULT);

  client.reset();  // the peer is gone
  int32_t last = 0;
  for (int i = 0; i < 50 && last >= 0; ++i) {
    uint64_t id = 10 + i;
    ASSERT_EQ(reactor_->submit({.user_data = id, .opcode = IoOpcode::kSendMsg, .fd = fd, .buf = &msg}), 0);
    auto all = WaitUntil([&](auto& a) { return HasFinal(a, id); });
    last = all.back().result;
  }
  EXPECT_TRUE(last == -EPIPE || last == -ECONNRESET) << last;  // and the process is still here
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// try_send (reactor_abi.h): bytes sent at once with no operation and no completion; -EAGAIN
// once the socket is full (or, on io_uring, once a send went at once since the last wait:
// the test waits, without blocking, before it tries again), after which a kSend waits for
// room; -EBUSY while that kSend is in flight; the send's own error, never SIGPIPE, once the
// peer is gone.
TEST_P(ReactorTest, TrySendSendsAtOnceWithoutACompletion) {
  ASSERT_TRUE(reactor_->can_try_send());
  Listener l;
  auto client = std::make_unique<BlockingClient>(l.port);
  int fd = AcceptOne(l);
  EXPECT_EQ(reactor_->try_send(fd, "", 0), 0);
  EXPECT_EQ(reactor_->try_send(-1, "x", 1), -EBADF);
  if (reactor_->plugin().max_fd() >= 0) {
    EXPECT_EQ(reactor_->try_send(reactor_->plugin().max_fd() + 1, "x", 1), -ERANGE);
  }

  // What goes at once arrives, and nothing completes. (A faulty backend's sends may be short
  // or fail with a spurious -EAGAIN now and then: the rest goes in the next try.)
  std::string hello = "hello, at once";
  size_t sent = 0;
  for (int i = 0; i < 1000 && sent < hello.size(); ++i) {
    int n = reactor_->try_send(fd, hello.data() + sent, static_cast<uint32_t>(hello.size() - sent));
    ASSERT_TRUE(n > 0 || n == -EAGAIN) << n;
    if (n > 0) sent += static_cast<size_t>(n);
    EXPECT_EQ(WaitWithoutBlocking(), 0) << "a try_send completed something";
  }
  ASSERT_EQ(sent, hello.size());
  EXPECT_EQ(client->recv_exact(hello.size()), hello);

  // The client does not read: the socket fills until it takes nothing (twenty -EAGAIN in a
  // row, so that no spurious one is taken for it).
  std::string block = std::string(1 << 20, 'f');
  size_t filled = 0;
  int refusals = 0;
  for (int i = 0; i < 2000 && refusals < 20; ++i) {
    int n = reactor_->try_send(fd, block.data(), static_cast<uint32_t>(block.size()));
    ASSERT_TRUE(n > 0 || n == -EAGAIN) << n;
    if (n > 0) {
      filled += static_cast<size_t>(n);
      refusals = 0;
    } else {
      ++refusals;
    }
    ASSERT_EQ(WaitWithoutBlocking(), 0);
  }
  ASSERT_EQ(refusals, 20) << "the socket never filled";
  // A kSend then waits for room, and while it does the descriptor takes no try_send.
  std::string tail = "-the tail-";
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kSend, .fd = fd,
                              .len = static_cast<uint32_t>(tail.size()), .buf = tail.data()}),
            0);
  EXPECT_EQ(WaitWithoutBlocking(), 0) << "a send on a full socket completed at once";
  EXPECT_EQ(reactor_->try_send(fd, "x", 1), -EBUSY);
  std::string received;
  std::thread reader([&] { received = client->recv_exact(filled + tail.size()); });
  auto all = WaitUntil([](auto& a) { return HasFinal(a, 1); });
  ASSERT_GT(all.back().result, 0);
  size_t tail_sent = static_cast<size_t>(all.back().result);
  if (tail_sent < tail.size()) SendAll(fd, tail.substr(tail_sent), 2);  // a faulty backend's short send
  reader.join();
  ASSERT_EQ(received.size(), filled + tail.size());
  EXPECT_EQ(received.substr(filled), tail);
  EXPECT_EQ(received.find_first_not_of('f'), filled) << "the filler arrived damaged";

  // The peer gone: the send's error, and the process is still here.
  client.reset();
  // The reset comes back to a send in the kernel's own time (on a loaded machine a kernel
  // thread delivers it): tried for up to 10 s, not a number of times.
  int last = 0;
  for (auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       (last >= 0 || last == -EAGAIN) && std::chrono::steady_clock::now() < give_up;) {
    last = reactor_->try_send(fd, block.data(), static_cast<uint32_t>(block.size()));
    WaitWithoutBlocking();
    if (last >= 0 || last == -EAGAIN) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(last == -EPIPE || last == -ECONNRESET) << last;
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  ::close(fd);
}

// How often try_send may go at once. A readiness backend sends whenever the socket has room.
// io_uring sends at once only on a quiet loop: after a wait() that returned at most one
// completion, and once until the next wait(); after a wait() that returned a batch its sends
// are requests (-EAGAIN), so that under load a loop's sends leave in one enter.
TEST_P(ReactorTest, TrySendPacesOnlyWhereTheBackendBatchesSends) {
  // (The fault-injecting copies refuse sends now and then on purpose: not for counting sends.)
  if (testing::IsFaulty(GetParam())) GTEST_SKIP() << "sends at once fail on purpose here";
  const bool paced = reactor_->has(kCapNativeOps);
  Completion c[8];
  Listener l;
  BlockingClient client(l.port);
  int fd = AcceptOne(l);
  BlockingClient other_client(l.port);
  int other = AcceptOne(l);
  ASSERT_EQ(WaitWithoutBlocking(), 0);
  EXPECT_EQ(reactor_->try_send(fd, "a", 1), 1);
  EXPECT_EQ(reactor_->try_send(fd, "b", 1), paced ? -EAGAIN : 1) << "a second send before a wait";
  ASSERT_EQ(WaitWithoutBlocking(), 0);
  EXPECT_EQ(reactor_->try_send(fd, "c", 1), 1) << "after a wait that returned nothing";

  // A wait that returns two completions: both sockets have room.
  ASSERT_EQ(reactor_->submit({.user_data = 1, .opcode = IoOpcode::kPollWritable, .fd = fd}), 0);
  ASSERT_EQ(reactor_->submit({.user_data = 2, .opcode = IoOpcode::kPollWritable, .fd = other}), 0);
  absl::StatusOr<int> both = reactor_->wait(c, 5'000'000'000);
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_EQ(*both, 2) << "one wait, both completions";
  EXPECT_EQ(reactor_->try_send(fd, "d", 1), paced ? -EAGAIN : 1) << "after a wait that returned a batch";
  ASSERT_EQ(WaitWithoutBlocking(), 0);
  EXPECT_EQ(reactor_->try_send(fd, "e", 1), 1) << "after a quiet wait again";
  EXPECT_EQ(client.recv_exact(paced ? 3 : 5), paced ? "ace" : "abcde");
  EXPECT_EQ(reactor_->release_fd(fd), 0);
  EXPECT_EQ(reactor_->release_fd(other), 0);
  ::close(fd);
  ::close(other);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, ReactorTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
