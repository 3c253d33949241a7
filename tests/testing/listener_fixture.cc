#include "tests/testing/listener_fixture.h"

#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

void ListenerFixture::SetUp() {
  fds_before_ = CountOpenFds();
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  loop_ = NewLoop(GetParam(), LoopOptions());
  ASSERT_NE(loop_, nullptr);
  auto l = Socket::Listen(*loop_, SocketAddress::Loopback(0));
  ASSERT_TRUE(l.ok()) << l.status();
  listener_ = *std::move(l);
}

void ListenerFixture::TearDown() {
  listener_.close();
  loop_.reset();
  if (!IsSkipped()) {
    EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptors leaked";
  }
}

Socket ListenerFixture::Accept() {
  auto task = [&]() -> Task<absl::StatusOr<Socket>> { co_return co_await listener_.accept(); };
  absl::StatusOr<Socket> r = run_until_complete(*loop_, wait_for(task(), seconds(30)));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : Socket();
}

void ListenerFixture::RunUntil(const std::function<bool()>& done) {
  TimePoint give_up = Clock::now() + seconds(30);
  while (!done() && Clock::now() < give_up) loop_->run_once(milliseconds(5));
  EXPECT_TRUE(done()) << "timed out";
}

}  // namespace brrr::testing
