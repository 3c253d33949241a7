// brrrctl's totals over several servers: each LoopStats figure added as its figure list says,
// percentiles and differing settings left out (and said so), sockets and info totals.
#include "control/brrrctl/fleet_totals.h"

#include <set>
#include <string>
#include <vector>

#include "control/admin/admin_figures.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Every scalar field of `m` (and of its message fields) set to `value` (bools true, strings
// "part<value>").
void SetAll(Message* m, int value) {
  const Descriptor* d = m->GetDescriptor();
  const auto* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(m, f, value); break;
      case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(m, f, value); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(m, f, value); break;
      case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(m, f, true); break;
      case FieldDescriptor::CPPTYPE_STRING: r->SetString(m, f, "part" + std::to_string(value)); break;
      case FieldDescriptor::CPPTYPE_MESSAGE: SetAll(r->MutableMessage(m, f), value); break;
      default: ADD_FAILURE() << "LoopStats." << f->name() << ": a type this test does not fill"; break;
    }
  }
}

// A field a new figure adds to admin.proto gets a total (or is left out, and said so): with
// every field 3 in one part and 4 in the other, every total is 7 (summed), 4 (the larger),
// true, the larger part's label, or 0 (a setting that differs).
TEST(LoopStatsSumTest, EveryFieldHasATotalOrIsLeftOut) {
  admin::LoopStats a, b;
  SetAll(&a, 3);
  SetAll(&b, 4);
  LoopStatsSum sum;
  sum.Add(a);
  sum.Add(b);
  EXPECT_EQ(sum.parts(), 2);
  for (const auto& [name, text] : sum.Rows()) {
    if (sum.left_out().count(name) == 1) {
      EXPECT_EQ(text, "-") << name;
    } else {
      EXPECT_TRUE(text == "7" || text == "4" || text == "true" || text == "part4" ||
                  (IsSettingField(name) && text == "0"))
          << name << " = " << text;
    }
  }
}

// Each figure of the lists, by its kind.
TEST(LoopStatsSumTest, EachFigureAsItsKindSays) {
  admin::LoopStats a, b;
  SetAll(&a, 3);
  SetAll(&b, 4);
  b.set_stall_threshold_ms(3);  // the same setting on both
  LoopStatsSum sum;
  sum.Add(a);
  sum.Add(b);
  auto row = [&sum](const std::string& field) {
    for (const auto& [name, text] : sum.Rows()) {
      if (name == field) return text;
    }
    return std::string("(no row)");
  };
  auto field = [](const FigureInfo& f) {
    std::string name = f.name;
    if (f.unit == FigureUnit::kSeconds) name += "_seconds";
    if (f.unit == FigureUnit::kMillis) name += "_ms";
    return name;
  };
  auto expect = [&](const FigureInfo& f) {
    switch (f.kind) {
      case FigureKind::kCounter:
      case FigureKind::kGauge:
        EXPECT_EQ(row(field(f)), f.unit == FigureUnit::kFlag ? "true" : "7") << f.name;
        break;
      case FigureKind::kMax:
      case FigureKind::kSetting:
        EXPECT_EQ(row(field(f)), f.kind == FigureKind::kMax ? "4" : "3") << f.name;
        break;
    }
  };
  for (const FigureInfo& f : kLoopFigures) expect(f);
  for (const FigureInfo& f : server::kEchoFigures) expect(f);
  for (const FigureInfo& f : kAdminFigures) expect(f);
  for (const LabelInfo& l : kLoopLabels) EXPECT_EQ(row(l.name), "part4") << l.name << " follows " << l.figure;
  for (const HistogramInfo& h : kLoopHistograms) {
    EXPECT_EQ(row(std::string(h.name) + ".count"), "7");
    EXPECT_EQ(row(std::string(h.name) + ".max_us"), "4");
    EXPECT_EQ(row(std::string(h.name) + ".p99_us"), "-");
  }
  EXPECT_EQ(sum.left_out().count("stall_threshold_ms"), 0u);
  EXPECT_TRUE(sum.settings_differ().empty());
}

