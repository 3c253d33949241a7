// brrrctl: the command line of brrr-echo's admin plane, for people and for scripts.
//
//   brrrctl --target=127.0.0.1:5001 stats
//   brrrctl watch --interval=500ms --json | jq .total.bytes_in
//   brrrctl throttle --conn_rate=10KB
//
//   brrrctl --target=127.0.0.1:5001,127.0.0.1:5002 stats    # each, then the total
//   brrrctl --targets_file=fleet.txt throttle --pause
//
// `brrrctl --help` lists the commands, the value syntax, the JSON format and the exit codes
// (control/outcome.h); `brrrctl help COMMAND` a command's flags.
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/brrrctl/admin_client.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/command_help.h"
#include "control/brrrctl/command_line.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_run.h"
#include "control/brrrctl/interrupts.h"
#include "control/brrrctl/outcome.h"
#include "control/brrrctl/output.h"
#include "control/brrrctl/targets.h"
#include "runtime/standard_descriptors.h"
#include "runtime/version.h"

namespace brrr::control {
namespace {

std::set<std::string, std::less<>> KnownFlags() {
  std::set<std::string, std::less<>> names;
  for (const FlagUse& f : GlobalFlags()) names.insert(f.name);
  for (const Command& c : AllCommands()) {
    for (const FlagUse& f : c.flags) names.insert(f.name);
  }
  return names;
}

bool IsGlobalFlag(const std::string& name) {
  for (const FlagUse& f : GlobalFlags()) {
    if (f.name == name) return true;
  }
  return false;
}

// What a value of `flag` must be for the command on `line` (its range there), when it says.
std::string ExpectedOnLine(const CommandLine& line, absl::string_view flag) {
  const Command* command = line.args.empty() ? nullptr : FindCommand(line.args[0]);
  return command != nullptr ? ExpectedFlagValue(*command, flag) : "";
}

int Finish(const Outcome& outcome, const Command* command) {
  if (!outcome.message.empty()) {
    std::fprintf(stderr, "brrrctl: %s\n", outcome.message.c_str());
    if (outcome.code == ExitCode::kUsage) std::fprintf(stderr, "%s\n", UsageHint(command).c_str());
  }
  return static_cast<int>(outcome.code);
}

// `text` on stdout; exit code 0.
int PrintOut(const std::string& text) {
  WriteOut(stdout, text);
  return 0;
}

// `help` and `help COMMAND`.
int RunHelp(const std::vector<std::string>& topics) {
  // `help help`: help is a command the general help lists, so it has that help.
  if (topics.empty() || topics[0] == "help") return PrintOut(GeneralHelp());
  const Command* command = FindCommand(topics[0]);
  if (command == nullptr) return Finish(Outcome::Usage(absl::StrCat("help ", topics[0], ": no such command")), nullptr);
  return PrintOut(CommandHelp(*command));
}

// The targets of --target or --targets_file, checked.
absl::StatusOr<std::vector<std::string>> Targets(const CommandLine& line) {
  if (line.given("targets_file")) {
    if (line.given("target")) return absl::InvalidArgumentError("give --target or --targets_file, not both");
    return ReadTargetsFile(absl::GetFlag(FLAGS_targets_file));
  }
  return ParseTargetFlag(absl::GetFlag(FLAGS_target));
}

std::string CommandNames() {
  std::vector<std::string> names;
  for (const Command& c : AllCommands()) names.push_back(c.name);
  return absl::StrJoin(names, ", ");
}

int Run(int argc, char** argv, Interrupts& interrupts) {
  absl::StatusOr<CommandLine> line = CommandLine::Parse(argc, argv, KnownFlags(), ExpectedOnLine);
  if (!line.ok()) return Finish(Outcome::Usage(std::string(line.status().message())), nullptr);
  // --version answers alone, wherever it stands, unless help is asked for too.
  if (line->version && !line->help) return PrintOut(absl::StrCat("brrrctl ", kVersion, "\n"));
  if (line->args.empty()) {
    if (line->help) return PrintOut(GeneralHelp());
    return Finish(Outcome::Usage(absl::StrCat("no command given; commands: ", CommandNames())), nullptr);
  }
  const std::string& name = line->args[0];
  std::vector<std::string> args(line->args.begin() + 1, line->args.end());
  if (name == "help") return RunHelp(args);
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return Finish(Outcome::Usage(absl::StrCat("unknown command \"", name, "\"; commands: ", CommandNames())), nullptr);
  }
  if (line->help) return PrintOut(CommandHelp(*command));
  for (const std::string& flag : line->flags) {
    if (!IsGlobalFlag(flag) && !command->takes(flag)) {
      return Finish(Outcome::Usage(absl::StrCat("--", flag, " does not apply to ", command->name)), command);
    }
  }
  if (Outcome ranged = CheckFlagRanges(*command, *line); !ranged.ok()) return Finish(ranged, command);
  if (Outcome loops = CheckLoopFlag(*command, *line); !loops.ok()) return Finish(loops, command);
  if (args.size() < command->min_args || args.size() > command->max_args) {
    std::string want = command->min_args == command->max_args
                           ? absl::StrCat(command->min_args)
                           : absl::StrCat(command->min_args, " to ", command->max_args);
    return Finish(Outcome::Usage(absl::StrCat(command->name, " takes ", want, " argument",
                                              command->max_args == 1 ? "" : "s", ", got ", args.size(),
                                              args.empty() ? "" : absl::StrCat(": ", absl::StrJoin(args, " ")))),
                  command);
  }

