#include "runtime/deferred_flush.h"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace brrr {
namespace {

// An entry that records its runs in a shared log and may do more while it runs.
class Recorder : public DeferredFlush {
 public:
  Recorder(int id, std::vector<int>& log) : id_(id), log_(log) {}
  void flush() override {
    log_.push_back(id_);
    if (on_flush) on_flush();
  }
  std::function<void()> on_flush;

 private:
  int id_;
  std::vector<int>& log_;
};

void FailOnEscape() { ADD_FAILURE() << "an exception escaped a flush"; }

std::vector<std::unique_ptr<Recorder>> MakeRecorders(int count, std::vector<int>& log) {
  std::vector<std::unique_ptr<Recorder>> out;
  for (int i = 0; i < count; ++i) out.push_back(std::make_unique<Recorder>(i, log));
  return out;
}

TEST(DeferredFlushListTest, RunsEachEntryOnceInTheOrderAdded) {
  std::vector<int> log;
  auto recorders = MakeRecorders(3, log);
  DeferredFlushList list;
  list.add(*recorders[2]);
  list.add(*recorders[0]);
  list.add(*recorders[2]);  // pending already: not added twice
  EXPECT_TRUE(recorders[2]->flush_pending());
  EXPECT_FALSE(recorders[1]->flush_pending());
  list.run(FailOnEscape);
  EXPECT_EQ(log, (std::vector<int>{2, 0}));
  EXPECT_FALSE(recorders[2]->flush_pending());
  list.run(FailOnEscape);  // emptied by the first run
  EXPECT_EQ(log.size(), 2u);
}

// Past the entries the list holds in itself (64) the rest go to a vector: every one runs, in
// order, and a removed one does not, on either side of that line, run after run.
TEST(DeferredFlushListTest, ManyEntriesRunInOrderAndRemovedOnesDoNot) {
  std::vector<int> log;
  auto recorders = MakeRecorders(300, log);
  DeferredFlushList list;
  for (int round = 0; round < 3; ++round) {
    log.clear();
    for (auto& r : recorders) list.add(*r);
    list.remove(*recorders[10]);
    list.remove(*recorders[63]);
    list.remove(*recorders[64]);
    list.remove(*recorders[250]);
    EXPECT_FALSE(recorders[64]->flush_pending());
    list.run(FailOnEscape);
    std::vector<int> expected;
    for (int i = 0; i < 300; ++i) {
      if (i != 10 && i != 63 && i != 64 && i != 250) expected.push_back(i);
    }
    EXPECT_EQ(log, expected) << "round " << round;
    for (auto& r : recorders) EXPECT_FALSE(r->flush_pending());
  }
}

// An entry added while the list runs (a handler that queued more) runs in the same pass, the
// one running included, also when the additions cross from the inline entries to the vector.
TEST(DeferredFlushListTest, EntriesAddedWhileRunningRunInTheSamePass) {
  std::vector<int> log;
  auto recorders = MakeRecorders(100, log);
  DeferredFlushList list;
  for (int i = 0; i < 60; ++i) list.add(*recorders[i]);
  // Entry 59 adds forty more and itself again, the first time it runs.
  bool first = true;
  recorders[59]->on_flush = [&] {
    if (!first) return;
    first = false;
    for (int i = 60; i < 100; ++i) list.add(*recorders[i]);
    list.add(*recorders[59]);
  };
  list.run(FailOnEscape);
  ASSERT_EQ(log.size(), 101u);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(log[i], i);
  for (int i = 60; i < 100; ++i) EXPECT_EQ(log[i], i);
  EXPECT_EQ(log[100], 59);
  for (auto& r : recorders) EXPECT_FALSE(r->flush_pending());
  log.clear();
  list.run(FailOnEscape);
  EXPECT_TRUE(log.empty());
}

// A flush that throws is one entry's bug: the others still run, the pass still empties the
// list (so the entry, if it goes away, is never called again), and the list takes entries anew.
TEST(DeferredFlushListTest, AFlushThatThrowsLeavesTheOthersRunAndTheListEmpty) {
  std::vector<int> log;
  auto recorders = MakeRecorders(3, log);
  recorders[1]->on_flush = [] { throw std::runtime_error("flush failed"); };
  DeferredFlushList list;
  for (auto& r : recorders) list.add(*r);
  std::vector<std::string> escaped;
  auto catch_it = [&] {
    try {
      throw;
    } catch (const std::exception& e) {
      escaped.push_back(e.what());
    }
  };
  list.run(catch_it);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(escaped, (std::vector<std::string>{"flush failed"}));
  EXPECT_FALSE(recorders[1]->flush_pending());
  recorders.erase(recorders.begin() + 1);  // gone: a list that kept it would call freed memory
  list.run(catch_it);
  EXPECT_EQ(log.size(), 3u);
  list.add(*recorders[0]);
  list.run(catch_it);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 0}));
}

}  // namespace
}  // namespace brrr
