// HeldInput: what goes in comes out in order, in blocks of at most the block size, whether it
// is taken whole or consumed piece by piece; a block taken whole is not copied.
#include "server/held_input.h"

#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "tests/testing/net.h"

namespace brrr::server {
namespace {

TEST(HeldInputTest, TakesBackWhatWasAppendedInBlocksOfAtMostTheBlockSize) {
  const std::string data = testing::RandomBytes(10000, 3);
  for (size_t block : {size_t{1}, size_t{7}, size_t{512}, size_t{4096}, size_t{16384}}) {
    HeldInput held(block);
    size_t at = 0;
    for (size_t n : {size_t{1}, size_t{0}, size_t{513}, size_t{4096}, size_t{3}, size_t{5387}}) {
      held.append(std::string_view(data).substr(at, n));
      at += n;
    }
    ASSERT_EQ(at, data.size());
    EXPECT_EQ(held.size(), data.size());
    std::string out;
    while (!held.empty()) {
      Chunk c = held.take_front();
      ASSERT_GT(c.size(), 0u);
      EXPECT_LE(c.size(), block);
      out.append(c.data(), c.size());
      EXPECT_EQ(held.size(), data.size() - out.size());
    }
    EXPECT_TRUE(out == data) << "block size " << block;
    EXPECT_EQ(held.take_front().size(), 0u);
  }
}

TEST(HeldInputTest, ConsumedPieceByPieceAndTakenAfterwards) {
  const std::string data = testing::RandomBytes(5000, 4);
  HeldInput held(1024);
  held.append(data);
  std::string out;
  for (size_t step = 1; !held.empty(); step = step * 3 % 1000 + 1) {
    std::string_view front = held.front();
    ASSERT_FALSE(front.empty());
    EXPECT_LE(front.size(), 1024u);
    size_t n = std::min(step, front.size());
    out.append(front.substr(0, n));
    held.consume(n);
    if (out.size() > 2500 && !held.empty()) {
      // The rest of a partly consumed block comes as a block of its own.
      Chunk c = held.take_front();
      EXPECT_EQ(c.capacity(), c.size());
      out.append(c.data(), c.size());
    }
  }
  EXPECT_TRUE(out == data);
  EXPECT_TRUE(held.front().empty());
}

TEST(HeldInputTest, ABlockTakenWholeIsNotCopied) {
  HeldInput held(16);
  held.append("0123456789abcdefXYZ");
  const char* first = held.front().data();
  Chunk c = held.take_front();
  EXPECT_EQ(c.data(), first);
  EXPECT_EQ(std::string(c.data(), c.size()), "0123456789abcdef");
  EXPECT_EQ(held.front(), "XYZ");
  held.append("!");  // fills the partly filled block
  EXPECT_EQ(held.front(), "XYZ!");
}

}  // namespace
}  // namespace brrr::server
