// Commands that inject tasks into the loops: inject, injections (list), cancel.
#include <algorithm>
#include <optional>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "control/admin/injection_spec.h"
#include "control/admin/request_checks.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_run.h"
#include "control/brrrctl/message_text.h"
#include "control/brrrctl/text_table.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;

// BLOCKING_SPIN <-> blocking-spin: the command line's spelling of enum values.
std::string CommandLineName(const std::string& enum_name) {
  return absl::StrReplaceAll(absl::AsciiStrToLower(enum_name), {{"_", "-"}});
}

std::optional<admin::InjectionKind> ParseKind(const std::string& text) {
  admin::InjectionKind kind;
  std::string name = absl::StrReplaceAll(absl::AsciiStrToUpper(text), {{"-", "_"}});
  if (!admin::InjectionKind_Parse(name, &kind) || kind == admin::INJECTION_KIND_UNSPECIFIED) return std::nullopt;
  return kind;
}

TextTable InjectionTable() {
  TextTable table({"ID", "KIND", "DURATION", "COUNT", "INTERVAL", "LOOPS", "STATE", "STARTED", "FINISHED", "AT"});
  table.AlignRight(0).AlignRight(2).AlignRight(3).AlignRight(4).AlignRight(7).AlignRight(8).AlignRight(9);
  return table;
}

void AddInjection(const admin::Injection& i, TextTable* table) {
  table->AddRow({absl::StrCat(i.id()), CommandLineName(admin::InjectionKind_Name(i.kind())),
                 FormatMilliseconds(i.duration_ms()), absl::StrCat(i.count()), FormatMilliseconds(i.interval_ms()),
                 i.loops().empty() ? "all" : absl::StrJoin(i.loops(), ","),
                 absl::AsciiStrToLower(admin::Injection::State_Name(i.state())), absl::StrCat(i.runs_started()),
                 absl::StrCat(i.runs_finished()), FormatMilliseconds(i.injected_at_uptime_seconds() * 1000)});
}

Outcome PrintInjection(Invocation& invocation, const admin::Injection& injection) {
  TextTable table = InjectionTable();
  AddInjection(injection, &table);
  invocation.out.Result(injection, table.Render());
  return Outcome::Ok();
}

Outcome RunInject(Invocation& invocation) {
  admin::InjectTaskRequest request;
  std::optional<admin::InjectionKind> kind = ParseKind(invocation.args[0]);
  if (!kind.has_value()) {
    return Outcome::Usage(absl::StrCat("inject ", invocation.args[0],
                                       ": KIND is blocking-spin, blocking-sleep or nonblocking-sleep"));
  }
  request.set_kind(*kind);
  if (!invocation.given("duration")) return Outcome::Usage("inject needs --duration (e.g. --duration=300ms)");
  // The ranges the server has for every caller, said in the flags' own terms (the server's
  // check below names the request's fields, in milliseconds): a flag's value as given, and the
  // range its help states.
  const absl::Duration duration_flag = absl::GetFlag(FLAGS_duration);
  if (*kind == admin::NONBLOCKING_SLEEP && duration_flag > absl::FromChrono(kMaxNonblockingDuration)) {
    return Outcome::Usage(absl::StrCat("--duration=", absl::FormatDuration(duration_flag),
                                       ": a nonblocking-sleep lasts 1ms to ",
                                       absl::FormatDuration(absl::FromChrono(kMaxNonblockingDuration))));
  }
  absl::StatusOr<uint32_t> duration = WholeMilliseconds(duration_flag);
  if (!duration.ok()) return Outcome::Usage(absl::StrCat("--duration=", duration.status().message()));
  if (*duration == 0) return Outcome::Usage("--duration=0: an injection lasts 1ms at the least");
  request.set_duration_ms(*duration);
  const absl::Duration interval_flag = absl::GetFlag(FLAGS_interval);
  if (interval_flag > absl::FromChrono(kMaxInjectionInterval)) {
    return Outcome::Usage(absl::StrCat("--interval=", absl::FormatDuration(interval_flag), ": must be from 0 to ",
                                       absl::FormatDuration(absl::FromChrono(kMaxInjectionInterval))));
  }
  absl::StatusOr<uint32_t> interval = WholeMilliseconds(interval_flag);
  if (!interval.ok()) return Outcome::Usage(absl::StrCat("--interval=", interval.status().message()));
  request.set_interval_ms(*interval);
  // Given, from 1 to kMaxInjectionCount: the table's range, checked before. Not given: 0, which
  // the API reads as 1.
  request.set_count(absl::GetFlag(FLAGS_count));
  // The server's own check of the ranges that are the same on every server, before any call: a
  // usage error (exit 2), not a refusal. The longest blocking duration (--admin_max_block) and
  // the loops are the server's to check.
  if (absl::StatusOr<InjectionSpec> checked = CheckInjectTask(request, {.loops = 1, .max_block = Duration::max()});
      !checked.ok()) {
    return Outcome::Usage(absl::StrCat("inject: ", checked.status().message()));
  }
  for (uint32_t loop : absl::GetFlag(FLAGS_loop).loops) request.add_loops(loop);

  admin::Injection injection;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().InjectTask(context, request, &injection);
  });
  if (!outcome.ok()) return outcome;
  return PrintInjection(invocation, injection);
}

