#include "control/brrrctl/top_figures.h"

#include "control/admin/admin_figures.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"

namespace brrr::control::top {
namespace {

namespace admin = brrr::admin::v1;
using google::protobuf::FieldDescriptor;

// The figure's LoopStats field: durations carry their unit in the name.
std::string FieldName(const FigureInfo& figure) {
  switch (figure.unit) {
    case FigureUnit::kSeconds: return std::string(figure.name) + "_seconds";
    case FigureUnit::kMillis: return std::string(figure.name) + "_ms";
    default: return figure.name;
  }
}

std::optional<double> Read(const admin::LoopStats& stats, const FieldDescriptor* field) {
  const google::protobuf::Reflection* reflection = stats.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(reflection->GetUInt64(stats, field));
    case FieldDescriptor::CPPTYPE_DOUBLE: return reflection->GetDouble(stats, field);
    case FieldDescriptor::CPPTYPE_BOOL: return reflection->GetBool(stats, field) ? 1.0 : 0.0;
    default: return std::nullopt;
  }
}

void Add(const FigureInfo& figure, const admin::LoopStats& now, const admin::LoopStats* before, double seconds,
         std::vector<FigureCell>* cells) {
  const std::string field_name = FieldName(figure);
  const FieldDescriptor* field = admin::LoopStats::descriptor()->FindFieldByName(field_name);
  if (figure.kind != FigureKind::kCounter) {
    cells->push_back({field_name, field != nullptr ? Read(now, field) : std::nullopt});
    return;
  }
  FigureCell cell{field_name + "/s", std::nullopt};
  if (field != nullptr && before != nullptr && seconds > 0) {
    std::optional<double> a = Read(now, field);
    std::optional<double> b = Read(*before, field);
    if (a && b && *a >= *b) cell.value = (*a - *b) / seconds;
  }
  cells->push_back(std::move(cell));
}

}  // namespace

std::vector<FigureCell> FigureCells(const admin::LoopStats& now, const admin::LoopStats* before, double seconds) {
  std::vector<FigureCell> cells;
  for (const FigureInfo& figure : kLoopFigures) Add(figure, now, before, seconds, &cells);
  for (const FigureInfo& figure : server::kEchoFigures) Add(figure, now, before, seconds, &cells);
  for (const FigureInfo& figure : kAdminFigures) Add(figure, now, before, seconds, &cells);
  return cells;
}

}  // namespace brrr::control::top
