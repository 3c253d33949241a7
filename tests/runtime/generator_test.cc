#include "runtime/generator.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace brrr {
namespace {

Generator<int> Count(int from, int to) {
  for (int i = from; i <= to; ++i) co_yield i;
}

TEST(GeneratorTest, RangeFor) {
  std::vector<int> seen;
  for (int i : Count(1, 9)) seen.push_back(i);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(GeneratorTest, NextIsDrivenByTheCaller) {
  std::vector<std::string> log;
  // A named lambda: a coroutine lambda's captures live in the closure, which must outlive it.
  auto body = [&]() -> Generator<int> {
    log.push_back("body starts");
    co_yield 1;
    log.push_back("body resumes");
    co_yield 2;
  };
  auto g = body();
  EXPECT_TRUE(log.empty()) << "nothing runs until the caller asks";
  EXPECT_EQ(g.next(), 1);
  EXPECT_EQ(log, (std::vector<std::string>{"body starts"}));
  EXPECT_EQ(g.next(), 2);
  EXPECT_EQ(g.next(), std::nullopt);
  EXPECT_EQ(g.next(), std::nullopt);
}

TEST(GeneratorTest, ExceptionsPropagateToTheCaller) {
  auto g = []() -> Generator<int> {
    co_yield 1;
    throw std::runtime_error("generator failed");
  }();
  EXPECT_EQ(g.next(), 1);
  EXPECT_THROW(g.next(), std::runtime_error);
}

TEST(GeneratorTest, AbandonedGeneratorIsDestroyed) {
  auto owned = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owned;
  {
    auto g = [](std::shared_ptr<int> p) -> Generator<int> {
      for (;;) co_yield *p;
    }(std::move(owned));
    EXPECT_EQ(g.next(), 0);
  }
  EXPECT_TRUE(watch.expired());
}

TEST(GeneratorTest, MoveOnlyValues) {
  auto g = []() -> Generator<std::unique_ptr<int>> { co_yield std::make_unique<int>(5); }();
  std::optional<std::unique_ptr<int>> v = g.next();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(**v, 5);
}

}  // namespace
}  // namespace brrr
