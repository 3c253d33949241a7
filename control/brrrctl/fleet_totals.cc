#include "control/brrrctl/fleet_totals.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/admin/admin_figures.h"
#include "control/brrrctl/message_json.h"
#include "control/brrrctl/message_text.h"
#include "control/brrrctl/text_table.h"
#include "google/protobuf/descriptor.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The LoopStats field no figure list fills (tests/control/figures_test.cc names the same): the
// loop's index, which has no total.
constexpr const char* kIndexField = "loop";

// The fields of a Lateness that combine over servers; the others are percentiles.
constexpr const char* kLatenessCount = "count";
constexpr const char* kLatenessMax = "max_us";

// The admin.proto field of a figure (stats_proto.h): NAME, NAME_seconds or NAME_ms.
std::string FieldName(const FigureInfo& figure) {
  switch (figure.unit) {
    case FigureUnit::kSeconds:
      return absl::StrCat(figure.name, "_seconds");
    case FigureUnit::kMillis:
      return absl::StrCat(figure.name, "_ms");
    default:
      return figure.name;
  }
}

struct Figure {
  const FieldDescriptor* field;
  FigureKind kind;
};

struct Label {
  const FieldDescriptor* field;
  const FieldDescriptor* figure;
};

// The figure lists, resolved to LoopStats fields once. figures_test holds every figure against
// admin.proto, so a field not found is a broken build.
struct Lists {
  std::vector<Figure> figures;
  std::vector<Label> labels;
  std::vector<const FieldDescriptor*> histograms;

  static const Lists& Get() {
    static const Lists* const lists = new Lists();
    return *lists;
  }

 private:
  Lists() {
    const Descriptor* d = admin::LoopStats::descriptor();
    auto field = [d](const std::string& name) {
      const FieldDescriptor* f = d->FindFieldByName(name);
      if (f == nullptr) std::abort();  // a figure without its field: figures_test fails first
      return f;
    };
    for (const FigureInfo& f : kLoopFigures) figures.push_back({field(FieldName(f)), f.kind});
    for (const FigureInfo& f : server::kEchoFigures) figures.push_back({field(FieldName(f)), f.kind});
    for (const FigureInfo& f : kAdminFigures) figures.push_back({field(FieldName(f)), f.kind});
    for (const LabelInfo& l : kLoopLabels) {
      const FigureInfo* figure = std::find_if(std::begin(kLoopFigures), std::end(kLoopFigures),
                                              [&l](const FigureInfo& f) { return std::string(f.name) == l.figure; });
      if (figure == std::end(kLoopFigures)) std::abort();
      labels.push_back({field(l.name), field(FieldName(*figure))});
    }
    for (const HistogramInfo& h : kLoopHistograms) histograms.push_back(field(h.name));
  }
};

double Value(const Message& m, const FieldDescriptor* f) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32: return r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(m, f) ? 1 : 0;
    default: return 0;
  }
}

// total.f = total.f + part.f (a bool: either), or the larger of the two.
void Combine(const FieldDescriptor* f, bool largest, const Message& part, Message* total) {
  const Reflection* r = total->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t a = r->GetUInt64(*total, f), b = r->GetUInt64(part, f);
      r->SetUInt64(total, f, largest ? std::max(a, b) : a + b);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t a = r->GetUInt32(*total, f), b = r->GetUInt32(part, f);
      r->SetUInt32(total, f, largest ? std::max(a, b) : a + b);
      break;
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double a = r->GetDouble(*total, f), b = r->GetDouble(part, f);
      r->SetDouble(total, f, largest ? std::max(a, b) : a + b);
      break;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      r->SetBool(total, f, r->GetBool(*total, f) || r->GetBool(part, f));
      break;
    default:
      break;
  }
}

std::string JsonStrings(const std::vector<std::string>& texts) {
  std::vector<std::string> quoted;
  for (const std::string& t : texts) quoted.push_back(JsonString(t));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

}  // namespace

void LoopStatsSum::Add(const admin::LoopStats& part) {
  const Lists& lists = Lists::Get();
  const Reflection* r = total_.GetReflection();
  if (parts_ == 0) {
    left_out_.insert(kIndexField);
    for (const FieldDescriptor* h : lists.histograms) {
      const Descriptor* lateness = h->message_type();
      for (int i = 0; i < lateness->field_count(); ++i) {
        const std::string& name = lateness->field(i)->name();
        if (name != kLatenessCount && name != kLatenessMax) left_out_.insert(absl::StrCat(h->name(), ".", name));
      }
    }
  }
  // Labels first: each follows its figure, compared before the figure takes the larger value.
  for (const Label& l : lists.labels) {
    if (parts_ == 0 || Value(part, l.figure) > Value(total_, l.figure)) {
      r->SetString(&total_, l.field, part.GetReflection()->GetString(part, l.field));
    }
  }
  for (const Figure& f : lists.figures) {
    switch (f.kind) {
      case FigureKind::kCounter:
      case FigureKind::kGauge:
        Combine(f.field, /*largest=*/false, part, &total_);
        break;
      case FigureKind::kMax:
        Combine(f.field, /*largest=*/true, part, &total_);
        break;
      case FigureKind::kSetting: {
        // 0 in a part: a server whose loops do not share the setting (admin.proto); then the
        // total has no one value either, and is 0 as that server's.
        const double value = Value(part, f.field);
        if (settings_differ_.count(f.field->name()) == 1) break;
        if (value == 0 || (parts_ > 0 && value != Value(total_, f.field))) {
          settings_differ_.insert(f.field->name());
          r->ClearField(&total_, f.field);
        } else if (parts_ == 0) {
          Combine(f.field, /*largest=*/false, part, &total_);
        }
        break;
      }
    }
  }
  for (const FieldDescriptor* h : lists.histograms) {
    const Message& from = part.GetReflection()->GetMessage(part, h);
    Message* into = r->MutableMessage(&total_, h);
    const Descriptor* lateness = h->message_type();
    Combine(lateness->FindFieldByName(kLatenessCount), /*largest=*/false, from, into);
    Combine(lateness->FindFieldByName(kLatenessMax), /*largest=*/true, from, into);
  }
  ++parts_;
}

