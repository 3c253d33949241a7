// CollectStats (GetStats' answer): the total is the sum of the loops the same answer shows,
// even while the figures move as they are read, loop by loop.
#include "control/admin/admin_convert.h"

#include <chrono>
#include <cstdint>

#include "gtest/gtest.h"
#include "tests/control/fake_administered.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;

TEST(CollectStatsTest, TheTotalIsTheSumOfTheLoopsShownWhileFiguresMove) {
  testing::FakeAdministered target(2);
  target.echo[1].bytes_in = 7;
  // Loop 0 closes a connection with a reset, and reads 100 bytes, each time a loop's figures
  // have been read: as loops do while an answer is put together.
  target.after_read = [&](size_t) {
    target.echo[0].connections_closed_drain_reset += 1;
    target.echo[0].bytes_in += 100;
  };
  control::TaskInjector injector(target.loops(), std::chrono::seconds(1));
  admin::Stats stats = control::CollectStats(target, injector);
  ASSERT_EQ(stats.loops_size(), 2);
  uint64_t resets = 0;
  uint64_t bytes_in = 0;
  for (const admin::LoopStats& loop : stats.loops()) {
    resets += loop.connections_closed_drain_reset();
    bytes_in += loop.bytes_in();
  }
  EXPECT_EQ(stats.total().connections_closed_drain_reset(), resets) << stats.ShortDebugString();
  EXPECT_EQ(stats.total().bytes_in(), bytes_in) << stats.ShortDebugString();
  EXPECT_EQ(stats.loops(1).bytes_in(), 7u);
}

}  // namespace
}  // namespace brrr