Outcome RunInjections(Invocation& invocation) {
  admin::ListInjectionsResponse response;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().ListInjections(context, admin::ListInjectionsRequest(), &response);
  });
  if (!outcome.ok()) return outcome;
  TextTable table = InjectionTable();
  for (const admin::Injection& i : response.injections()) AddInjection(i, &table);
  invocation.out.Result(response, table.Render());
  return Outcome::Ok();
}

Outcome RunCancel(Invocation& invocation) {
  admin::CancelInjectionRequest request;
  uint64_t id = 0;
  // Ids start at 1 (0 is no injection's): refused here as any bad value is, before a call.
  if (!absl::SimpleAtoi(invocation.args[0], &id) || id == 0) {
    return Outcome::Usage(absl::StrCat("cancel ", invocation.args[0], ": ID must be an injection id (see brrrctl injections)"));
  }
  request.set_id(id);
  admin::Injection injection;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().CancelInjection(context, request, &injection);
  });
  if (!outcome.ok()) return outcome;
  return PrintInjection(invocation, injection);
}

}  // namespace

std::vector<Command> InjectionsCommands() {
  return {
      Command{
          .name = "inject",
          .arguments = "KIND --duration=DURATION",
          .summary = "run a blocking or non-blocking task on loops (to see what blocking does)",
          .details = "InjectTask. KIND:\n"
                     "  blocking-spin      busy-waits on the loop thread: the loop runs nothing else meanwhile\n"
                     "  blocking-sleep     sleeps on the loop thread (time.sleep in a coroutine): same effect\n"
                     "  nonblocking-sleep  a coroutine awaiting a sleep (asyncio.sleep): the loop goes on\n"
                     "Prints the injection; its id is what `brrrctl cancel` takes.\n"
                     "  brrrctl inject blocking-spin --duration=300ms --count=5 --interval=1s --loop=0",
          .changes_server = true,
          .min_args = 1,
          .max_args = 1,
          .flags = {{"duration", "DURATION", "how long each run lasts (required): blocking kinds 1ms to the\n"
                                             "server's --admin_max_block (default 10s), nonblocking-sleep up to 1h"},
                    {"count", "N", "runs per loop, 1 to 1000000 (default 1)", WholeRange{1, kMaxInjectionCount}},
                    {"interval", "DURATION", "from the start of one run to the start of the next: 0 to 1h\n"
                                             "(default 0)"},
                    {"loop", "N[,N...]", "the loops to run on (default: every loop)"}},
          .run = RunInject,
          .run_fleet = OnEachTarget(RunInject),
      },
      Command{
          .name = "injections",
          .summary = "injections running and the last finished ones, newest first",
          .details = "ListInjections: the active injections and the last 100 finished or cancelled.",
          .run = RunInjections,
          .run_fleet = OnEachTarget(RunInjections),
      },
      Command{
          .name = "cancel",
          .arguments = "ID",
          .summary = "stop an injection (a blocking run in progress ends early)",
          .details = "CancelInjection. Runs not started never start. Prints the injection as it is now.",
          .changes_server = true,
          .min_args = 1,
          .max_args = 1,
          .run = RunCancel,
          // One target: injection ids are each server's own.
      },
  };
}

}  // namespace brrr::control
