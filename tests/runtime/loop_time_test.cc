#include "runtime/loop_time.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/sequence_lock.h"

namespace brrr {
namespace {

TEST(LoopTimeTest, TheSpanInProgressCountsWhileItLasts) {
  LoopTime t;
  EXPECT_EQ(t.totals(1'000).running_ns, 0);
  t.run_from(1'000);
  EXPECT_EQ(t.totals(1'300).running_ns, 300);
  EXPECT_EQ(t.totals(1'300).waiting_ns, 0);
  t.wait_from(1'400);
  EXPECT_EQ(t.totals(1'900).running_ns, 400);
  EXPECT_EQ(t.totals(1'900).waiting_ns, 500);
  t.run_from(2'000);
  t.stop_at(2'100);
  LoopTime::Totals after = t.totals(9'000);
  EXPECT_EQ(after.running_ns, 500) << "between iterations neither grows";
  EXPECT_EQ(after.waiting_ns, 600);
}

// A span that measures below zero (the loop's timestamps: a TSC extrapolation then an exact
// clock read) counts as none.
TEST(LoopTimeTest, ASpanBelowZeroCountsNone) {
  LoopTime t;
  t.run_from(1'000);
  t.wait_from(1'500);
  t.run_from(1'450);
  t.stop_at(1'600);
  LoopTime::Totals after = t.totals(2'000);
  EXPECT_EQ(after.waiting_ns, 0);
  EXPECT_EQ(after.running_ns, 650);
}

// A reader's clock may run ahead of where the loop then ends the span: what it was given
// stands, so that a total never falls, until the loop's own total passes it.
TEST(LoopTimeTest, ATotalOnceGivenNeverFalls) {
  LoopTime t;
  t.run_from(0);
  t.wait_from(1'000);
  EXPECT_EQ(t.totals(1'500).waiting_ns, 500);
  EXPECT_EQ(t.totals(1'200).waiting_ns, 500) << "an earlier clock reading";
  t.run_from(1'450);  // the loop measured less than the reader saw
  EXPECT_EQ(t.totals(2'000).waiting_ns, 500);
  t.wait_from(2'000);
  t.run_from(2'100);
  EXPECT_EQ(t.totals(3'000).waiting_ns, 550);
}

// The loop thread changes state as fast as it can while two threads read, each with a clock
// reading of the loop's: no total is below one before it, and none is torn (a span both ended
// and in progress would count twice: above 5 per iteration begun, for either figure).
TEST(LoopTimeTest, ReadersSeeConsistentTotalsWhileTheLoopWrites) {
  LoopTime t;
  constexpr int64_t kIterations = 200'000;
  std::atomic<int64_t> clock{0};  // the loop's: iteration i runs 10i..10i+5, waits 10i+5..10i+10
  std::atomic<int64_t> begun{0};
  std::atomic<bool> done{false};
  std::atomic<int> fell{0};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      LoopTime::Totals last;
      while (!done.load()) {
        const LoopTime::Totals now = t.totals(clock.load());
        if (now.running_ns < last.running_ns || now.waiting_ns < last.waiting_ns) fell.fetch_add(1);
        const int64_t most = 5 * begun.load();
        if (now.running_ns > most || now.waiting_ns > most) torn.fetch_add(1);
        last = now;
      }
    });
  }
  for (int64_t i = 0; i < kIterations; ++i) {
    clock.store(10 * i);
    begun.store(i + 1);
    t.run_from(10 * i);
    clock.store(10 * i + 5);
    t.wait_from(10 * i + 5);
    clock.store(10 * i + 10);
    t.stop_at(10 * i + 10);
  }
  done = true;
  for (std::thread& r : readers) r.join();
  EXPECT_EQ(fell.load(), 0);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(t.totals(0).running_ns, 5 * kIterations);
  EXPECT_EQ(t.totals(0).waiting_ns, 5 * kIterations);
}

// The lock under LoopTime's totals (and ThreadCpuClock's fields), step by step: while the writer
// is between begin_write and end_write, a reader retries however often it looks, and once the
// write has ended it returns what the writer stored last, never what it found half-way.
TEST(SequenceLockTest, AReaderWaitsOutAWriteInProgress) {
  SequenceLock lock;
  std::atomic<int> field{1};
  std::atomic<int> reads{0};
  std::atomic<bool> returned{false};
  std::atomic<int> value{0};
  lock.begin_write();
  field.store(2);  // half-way through the write
  std::thread reader([&] {
    value.store(lock.read([&] {
      reads.fetch_add(1);
      return field.load();
    }));
    returned.store(true);
  });
  // Until the reader has looked three times (or returned); bounded: 10 s.
  for (int i = 0; i < 10'000 && reads.load() < 3 && !returned.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(reads.load(), 3);
  EXPECT_FALSE(returned.load()) << "the reader returned " << value.load() << ", read while the write was in progress";
  field.store(3);
  lock.end_write();
  reader.join();
  EXPECT_EQ(value.load(), 3);
}

}  // namespace
}  // namespace brrr
