#include "runtime/ready_queue.h"

#include <vector>

#include "gtest/gtest.h"

namespace brrr {
namespace {

TEST(ReadyQueueTest, FirstInFirstOutAcrossGrowth) {
  ReadyQueue q;
  std::vector<int> order;
  // Interleave pushes and pops so the ring wraps before it grows.
  int next = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 30; ++i, ++next) q.push({[&order, n = next] { order.push_back(n); }, "t"});
    for (int i = 0; i < 10; ++i) q.pop().fn();
  }
  while (!q.empty()) q.pop().fn();
  ASSERT_EQ(order.size(), 1500u);
  for (int i = 0; i < 1500; ++i) EXPECT_EQ(order[i], i);
}

TEST(ReadyQueueTest, ClearDestroysWithoutRunning) {
  ReadyQueue q;
  auto owned = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owned;
  bool ran = false;
  q.push({[o = std::move(owned), &ran] { ran = true; }, "t"});
  EXPECT_EQ(q.size(), 1u);
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(watch.expired());
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace brrr
