// ConnectionCloser, CloseConnection over several loops: one call closes at most one connection,
// and a close it made is its answer. A descriptor freed by the close on one loop can be given out
// again on another before that loop runs its part of the call; the newer connection there is
// neither closed nor allowed to hide the close. The loops are real (FakeAdministered's), each on
// its own thread; the closes are the fake's, told apart by loop.
#include "control/admin/connection_closer.h"

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "runtime/call_in_loop.h"
#include "tests/control/fake_administered.h"

namespace brrr {
namespace {

using std::chrono::seconds;

constexpr int kFd = 7;
constexpr char kPeer[] = "127.0.0.1:40000";

SocketInfo ConnectionOf(const std::string& peer) {
  SocketInfo info;
  info.fd = kFd;
  info.kind = "connection";
  info.peer = peer;
  return info;
}

// Two loops, each run on a thread of its own until the test ends.
class ConnectionCloserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (size_t i = 0; i < 2; ++i) {
      threads_.emplace_back([this, i] { target_.loop(i).run_forever(); });
    }
  }
  void TearDown() override {
    for (size_t i = 0; i < threads_.size(); ++i) {
      target_.loop(i).call_soon_threadsafe([this, i] { target_.loop(i).stop(); });
      threads_[i].join();
    }
  }

  testing::FakeAdministered target_{2};
  std::atomic<int> closes_on_[2] = {0, 0};  // the fake's closes, per loop

 private:
  std::vector<std::thread> threads_;
};

TEST_F(ConnectionCloserTest, ACloseOnOneLoopIsTheAnswerWhateverAnotherLoopSaysOfTheDescriptor) {
  // Loop 1 holds the peer's connection. Loop 0 runs its part meanwhile and answers after loop 1's
  // close: its holder of the descriptor is another peer's (given out again), and it says so.
  std::promise<void> loop0_asked;
  std::promise<void> loop1_closed;
  std::shared_future<void> loop0_asked_f = loop0_asked.get_future().share();
  std::shared_future<void> loop1_closed_f = loop1_closed.get_future().share();
  target_.close_connection = [&](size_t loop, int fd, absl::string_view peer) -> absl::StatusOr<SocketInfo> {
    EXPECT_EQ(fd, kFd);
    EXPECT_EQ(peer, kPeer);
    if (loop == 0) {
      loop0_asked.set_value();
      loop1_closed_f.wait();
      return absl::FailedPreconditionError("fd 7 on loop 0 is the connection of 127.0.0.1:40001 now");
    }
    loop0_asked_f.wait();  // both loops' parts are under way
    closes_on_[1]++;
    loop1_closed.set_value();
    return ConnectionOf(kPeer);
  };
  absl::StatusOr<control::ClosedConnection> closed =
      control::ConnectionCloser(target_, kFd, kPeer).Close({0, 1}, seconds(30));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->loop, 1u);
  EXPECT_EQ(closed->socket.peer, kPeer);
  EXPECT_EQ(closes_on_[1].load(), 1);
}

TEST_F(ConnectionCloserTest, AfterOneLoopClosedAConnectionAnotherLoopsPartClosesNothing) {
  // No peer named: each loop closes whatever holds the descriptor there.
  target_.close_connection = [&](size_t loop, int, absl::string_view peer) -> absl::StatusOr<SocketInfo> {
    EXPECT_TRUE(peer.empty());
    closes_on_[loop]++;
    return ConnectionOf(loop == 1 ? "127.0.0.1:40000" : "127.0.0.1:40001");
  };
  control::ConnectionCloser closer(target_, kFd, "");
  // Loop 1's part runs first and closes; loop 0 has given the descriptor out again since, to
  // another client, when its part of the same call runs.
  absl::StatusOr<absl::StatusOr<SocketInfo>> on1 = CallInLoop(
      target_.loop(1), [&] { return closer.CloseOn(1); }, seconds(30), "test:close_on_1");
  ASSERT_TRUE(on1.ok()) << on1.status();
  ASSERT_TRUE(on1->ok()) << on1->status();
  absl::StatusOr<absl::StatusOr<SocketInfo>> on0 = CallInLoop(
      target_.loop(0), [&] { return closer.CloseOn(0); }, seconds(30), "test:close_on_0");
  ASSERT_TRUE(on0.ok()) << on0.status();
  EXPECT_TRUE(absl::IsNotFound(on0->status())) << on0->status();
  EXPECT_EQ(closes_on_[1].load(), 1);
  EXPECT_EQ(closes_on_[0].load(), 0) << "a second connection was closed by the same call";
}

TEST_F(ConnectionCloserTest, ARefusalIsTheAnswerWhenNoLoopClosedOne) {
  target_.close_connection = [&](size_t loop, int, absl::string_view) -> absl::StatusOr<SocketInfo> {
    if (loop == 1) return absl::FailedPreconditionError("fd 7 is loop 1's listener");
    return absl::NotFoundError("no connection with fd 7 on loop 0");
  };
  absl::StatusOr<control::ClosedConnection> closed =
      control::ConnectionCloser(target_, kFd, "").Close({0, 1}, seconds(30));
  EXPECT_TRUE(absl::IsFailedPrecondition(closed.status())) << closed.status();
  EXPECT_EQ(closed.status().message(), "fd 7 is loop 1's listener");
}

TEST_F(ConnectionCloserTest, NoLoopHoldingTheDescriptorIsNotFound) {
  target_.close_connection = [&](size_t, int, absl::string_view) -> absl::StatusOr<SocketInfo> {
    return absl::NotFoundError("none here");
  };
  absl::StatusOr<control::ClosedConnection> closed =
      control::ConnectionCloser(target_, kFd, "").Close({0, 1}, seconds(30));
  EXPECT_TRUE(absl::IsNotFound(closed.status())) << closed.status();
  EXPECT_EQ(closed.status().message(), "no connection with fd 7 on any loop");
  closed = control::ConnectionCloser(target_, kFd, "").Close({1}, seconds(30));
  EXPECT_EQ(closed.status().message(), "no connection with fd 7 on loop 1");
}

}  // namespace
}  // namespace brrr