bool IsSettingField(const std::string& name) {
  for (const Figure& f : Lists::Get().figures) {
    if (f.kind == FigureKind::kSetting && f.field->name() == name) return true;
  }
  return false;
}

std::string SettingsNote(const std::set<std::string>& fields) {
  if (fields.empty()) return "";
  return absl::StrCat("0 in ", absl::StrJoin(fields, ", "),
                      ": not the same in every loop (a setting's total is the value all share, else 0)\n");
}

std::string LoopStatsSum::LeftOutReason() const {
  if (Lists::Get().histograms.empty()) return "";
  return "percentiles of several servers cannot be added (admin.proto sends percentiles, not histogram buckets)";
}

std::vector<std::pair<std::string, std::string>> LoopStatsSum::Rows() const {
  std::vector<std::pair<std::string, std::string>> rows;
  for (auto& [name, text] : FieldRows(total_)) {
    if (name == kIndexField) continue;
    rows.emplace_back(name, left_out_.count(name) == 1 ? "-" : text);
  }
  return rows;
}

std::string LoopStatsSum::Json() const { return MessageToJsonLine(total_, left_out_); }

void StatsTotal::Add(const Message& result) {
  const auto& stats = static_cast<const admin::Stats&>(result);
  ++servers_;
  loops_ += stats.loops_size();
  if (stats.draining()) ++draining_;
  if (per_loop_) {
    for (const admin::LoopStats& loop : stats.loops()) sum_.Add(loop);
  } else {
    sum_.Add(stats.total());
  }
}

std::string StatsTotal::Text() const {
  TextTable summary;
  summary.AddRow({per_loop_ ? "loops listed" : "loops", absl::StrCat(loops_)});
  summary.AddRow({"draining", absl::StrCat(draining_, " of ", servers_)});
  TextTable table({"FIELD", "TOTAL"});
  table.AlignRight(1);
  for (auto& [name, text] : sum_.Rows()) table.AddRow({name, text});
  std::string text = absl::StrCat(summary.Render(), "\n", table.Render());
  if (std::string why = sum_.LeftOutReason(); !why.empty()) absl::StrAppend(&text, "-: no total: ", why, "\n");
  absl::StrAppend(&text, SettingsNote(sum_.settings_differ()));
  return text;
}

std::string StatsTotal::JsonMembers() const {
  std::vector<std::string> left_out(sum_.left_out().begin(), sum_.left_out().end());
  return absl::StrCat("\"loops\":", loops_, ",\"draining\":", draining_, ",\"stats\":", sum_.Json(),
                      ",\"left_out\":", JsonStrings(left_out));
}

void SocketsTotal::Add(const Message& result) {
  const auto& response = static_cast<const admin::ListSocketsResponse&>(result);
  matched_ += response.matched();
  listed_ += response.sockets_size();
  for (const admin::SocketInfo& s : response.sockets()) {
    if (s.in_read_set()) ++read_set_;
    if (s.in_write_set()) ++write_set_;
    bytes_queued_ += s.bytes_queued();
  }
}

std::string SocketsTotal::Text() const {
  TextTable table;
  table.AlignRight(1);
  table.AddRow({"sockets", absl::StrCat(matched_)});
  table.AddRow({"read set", absl::StrCat(read_set_)});
  table.AddRow({"write set", absl::StrCat(write_set_)});
  table.AddRow({"queued bytes", absl::StrCat(bytes_queued_)});
  std::string text = table.Render();
  if (listed_ < matched_) {
    absl::StrAppend(&text, "read set, write set and queued bytes count the ", listed_, " sockets listed (--limit)\n");
  }
  return text;
}

std::string SocketsTotal::JsonMembers() const {
  return absl::StrCat("\"sockets\":", matched_, ",\"listed\":", listed_, ",\"read_set\":", read_set_,
                      ",\"write_set\":", write_set_, ",\"bytes_queued\":", bytes_queued_);
}

void InfoTotal::Add(const Message& result) {
  const auto& info = static_cast<const admin::ServerInfo&>(result);
  loops_ += info.loops();
  listening_.insert(listening_.end(), info.listening_addresses().begin(), info.listening_addresses().end());
}

std::string InfoTotal::Text() const {
  TextTable table;
  table.AddRow({"loops", absl::StrCat(loops_)});
  table.AddRow({"listening", listening_.empty() ? "-" : absl::StrJoin(listening_, ", ")});
  return table.Render();
}

std::string InfoTotal::JsonMembers() const {
  return absl::StrCat("\"loops\":", loops_, ",\"listening_addresses\":", JsonStrings(listening_));
}

}  // namespace brrr::control
