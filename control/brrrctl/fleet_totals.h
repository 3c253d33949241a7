// fleet_totals.h: brrrctl's totals over several servers (--target=A,B,C): what `stats`,
// `watch`, `sockets` and `info` print after each server's own answer.
//
//   LoopStatsSum sum;
//   for (const admin::Stats& s : answers) sum.Add(s.total());
//   sum.total().bytes_in();          // the fleet's bytes in
//   sum.left_out();                  // {"timer_lateness.p50_us", ...}: figures with no total
//
// A LoopStats figure is added as its figure list says (runtime/figures.h; the lists are
// BRRR_LOOP_FIGURES, BRRR_ECHO_FIGURES and BRRR_ADMIN_FIGURES, read through kLoopFigures,
// kEchoFigures and kAdminFigures, so a
// figure added to a list is summed without code here): Counter and Gauge summed (a Flag, a
// bool in admin.proto, is true when any part's is), Max the largest (with its label, such as
// the longest task's name), Setting the value every part has, else 0 (a part's 0 included),
// as a server's own total has it (admin.proto's Stats.total), in text and JSON alike, and the
// text says so (SettingsNote). Histograms: admin.proto sends a distribution's count, max and
// percentiles, not its buckets, and percentiles of several servers cannot be combined: the count
// is summed, the max is the largest, the percentiles are left out. Left-out fields print as "-"
// in text and null in JSON, and the text says why.
//
// Threads: values; one thread at a time.
#ifndef BRRR_CONTROL_FLEET_TOTALS_H_
#define BRRR_CONTROL_FLEET_TOTALS_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "brrr/admin/v1/admin.pb.h"
#include "google/protobuf/message.h"

namespace brrr::control {

// Whether the LoopStats field `name` is a Setting figure's (stall_threshold_ms). A server's
// total holds 0 for a setting its loops do not share, and so does a sum of totals or loops.
bool IsSettingField(const std::string& name);

// The line under a total whose settings `fields` are 0 because the loops do not share them,
// ending in '\n'; "" for none. brrrctl's one text for it, under one server's total and a fleet's:
//   "0 in stall_threshold_ms: not the same in every loop (a setting's total is the value all share, else 0)"
std::string SettingsNote(const std::set<std::string>& fields);

// The sum of LoopStats (servers' totals, or loops) as the figure lists say.
class LoopStatsSum {
 public:
  void Add(const brrr::admin::v1::LoopStats& part);

  // How many parts were added.
  int parts() const { return parts_; }
  // The sum; a left-out field holds 0.
  const brrr::admin::v1::LoopStats& total() const { return total_; }
  // The fields with no total, as paths ("timer_lateness.p50_us", "stall_threshold_ms"); `loop`
  // (an index) is one.
  const std::set<std::string>& left_out() const { return left_out_; }
  // Why fields are left out, one sentence, or "" when none but `loop` is.
  std::string LeftOutReason() const;
  // The Setting fields that are 0 in the total because the parts do not all have one value.
  const std::set<std::string>& settings_differ() const { return settings_differ_; }

  // One row per field, as `brrrctl stats` prints a loop's column: (name, text), "-" for a
  // left-out field, without `loop`.
  std::vector<std::pair<std::string, std::string>> Rows() const;
  // The sum as a JSON object, left-out fields null.
  std::string Json() const;

 private:
  brrr::admin::v1::LoopStats total_;
  int parts_ = 0;
  std::set<std::string> left_out_;
  std::set<std::string> settings_differ_;
};

// The total of a read command over the servers that answered it, made from each one's result
// message (the one the command gave Output::Result).
class FleetTotal {
 public:
  virtual ~FleetTotal() = default;
  virtual void Add(const google::protobuf::Message& result) = 0;
  // Lines for people, each ending in '\n'.
  virtual std::string Text() const = 0;
  // The members of the total's JSON object, without braces: "loops":6,"stats":{...}.
  virtual std::string JsonMembers() const = 0;
};

// `stats`: loops and draining servers counted, and the LoopStats sum: of each server's total, or
// with `per_loop` (--loop) of the loops each answer kept.
class StatsTotal : public FleetTotal {
 public:
  explicit StatsTotal(bool per_loop) : per_loop_(per_loop) {}
  void Add(const google::protobuf::Message& result) override;
  std::string Text() const override;
  std::string JsonMembers() const override;
  const LoopStatsSum& sum() const { return sum_; }

 private:
  bool per_loop_;
  uint64_t loops_ = 0;
  uint64_t draining_ = 0;
  uint64_t servers_ = 0;
  LoopStatsSum sum_;
};

// `sockets`: the sockets that matched (every server's `matched`), and over the sockets listed,
// how many are in the read set and in the write set, and the bytes queued.
class SocketsTotal : public FleetTotal {
 public:
  void Add(const google::protobuf::Message& result) override;
  std::string Text() const override;
  std::string JsonMembers() const override;

 private:
  uint64_t matched_ = 0;
  uint64_t listed_ = 0;
  uint64_t read_set_ = 0;
  uint64_t write_set_ = 0;
  uint64_t bytes_queued_ = 0;
};

// `info`: the loops and every listening address.
class InfoTotal : public FleetTotal {
 public:
  void Add(const google::protobuf::Message& result) override;
  std::string Text() const override;
  std::string JsonMembers() const override;

 private:
  uint64_t loops_ = 0;
  std::vector<std::string> listening_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_FLEET_TOTALS_H_
