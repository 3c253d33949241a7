// Throttle: what each setting allows (0 as unlimited for the rates, never for the connection
// limit), errors that say so, a change applied whole or not at all, fresh budgets for a new
// rate, and readers on other threads while the admin plane changes it.
#include "server/throttle.h"

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace brrr::server {
namespace {

constexpr int64_t kStart = 1'000'000'000'000;

TEST(ThrottleTest, StartsUnlimitedWithTheConfiguredConnectionLimit) {
  Throttle t(42);
  ThrottleSettings s = t.settings();
  EXPECT_EQ(s.bytes_per_second_per_connection, 0u);
  EXPECT_EQ(s.bytes_per_second_total, 0u);
  EXPECT_EQ(s.accepts_per_second, 0u);
  EXPECT_EQ(s.max_connections, 42u);
  EXPECT_FALSE(s.accepting_paused);
}

// Each setting at, just inside and just outside its bounds.
TEST(ThrottleTest, EachSettingHasItsRangeAndTheErrorSaysIt) {
  struct Field {
    std::string name;
    std::function<void(ThrottleChange&, uint64_t)> set;
    std::function<uint64_t(const ThrottleSettings&)> get;
    uint64_t min;
    uint64_t max;
    bool zero_allowed;
  };
  const std::vector<Field> fields = {
      {"bytes_per_second_per_connection", [](ThrottleChange& c, uint64_t v) { c.bytes_per_second_per_connection = v; },
       [](const ThrottleSettings& s) { return s.bytes_per_second_per_connection; }, Throttle::kMinBytesPerSecond,
       Throttle::kMaxBytesPerSecond, true},
      {"bytes_per_second_total", [](ThrottleChange& c, uint64_t v) { c.bytes_per_second_total = v; },
       [](const ThrottleSettings& s) { return s.bytes_per_second_total; }, Throttle::kMinBytesPerSecond,
       Throttle::kMaxBytesPerSecond, true},
      {"accepts_per_second", [](ThrottleChange& c, uint64_t v) { c.accepts_per_second = v; },
       [](const ThrottleSettings& s) { return s.accepts_per_second; }, 1, Throttle::kMaxAcceptsPerSecond, true},
      {"max_connections", [](ThrottleChange& c, uint64_t v) { c.max_connections = v; },
       [](const ThrottleSettings& s) { return s.max_connections; }, 1, Throttle::kMaxConnectionsLimit, false},
  };
  for (const Field& f : fields) {
    Throttle t(100);
    auto apply = [&](uint64_t v) {
      ThrottleChange c;
      f.set(c, v);
      return t.Apply(c);
    };
    for (uint64_t ok : {f.min, f.min + 1, f.max - 1, f.max}) {
      EXPECT_TRUE(apply(ok).ok()) << f.name << "=" << ok;
      EXPECT_EQ(f.get(t.settings()), ok) << f.name;
    }
    std::vector<uint64_t> refused = {f.max + 1, UINT64_MAX};
    if (f.min > 1) refused.push_back(f.min - 1);
    if (!f.zero_allowed) refused.push_back(0);
    for (uint64_t bad : refused) {
      absl::Status s = apply(bad);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << f.name << "=" << bad;
      std::string says = f.name + "=" + std::to_string(bad) + " is out of range: allowed " +
                         (f.zero_allowed ? "0 (unlimited) or " : "") + std::to_string(f.min) + " to " +
                         std::to_string(f.max);
      EXPECT_EQ(s.message(), says);
      EXPECT_EQ(f.get(t.settings()), f.max) << f.name << ": a refused value changes nothing";
    }
    if (f.zero_allowed) {
      EXPECT_TRUE(apply(0).ok()) << f.name;
      EXPECT_EQ(f.get(t.settings()), 0u) << f.name;
    }
  }
}

TEST(ThrottleTest, AChangeIsAppliedWholeOrNotAtAll) {
  Throttle t(100);
  ThrottleChange c;
  c.bytes_per_second_per_connection = 5000;
  c.accepting_paused = true;
  c.accepts_per_second = Throttle::kMaxAcceptsPerSecond + 1;
  EXPECT_FALSE(t.Apply(c).ok());
  ThrottleSettings s = t.settings();
  EXPECT_EQ(s.bytes_per_second_per_connection, 0u);
  EXPECT_FALSE(s.accepting_paused);
  EXPECT_EQ(s.accepts_per_second, 0u);
  // What a change leaves unset stays as it was.
  ThrottleChange only_pause;
  only_pause.accepting_paused = true;
  ASSERT_TRUE(t.Apply(c = ThrottleChange{.bytes_per_second_per_connection = 5000}).ok());
  ASSERT_TRUE(t.Apply(only_pause).ok());
  s = t.settings();
  EXPECT_EQ(s.bytes_per_second_per_connection, 5000u);
  EXPECT_TRUE(s.accepting_paused);
  EXPECT_EQ(s.max_connections, 100u);
  ASSERT_TRUE(t.Apply({.accepting_paused = false}).ok());
  EXPECT_FALSE(t.accepting_paused());
}

// A new total rate or accept rate starts with a clean slate; other changes keep the debt.
TEST(ThrottleTest, ANewRateForgetsTheDebtRunUpUnderTheOldOne) {
  Throttle t(100);
  ASSERT_TRUE(t.Apply({.bytes_per_second_total = 1000, .accepts_per_second = 1}).ok());
  t.total_bytes().charge(10'000, t.bytes_per_second_total(), kStart);
  t.accepted().charge(10, t.accepts_per_second(), kStart);
  ASSERT_GT(t.total_bytes().wait_ns(kStart), 0);
  ASSERT_GT(t.accepted().wait_ns(kStart), 0);
  ASSERT_TRUE(t.Apply({.bytes_per_second_per_connection = 2000, .max_connections = 5}).ok());
  EXPECT_GT(t.total_bytes().wait_ns(kStart), 0) << "not a new total rate";
  EXPECT_GT(t.accepted().wait_ns(kStart), 0) << "not a new accept rate";
  ASSERT_TRUE(t.Apply({.bytes_per_second_total = 2000}).ok());
  EXPECT_EQ(t.total_bytes().wait_ns(kStart), 0);
  EXPECT_GT(t.accepted().wait_ns(kStart), 0);
  ASSERT_TRUE(t.Apply({.accepts_per_second = 2}).ok());
  EXPECT_EQ(t.accepted().wait_ns(kStart), 0);
}

// The loops read the settings on their hot path while the admin plane changes them: every
// value a reader sees is one that was applied (run under TSan too).
TEST(ThrottleTest, ReadersOnOtherThreadsSeeAppliedValuesOnly) {
  Throttle t(100);
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      while (!done.load()) {
        uint64_t rate = t.bytes_per_second_per_connection();
        EXPECT_TRUE(rate == 0 || (rate >= 1000 && rate <= 2000)) << rate;
        uint64_t limit = t.max_connections();
        EXPECT_TRUE(limit == 100 || limit == 7) << limit;
      }
    });
  }
  for (int i = 0; i < 20'000; ++i) {
    ThrottleChange c;
    c.bytes_per_second_per_connection = i % 2 == 0 ? 0 : 1000 + static_cast<uint64_t>(i % 1000);
    c.max_connections = i % 2 == 0 ? 100 : 7;
    ASSERT_TRUE(t.Apply(c).ok());
  }
  done = true;
  for (std::thread& r : readers) r.join();
}

}  // namespace
}  // namespace brrr::server