  absl::StatusOr<std::vector<std::string>> targets = Targets(*line);
  if (!targets.ok()) return Finish(Outcome::Usage(std::string(targets.status().message())), command);
  AdminClientOptions options{targets->front(), absl::GetFlag(FLAGS_token_file), absl::GetFlag(FLAGS_timeout)};
  if (targets->size() > 1) {
    if (!command->run_fleet) {
      return Finish(Outcome::Usage(absl::StrCat(command->name, " takes one target; ", targets->size(), " given")), command);
    }
    absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::Create(*targets, options);
    if (!fleet.ok()) return Finish(Outcome::Usage(std::string(fleet.status().message())), command);
    FleetInvocation invocation{args, *line, **fleet, absl::GetFlag(FLAGS_json), interrupts};
    return Finish(command->run_fleet(invocation), command);
  }

  absl::StatusOr<std::unique_ptr<AdminClient>> client = AdminClient::Create(options);
  if (!client.ok()) return Finish(Outcome::Usage(std::string(client.status().message())), command);
  Output out(absl::GetFlag(FLAGS_json));
  Invocation invocation{args, *line, **client, out, interrupts};
  return Finish(command->run(invocation), command);
}

}  // namespace
}  // namespace brrr::control

int main(int argc, char** argv) {
  // A closed stdin, stdout or stderr got /dev/null before any library opened a descriptor
  // (standard_descriptors.h): no gRPC connection has one of their numbers, so the output
  // cannot go into one.
  if (absl::Status kept = brrr::StandardDescriptorsAtStart(); !kept.ok()) {
    std::fprintf(stderr, "brrrctl: %s\n", std::string(kept.message()).c_str());
    return static_cast<int>(brrr::control::ExitCode::kUsage);
  }
  // Then: the threads gRPC starts must inherit the blocked SIGINT/SIGTERM.
  brrr::control::Interrupts interrupts;
  int code = brrr::control::Run(argc, argv, interrupts);
  // Whatever the command did, output that did not get out is what a script must hear of.
  if (absl::Status written = brrr::control::OutputStatus(); !written.ok()) {
    std::fprintf(stderr, "brrrctl: %s (the output is incomplete)\n", std::string(written.message()).c_str());
    return static_cast<int>(brrr::control::ExitCode::kOutputFailed);
  }
  return code;
}
