#include "runtime/callback.h"

#include <array>
#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace brrr {
namespace {

// Counts live copies, to prove Callback destroys exactly what it constructed.
struct Tracked {
  explicit Tracked(int* live) : live(live) { ++*live; }
  Tracked(Tracked&& o) noexcept : live(o.live) { ++*live; }
  Tracked(const Tracked& o) : live(o.live) { ++*live; }
  ~Tracked() { --*live; }
  int* live;
};

TEST(CallbackTest, EmptyByDefault) {
  Callback cb;
  EXPECT_FALSE(cb);
}

TEST(CallbackTest, SmallLambdaRunsInline) {
  int calls = 0;
  Callback cb = [&calls] { ++calls; };
  ASSERT_TRUE(cb);
  cb();
  cb();
  EXPECT_EQ(calls, 2);
}

TEST(CallbackTest, LargeLambdaRunsFromHeap) {
  std::array<int, 64> big{};
  big[63] = 7;
  int seen = 0;
  Callback cb = [big, &seen] { seen = big[63]; };
  cb();
  EXPECT_EQ(seen, 7);
}

TEST(CallbackTest, MoveOnlyTargetIsAccepted) {
  auto owned = std::make_unique<std::string>("payload");
  std::string seen;
  Callback cb = [p = std::move(owned), &seen] { seen = *p; };
  Callback moved = std::move(cb);
  EXPECT_FALSE(cb);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  moved();
  EXPECT_EQ(seen, "payload");
}

TEST(CallbackTest, DestroysInlineTargetExactlyOnce) {
  int live = 0;
  {
    Callback cb = [t = Tracked(&live)] { (void)t; };
    EXPECT_EQ(live, 1);
    Callback other = std::move(cb);
    EXPECT_EQ(live, 1);
    Callback third;
    third = std::move(other);
    EXPECT_EQ(live, 1);
  }
  EXPECT_EQ(live, 0);
}

TEST(CallbackTest, DestroysHeapTargetExactlyOnce) {
  int live = 0;
  {
    std::array<char, 100> padding{};
    Callback cb = [t = Tracked(&live), padding] { (void)t; (void)padding; };
    Callback other = std::move(cb);
    EXPECT_EQ(live, 1);
  }
  EXPECT_EQ(live, 0);
}

TEST(CallbackTest, ResetReleasesTarget) {
  int live = 0;
  Callback cb = [t = Tracked(&live)] { (void)t; };
  cb.reset();
  EXPECT_EQ(live, 0);
  EXPECT_FALSE(cb);
}

TEST(CallbackTest, AssigningOverAFullCallbackDestroysTheOldTarget) {
  int live = 0;
  Callback cb = [t = Tracked(&live)] { (void)t; };
  cb = [] {};
  EXPECT_EQ(live, 0);
}

}  // namespace
}  // namespace brrr
