// RateLimiter and SharedRateLimiter (GCRA) with time given by the test: exact waits, the burst
// allowance, no credit saved up while idle, the long-run rate, 0 as unlimited, and shared
// charges from several threads that lose none.
#include "server/rate_limiter.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace brrr::server {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kStart = 1'000'000 * kMs;  // an arbitrary monotonic time

TEST(RateLimiterTest, ChargingPastTheBurstAllowanceWaitsForTheExcess) {
  RateLimiter r;
  // 1,000 units/s: a unit costs 1 ms; 50 ms of them go without waiting.
  EXPECT_EQ(r.charge(50, 1000, kStart), 0);
  EXPECT_EQ(r.charge(1, 1000, kStart), 1 * kMs);
  EXPECT_EQ(r.charge(100, 1000, kStart), 101 * kMs);
  EXPECT_EQ(r.wait_ns(kStart), 101 * kMs) << "wait_ns tells without charging";
  EXPECT_EQ(r.wait_ns(kStart + 101 * kMs), 0);
  EXPECT_EQ(r.wait_ns(kStart + 100 * kMs), 1 * kMs);
}

TEST(RateLimiterTest, IdleTimeSavesNoCreditBeyondTheBurst) {
  RateLimiter r;
  r.charge(10, 1000, kStart);
  // Ten seconds idle: the next 150 units wait as if the limiter were new.
  EXPECT_EQ(r.charge(150, 1000, kStart + 10'000 * kMs), 100 * kMs);
}

// Over a long simulated run a client that reads whenever it may gets the rate: no more than
// rate x (time + burst) + one read, no less than rate x time - one read.
TEST(RateLimiterTest, TheLongRunRateIsTheRate) {
  for (uint64_t rate : {1'000u, 10'000u, 1'000'000u}) {
    RateLimiter r;
    int64_t now = kStart;
    const int64_t end = kStart + 10'000 * kMs;
    const uint64_t read = 512;
    uint64_t granted = 0;
    while (now < end) {
      granted += read;
      int64_t wait = r.charge(read, rate, now);
      now += wait > 0 ? wait : 1;  // a read takes at least a nanosecond
    }
    double seconds = static_cast<double>(now - kStart) / 1e9;
    EXPECT_LE(static_cast<double>(granted), rate * (seconds + 0.05) + read) << rate;
    EXPECT_GE(static_cast<double>(granted), rate * seconds - read) << rate;
  }
}

TEST(RateLimiterTest, ZeroIsUnlimitedAndForgetsTheDebt) {
  RateLimiter r;
  EXPECT_GT(r.charge(10'000, 1000, kStart), 0);
  EXPECT_EQ(r.charge(1'000'000, 0, kStart), 0);
  EXPECT_EQ(r.charge(10, 1000, kStart), 0) << "a rate set again starts afresh";
  r.charge(10'000, 1000, kStart);
  r.reset();
  EXPECT_EQ(r.wait_ns(kStart), 0);
}

TEST(RateLimiterTest, HugeChargesDoNotOverflow) {
  RateLimiter r;
  int64_t wait = r.charge(UINT64_MAX / 2, 1000, kStart);
  EXPECT_GT(wait, 0);
  EXPECT_GT(r.charge(UINT64_MAX / 2, 1000, kStart), wait) << "still counting up, not wrapped";
  EXPECT_GT(r.charge(1, 1, kStart), 0);
}

TEST(SharedRateLimiterTest, TheSameArithmeticAsTheSingleThreadedOne) {
  SharedRateLimiter s;
  RateLimiter r;
  for (uint64_t units : {50u, 1u, 100u, 7u}) EXPECT_EQ(s.charge(units, 1000, kStart), r.charge(units, 1000, kStart));
  EXPECT_EQ(s.wait_ns(kStart + 20 * kMs), r.wait_ns(kStart + 20 * kMs));
  s.reset();
  EXPECT_EQ(s.wait_ns(kStart), 0);
}

// The header's promise for both limiters: a rate of 0 forgets any debt.
TEST(SharedRateLimiterTest, ZeroIsUnlimitedAndForgetsTheDebt) {
  SharedRateLimiter s;
  EXPECT_EQ(s.charge(1000, 1000, kStart), 950 * kMs);
  EXPECT_EQ(s.charge(1, 0, kStart), 0);
  EXPECT_EQ(s.charge(10, 1000, kStart), 0) << "a rate set again starts afresh";
}

// charge_turn tells how long until the units it charges may be used, where charge tells how long
// until more may be: holders of turns (loops with an accepted connection each) go one rate step
// apart, the burst's worth at once.
TEST(SharedRateLimiterTest, TurnsGoOneRateStepApartPastTheBurst) {
  SharedRateLimiter s;
  // 10 units/s: a unit costs 100 ms, and the 50 ms burst lets one go at once.
  EXPECT_EQ(s.charge_turn(1, 10, kStart), 0);
  EXPECT_EQ(s.charge_turn(1, 10, kStart), 50 * kMs);
  EXPECT_EQ(s.charge_turn(1, 10, kStart), 150 * kMs);
  EXPECT_EQ(s.wait_ns(kStart), 250 * kMs) << "the next after those three";
  // 100 units/s: a unit costs 10 ms, so six go at once (the sixth 0 ms past the burst).
  SharedRateLimiter fast;
  for (int i = 0; i < 6; ++i) EXPECT_EQ(fast.charge_turn(1, 100, kStart), 0) << i;
  EXPECT_EQ(fast.charge_turn(1, 100, kStart), 10 * kMs);
  // Idle time saves no credit beyond the burst.
  EXPECT_EQ(s.charge_turn(1, 10, kStart + 10'000 * kMs), 0);
  EXPECT_EQ(s.charge_turn(1, 10, kStart + 10'000 * kMs), 50 * kMs);
}

// Charges from several threads at once are all counted (compare-and-swap, no lock): 4 threads
// x 10,000 units of 1 ms each, all at the same instant, leave a debt of exactly 40 s.
TEST(SharedRateLimiterTest, ConcurrentChargesAreAllCounted) {
  SharedRateLimiter s;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&s] {
      for (int i = 0; i < 10'000; ++i) s.charge(1, 1000, kStart);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(s.wait_ns(kStart), 40'000 * kMs - RateStep::kBurstNs);
}

}  // namespace
}  // namespace brrr::server
