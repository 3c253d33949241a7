#include "control/brrrctl/commands.h"

#include <algorithm>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "control/admin/loop_range.h"
#include "control/brrrctl/brrrctl_flags.h"

namespace brrr::control {

bool Command::takes(absl::string_view name) const { return flag(name) != nullptr; }

const FlagUse* Command::flag(absl::string_view name) const {
  auto found = std::find_if(flags.begin(), flags.end(), [name](const FlagUse& f) { return f.name == name; });
  return found != flags.end() ? &*found : nullptr;
}

const std::vector<Command>& AllCommands() {
  static const std::vector<Command>* const commands = [] {
    auto* all = new std::vector<Command>;
    for (auto area : {StatsCommands, SocketsCommands, TrafficCommands, InjectionsCommands, StallsCommands, TopCommands}) {
      for (Command& c : area()) all->push_back(std::move(c));
    }
    return all;
  }();
  return *commands;
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : AllCommands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string ExpectedFlagValue(const Command& command, absl::string_view flag) {
  const FlagUse* use = command.flag(flag);
  if (use == nullptr || !use->range.has_value()) return "";
  return absl::StrCat("expected a whole number from ", use->range->min, " to ", use->range->max);
}

Outcome CheckFlagRanges(const Command& command, const CommandLine& line) {
  for (const FlagUse& use : command.flags) {
    if (!use.range.has_value() || !line.given(use.name)) continue;
    // The value as the flag holds it, whatever its whole-number type.
    const std::string value = absl::FindCommandLineFlag(use.name)->CurrentValue();
    uint64_t number = 0;
    if (!absl::SimpleAtoi(value, &number) || number < use.range->min || number > use.range->max) {
      return Outcome::Usage(
          absl::StrCat("--", use.name, "=", value, ": must be from ", use.range->min, " to ", use.range->max));
    }
  }
  return Outcome::Ok();
}

Outcome CheckLoopFlag(const Command& command, const CommandLine& line) {
  const FlagUse* use = command.flag("loop");
  if (use == nullptr || !line.given("loop") || !absl::GetFlag(FLAGS_loop).loops.empty()) return Outcome::Ok();
  return Outcome::Usage(absl::StrCat(command.name, " --loop is empty: name a loop (--loop=", use->value,
                                     ", from 0) or leave --loop out"));
}

Outcome CheckLoops(const std::vector<uint32_t>& loops, int loop_count) {
  for (uint32_t loop : loops) {
    if (loop >= static_cast<uint32_t>(loop_count)) {
      // Word for word what the server answers where it checks --loop itself (sockets, close...).
      return Outcome::ServerError(absl::StrCat(StatusCodeName(grpc::StatusCode::NOT_FOUND), ": ",
                                               control::NoSuchLoop(loop, static_cast<uint32_t>(loop_count))));
    }
  }
  return Outcome::Ok();
}

void KeepLoops(const std::vector<uint32_t>& loops, brrr::admin::v1::Stats* stats) {
  if (loops.empty()) return;
  google::protobuf::RepeatedPtrField<brrr::admin::v1::LoopStats> kept;
  for (const brrr::admin::v1::LoopStats& loop : stats->loops()) {
    if (std::find(loops.begin(), loops.end(), loop.loop()) != loops.end()) *kept.Add() = loop;
  }
  stats->mutable_loops()->Swap(&kept);
}

}  // namespace brrr::control
