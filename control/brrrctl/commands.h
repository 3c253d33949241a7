// commands.h: brrrctl's commands, as one table: each entry has the command's name, its
// arguments, its help, the flags it takes, whether it changes the server, and the function
// that runs it. The table is split by area, one file each: commands_stats.cc (info, stats,
// watch, health), commands_sockets.cc (sockets, close), commands_traffic.cc (throttle,
// drain), commands_injections.cc (inject, injections, cancel), commands_stalls.cc (stalls,
// stall-threshold), commands_top.cc (top).
//
//   const Command* command = FindCommand("stats");
//   Outcome outcome = command->run(invocation);
//
// A command reads its flags with absl::GetFlag and Invocation::given; it writes results to
// Invocation::out and returns how it ended. Several targets (--target=A,B): Command::run_fleet,
// made with the runners of fleet_run.h from the same `run`.
//
// Threads: a command runs on one thread: main's, or with several targets a thread per target
// (fleet_run.h); it touches only its Invocation and reads flags, which are set before.
#ifndef BRRR_CONTROL_COMMANDS_H_
#define BRRR_CONTROL_COMMANDS_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "control/brrrctl/admin_client.h"
#include "control/brrrctl/command_line.h"
#include "control/brrrctl/interrupts.h"
#include "control/brrrctl/outcome.h"
#include "control/brrrctl/output.h"

namespace brrr::control {

struct FleetInvocation;  // fleet_run.h

// What a command runs with.
struct Invocation {
  // Positional arguments after the command's name.
  std::vector<std::string> args;
  const CommandLine& line;
  AdminClient& client;
  Output& out;
  Interrupts& interrupts;

  bool given(absl::string_view flag) const { return line.given(flag); }
};

// The whole numbers a flag takes for one command, where that is less than its type holds.
struct WholeRange {
  uint64_t min = 0;
  uint64_t max = 0;
};

// A flag as one command uses it.
struct FlagUse {
  std::string name;   // without dashes
  std::string value;  // placeholder for help, e.g. "DURATION"; empty for bools
  std::string help;   // what it means for this command, with its default (and `range`, if set)
  // A whole-number flag's range for this command: checked before any call (CheckFlagRanges),
  // and named for a value that does not parse (ExpectedFlagValue). Unset: what its type holds.
  std::optional<WholeRange> range;
};

struct Command {
  std::string name;
  // After the name in the synopsis, e.g. "ID" or "KIND --duration=DURATION".
  std::string arguments;
  // One line, for the command list.
  std::string summary;
  // Paragraphs for `brrrctl help NAME` (may be empty).
  std::string details;
  // It changes the server's state (help marks it).
  bool changes_server = false;
  // How many positional arguments it takes.
  size_t min_args = 0;
  size_t max_args = 0;
  std::vector<FlagUse> flags;
  std::function<Outcome(Invocation&)> run;
  // How it runs on several targets (fleet_run.h: OnEachTarget, StreamOnEachTarget...); unset:
  // it takes one target only, and several are a usage error.
  std::function<Outcome(FleetInvocation&)> run_fleet;

  bool takes(absl::string_view flag) const;
  // How it uses the flag called `name`; null when it does not take it.
  const FlagUse* flag(absl::string_view name) const;
};

// Every command, in the order help lists them.
const std::vector<Command>& AllCommands();
// The command called `name`, or null.
const Command* FindCommand(absl::string_view name);

// The areas' parts of the table.
std::vector<Command> StatsCommands();
std::vector<Command> SocketsCommands();
std::vector<Command> TrafficCommands();
std::vector<Command> InjectionsCommands();
std::vector<Command> StallsCommands();
std::vector<Command> TopCommands();

// What a value of `flag` must be for `command`, for the message on a value its type cannot hold:
// "expected a whole number from 1 to 100000" for a flag with a range; empty otherwise.
std::string ExpectedFlagValue(const Command& command, absl::string_view flag);

// The flags given on `line` outside the range `command` gives them (FlagUse::range): a usage
// error for the first, "--limit=100001: must be from 1 to 100000"; kOk when none is.
Outcome CheckFlagRanges(const Command& command, const CommandLine& line);

// --loop given with no loop in it (--loop=, or an unset shell variable after --loop): a usage
// error for the first, "stats --loop is empty: name a loop (--loop=N[,N...], from 0) or leave
// --loop out"; kOk when --loop names loops or is not given. The flag's type reads "" as no loop
// named (its default must read back), which commands take as every loop (close: whichever has
// the socket), as when --loop is left out: an empty value said so without a word.
Outcome CheckLoopFlag(const Command& command, const CommandLine& line);

// Helpers for commands.

// The loops of --loop, checked against the server's loop count. Errors: kServerError,
// "NOT_FOUND: no loop N: ..." for a loop that does not exist, as the server answers a call
// that names one.
Outcome CheckLoops(const std::vector<uint32_t>& loops, int loop_count);

// The throttles on one line: "conn_rate 10KB/s, total_rate unlimited, ...". (commands_traffic.cc)
std::string ThrottleText(const brrr::admin::v1::Throttle& throttle);

// Keeps the loops of `stats` that `loops` lists (all when it is empty).
void KeepLoops(const std::vector<uint32_t>& loops, brrr::admin::v1::Stats* stats);

// Reads a server stream until it ends, `on_message` returns false, the output fails
// (OutputStatus), or SIGINT/SIGTERM; the last three end it cleanly (kOk). Waits (--timeout)
// for a connection first. A stream opened on that connection reached the server: its end is
// "the stream ... ended" (exit 1), even before its first message (AdminClient::Explain).
template <typename Message>
Outcome ReadStream(Invocation& invocation,
                   const std::function<std::unique_ptr<grpc::ClientReaderInterface<Message>>(grpc::ClientContext*)>& open,
                   const std::function<bool(const Message&)>& on_message) {
  if (Outcome connected = invocation.client.AwaitConnection(); !connected.ok()) return connected;
  std::unique_ptr<grpc::ClientContext> context = invocation.client.StreamContext();
  Interrupts::Scope scope = invocation.interrupts.OnInterrupt([&context] { context->TryCancel(); });
  // Read as the call starts: a server shutting down ends the stream and closes the connection,
  // so by the time the end is read the channel no longer tells whether the call got there.
  AdminClient::StreamReach reach =
      invocation.client.connected() ? AdminClient::StreamReach::kOpened : AdminClient::StreamReach::kNone;
  std::unique_ptr<grpc::ClientReaderInterface<Message>> reader = open(context.get());
  Message message;
  bool stopped = false;
  while (reader->Read(&message)) {
    reach = AdminClient::StreamReach::kDelivered;
    // Output that cannot be written ends the stream (main says why: output.h).
    if (!on_message(message) || !OutputStatus().ok()) {
      stopped = true;
      context->TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (stopped || invocation.interrupts.interrupted()) return Outcome::Ok();
  return invocation.client.Explain(status, reach);
}

}  // namespace brrr::control

#endif  // BRRR_CONTROL_COMMANDS_H_