// A setting without one value over the parts is 0, as a server's own total has it
// (admin.proto), in text and JSON alike, and not left out; SettingsNote says why. A part that is
// 0 (a server whose loops differ) makes the total 0 wherever it comes: first (where the sum of
// two such servers was 0 unexplained) or later.
TEST(LoopStatsSumTest, ASettingThatDiffersIsZeroAndSaidSo) {
  auto threshold = [](double ms) {
    admin::LoopStats part;
    part.set_stall_threshold_ms(ms);
    return part;
  };
  for (const std::vector<double>& parts : std::vector<std::vector<double>>{
           {100, 50, 100}, {100, 100, 50}, {0, 0}, {0, 100}, {100, 0}, {100, 0, 100}}) {
    LoopStatsSum sum;
    for (double ms : parts) sum.Add(threshold(ms));
    SCOPED_TRACE(::testing::PrintToString(parts));
    EXPECT_EQ(sum.total().stall_threshold_ms(), 0);
    EXPECT_EQ(sum.left_out().count("stall_threshold_ms"), 0u);
    EXPECT_EQ(sum.settings_differ(), std::set<std::string>{"stall_threshold_ms"});
    EXPECT_TRUE(Contains(sum.Json(), "\"stall_threshold_ms\":0,")) << sum.Json();
    for (const auto& [name, text] : sum.Rows()) {
      if (name == "stall_threshold_ms") {
        EXPECT_EQ(text, "0");
      }
    }
  }
  LoopStatsSum shared;
  for (double ms : {100, 100}) shared.Add(threshold(ms));
  EXPECT_EQ(shared.total().stall_threshold_ms(), 100);
  EXPECT_TRUE(shared.settings_differ().empty());
  EXPECT_EQ(SettingsNote({}), "");
  EXPECT_EQ(SettingsNote({"stall_threshold_ms"}),
            "0 in stall_threshold_ms: not the same in every loop (a setting's total is the value all share, else 0)\n");
}

TEST(LoopStatsSumTest, PercentilesAreNullInJsonAndExplained) {
  admin::LoopStats a;
  a.set_bytes_in(10);
  a.mutable_timer_lateness()->set_p99_us(12.5);
  a.mutable_timer_lateness()->set_count(2);
  LoopStatsSum sum;
  sum.Add(a);
  sum.Add(a);
  const std::string json = sum.Json();
  EXPECT_TRUE(Contains(json, "\"bytes_in\":20,")) << json;
  EXPECT_TRUE(Contains(json, "\"timer_lateness\":{\"count\":4,\"p50_us\":null,\"p99_us\":null,\"p999_us\":null,"))
      << json;
  EXPECT_TRUE(Contains(json, "\"loop\":null")) << json;
  EXPECT_TRUE(Contains(sum.LeftOutReason(), "percentiles")) << sum.LeftOutReason();
}

TEST(StatsTotalTest, SumsServerTotalsOrTheListedLoops) {
  admin::Stats one;
  one.mutable_total()->set_bytes_in(100);
  one.add_loops()->set_bytes_in(60);
  one.add_loops()->set_bytes_in(40);
  admin::Stats two = one;
  two.set_draining(true);
  two.mutable_loops()->RemoveLast();  // --loop=0 kept one loop
  two.mutable_total()->set_bytes_in(1000);

  StatsTotal totals(/*per_loop=*/false);
  totals.Add(one);
  totals.Add(two);
  EXPECT_EQ(totals.sum().total().bytes_in(), 1100u);
  EXPECT_TRUE(Contains(totals.JsonMembers(), "\"loops\":3,\"draining\":1,\"stats\":{")) << totals.JsonMembers();
  EXPECT_TRUE(Contains(totals.Text(), "draining  1 of 2")) << totals.Text();

  StatsTotal per_loop(/*per_loop=*/true);
  per_loop.Add(one);
  per_loop.Add(two);
  EXPECT_EQ(per_loop.sum().total().bytes_in(), 160u);
}

TEST(SocketsTotalTest, CountsSetsAndQueuedBytes) {
  admin::ListSocketsResponse a;
  a.set_matched(3);
  a.add_sockets()->set_in_read_set(true);
  admin::SocketInfo* w = a.add_sockets();
  w->set_in_read_set(true);
  w->set_in_write_set(true);
  w->set_bytes_queued(500);
  admin::ListSocketsResponse b;
  b.set_matched(1);
  b.add_sockets()->set_bytes_queued(7);
  SocketsTotal total;
  total.Add(a);
  total.Add(b);
  EXPECT_EQ(total.JsonMembers(), "\"sockets\":4,\"listed\":3,\"read_set\":2,\"write_set\":1,\"bytes_queued\":507");
  EXPECT_TRUE(Contains(total.Text(), "count the 3 sockets listed (--limit)")) << total.Text();
  // Every matching socket listed: the counts are whole, and no note says otherwise.
  SocketsTotal whole;
  whole.Add(b);
  EXPECT_FALSE(Contains(whole.Text(), "(--limit)")) << whole.Text();
  EXPECT_TRUE(Contains(whole.Text(), "queued bytes")) << whole.Text();
}

TEST(InfoTotalTest, LoopsAndAddresses) {
  admin::ServerInfo a, b;
  a.set_loops(2);
  a.add_listening_addresses("127.0.0.1:7001");
  b.set_loops(4);
  b.add_listening_addresses("[::1]:7002");
  InfoTotal total;
  total.Add(a);
  total.Add(b);
  EXPECT_EQ(total.JsonMembers(), "\"loops\":6,\"listening_addresses\":[\"127.0.0.1:7001\",\"[::1]:7002\"]");
  EXPECT_EQ(total.Text(), "loops      6\nlistening  127.0.0.1:7001, [::1]:7002\n");
}

}  // namespace
}  // namespace brrr::control
