// The figure lists against admin.proto: every figure, label and histogram of the loop's, the
// echo server's and the admin plane's lists has its typed LoopStats field, and every LoopStats
// field comes from a list (but the loop's index, named below). So a figure cannot be published
// without reaching GetStats, nor a field be added that nothing fills.
#include <set>
#include <string>

#include "brrr/admin/v1/admin.pb.h"
#include "control/admin/admin_figures.h"
#include "gtest/gtest.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"

namespace brrr {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// The LoopStats field that is not a figure of a list: the loop's index.
const std::set<std::string> kNotFromAList = {"loop"};

std::string FieldFor(const FigureInfo& f) {
  switch (f.unit) {
    case FigureUnit::kSeconds:
      return std::string(f.name) + "_seconds";
    case FigureUnit::kMillis:
      return std::string(f.name) + "_ms";
    default:
      return f.name;
  }
}

FieldDescriptor::CppType TypeFor(const FigureInfo& f) {
  switch (f.unit) {
    case FigureUnit::kSeconds:
    case FigureUnit::kMillis:
      return FieldDescriptor::CPPTYPE_DOUBLE;
    case FigureUnit::kFlag:
      return FieldDescriptor::CPPTYPE_BOOL;
    default:
      return FieldDescriptor::CPPTYPE_UINT64;
  }
}

class FiguresTest : public ::testing::Test {
 protected:
  const Descriptor* loop_stats_ = brrr::admin::v1::LoopStats::descriptor();
  std::set<std::string> filled_;  // proto fields some list fills

  void ExpectField(const std::string& name, FieldDescriptor::CppType type, const std::string& from) {
    const FieldDescriptor* field = loop_stats_->FindFieldByName(name);
    ASSERT_NE(field, nullptr) << from << " has no field \"" << name << "\" in brrr.admin.v1.LoopStats";
    EXPECT_EQ(field->cpp_type(), type) << name;
    EXPECT_FALSE(field->is_repeated()) << name;
    EXPECT_TRUE(filled_.insert(name).second) << name << " is filled by two figures";
  }

  void ExpectAllFigures() {
    for (const FigureInfo& f : kLoopFigures) ExpectField(FieldFor(f), TypeFor(f), std::string("loop figure ") + f.name);
    for (const FigureInfo& f : server::kEchoFigures) {
      ExpectField(FieldFor(f), TypeFor(f), std::string("echo figure ") + f.name);
    }
    for (const FigureInfo& f : control::kAdminFigures) {
      ExpectField(FieldFor(f), TypeFor(f), std::string("admin figure ") + f.name);
    }
    for (const LabelInfo& l : kLoopLabels) {
      ExpectField(l.name, FieldDescriptor::CPPTYPE_STRING, std::string("loop label ") + l.name);
    }
    for (const HistogramInfo& h : kLoopHistograms) {
      ExpectField(h.name, FieldDescriptor::CPPTYPE_MESSAGE, std::string("loop histogram ") + h.name);
    }
  }
};

TEST_F(FiguresTest, EveryFigureHasItsTypedField) { ExpectAllFigures(); }

TEST_F(FiguresTest, EveryFieldComesFromAList) {
  ExpectAllFigures();
  for (int i = 0; i < loop_stats_->field_count(); ++i) {
    const std::string& name = loop_stats_->field(i)->name();
    EXPECT_TRUE(filled_.count(name) == 1 || kNotFromAList.count(name) == 1)
        << "brrr.admin.v1.LoopStats." << name << " is filled by no figure list";
  }
}

TEST_F(FiguresTest, EveryFigureIsDocumented) {
  auto documented = [](const char* help) { return help != nullptr && std::string(help).size() > 10; };
  for (const FigureInfo& f : kLoopFigures) EXPECT_TRUE(documented(f.help)) << f.name;
  for (const FigureInfo& f : server::kEchoFigures) EXPECT_TRUE(documented(f.help)) << f.name;
  for (const FigureInfo& f : control::kAdminFigures) EXPECT_TRUE(documented(f.help)) << f.name;
  for (const LabelInfo& l : kLoopLabels) EXPECT_TRUE(documented(l.help)) << l.name;
  for (const HistogramInfo& h : kLoopHistograms) EXPECT_TRUE(documented(h.help)) << h.name;
}

TEST(LoopStatsSumTest, EachFigureAddsAsItsKindSays) {
  LoopStats a;
  LoopStats b;
  a.iterations = 3;
  b.iterations = 4;
  a.stall_threshold_ns = 100;
  b.stall_threshold_ns = 100;
  a.longest_task_ns = 7;
  a.longest_task = "a";
  b.longest_task_ns = 9;
  b.longest_task = "b";
  b.timer_lateness.total = 2;
  LoopStats total;
  total += a;
  total += b;
  EXPECT_EQ(total.iterations, 7u);               // a counter is summed
  EXPECT_EQ(total.stall_threshold_ns, 100);      // a setting is the loops' own
  EXPECT_EQ(total.longest_task_ns, 9);           // a max is the largest...
  EXPECT_EQ(total.longest_task, "b");            // ...with its label
  EXPECT_EQ(total.timer_lateness.total, 2u);     // histograms merge
}

// A setting the loops do not share has no one value in their sum: 0, however many loops
// follow (SetStallThreshold sets one loop's). It was the last loop's.
TEST(LoopStatsSumTest, ASettingTheLoopsDoNotShareIsZeroInTheirSum) {
  LoopStats loops[3];
  loops[0].stall_threshold_ns = 50;
  loops[1].stall_threshold_ns = 100;
  loops[2].stall_threshold_ns = 100;
  LoopStats total;
  for (const LoopStats& loop : loops) total += loop;
  EXPECT_EQ(total.stall_threshold_ns, 0);
  EXPECT_EQ(total.summed, 3u);
  LoopStats first_differs;
  first_differs += loops[1];
  first_differs += loops[0];
  first_differs += loops[2];
  EXPECT_EQ(first_differs.stall_threshold_ns, 0);
}

}  // namespace
}  // namespace brrr
