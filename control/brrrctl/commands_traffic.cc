// Commands that control the traffic the server takes: throttle, drain.
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "control/admin/request_checks.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_run.h"
#include "control/brrrctl/text_table.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;

std::string ByteRateText(uint64_t rate) { return rate == 0 ? "unlimited" : absl::StrCat(FormatQuantity(rate), "B/s"); }
std::string RateText(uint64_t rate) { return rate == 0 ? "unlimited" : absl::StrCat(FormatQuantity(rate), "/s"); }

std::string ThrottleTable(const admin::Throttle& t) {
  TextTable table;
  table.AddRow({"conn_rate", ByteRateText(t.bytes_per_second_per_connection())});
  table.AddRow({"total_rate", ByteRateText(t.bytes_per_second_total())});
  table.AddRow({"accept_rate", RateText(t.accepts_per_second())});
  table.AddRow({"max_connections", absl::StrCat(t.max_connections())});
  table.AddRow({"accepting", t.draining() ? "no (draining)" : t.accepting_paused() ? "paused" : "yes"});
  return table.Render();
}

Outcome RunThrottle(Invocation& invocation) {
  if (invocation.given("pause") && invocation.given("resume")) {
    return Outcome::Usage("throttle: give --pause or --resume, not both");
  }
  admin::SetThrottleRequest request;
  bool change = false;
  if (invocation.given("conn_rate")) {
    request.set_bytes_per_second_per_connection(absl::GetFlag(FLAGS_conn_rate).value);
    change = true;
  }
  if (invocation.given("total_rate")) {
    request.set_bytes_per_second_total(absl::GetFlag(FLAGS_total_rate).value);
    change = true;
  }
  if (invocation.given("accept_rate")) {
    request.set_accepts_per_second(absl::GetFlag(FLAGS_accept_rate).value);
    change = true;
  }
  if (invocation.given("max_connections")) {
    request.set_max_connections(absl::GetFlag(FLAGS_max_connections).value);
    change = true;
  }
  if (invocation.given("pause")) {
    request.set_accepting_paused(absl::GetFlag(FLAGS_pause));
    change = true;
  }
  if (invocation.given("resume")) {
    request.set_accepting_paused(!absl::GetFlag(FLAGS_resume));
    change = true;
  }

  // The server's own check, before any call: a value outside the ranges --help gives is a usage
  // error (exit 2), said in the flags' names and as the user wrote the value ("unlimited (0)").
  if (absl::StatusOr<server::ThrottleChange> checked = CheckSetThrottle(request); !checked.ok()) {
    std::vector<std::pair<std::string, std::string>> as_given;
    for (const auto& [field, flag, quantity] :
         {std::tuple{"bytes_per_second_per_connection", "conn_rate", absl::GetFlag(FLAGS_conn_rate)},
          std::tuple{"bytes_per_second_total", "total_rate", absl::GetFlag(FLAGS_total_rate)},
          std::tuple{"accepts_per_second", "accept_rate", absl::GetFlag(FLAGS_accept_rate)},
          std::tuple{"max_connections", "max_connections", absl::GetFlag(FLAGS_max_connections)}}) {
      const std::string number = absl::StrCat(quantity.value);
      const bool same = quantity.text.empty() || quantity.text == number;
      as_given.emplace_back(
          absl::StrCat(field, "=", number, " is"),
          absl::StrCat("--", flag, "=", same ? number : absl::StrCat(quantity.text, " (", number, ")"), " is"));
    }
    return Outcome::Usage(absl::StrCat("throttle: ", absl::StrReplaceAll(checked.status().message(), as_given)));
  }
  admin::Throttle throttle;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return change ? invocation.client.admin().SetThrottle(context, request, &throttle)
                  : invocation.client.admin().GetThrottle(context, admin::GetThrottleRequest(), &throttle);
  });
  if (!outcome.ok()) return outcome;
  invocation.out.Result(throttle, ThrottleTable(throttle));
  return Outcome::Ok();
}

Outcome RunDrain(Invocation& invocation) {
  admin::DrainResponse response;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().Drain(context, admin::DrainRequest(), &response);
  });
  if (!outcome.ok()) return outcome;
  invocation.out.Result(response,
                        response.already_draining()
                            ? absl::StrCat("already draining: ", response.connections_open(), " connections open\n")
                            : absl::StrCat("draining: ", response.connections_open(),
                                           " connections open, and clients still in the listen backlog "
                                           "are accepted and served too; the server exits once they "
                                           "finish\n"));
  return Outcome::Ok();
}

// Drain on several targets: every one, but only with --yes. A drain cannot be taken back (each
// server exits once its connections finish), so a targets file given by mistake must not stop
// a whole fleet: without --yes it is a usage error, before any call.
FleetRun DrainOnEachTarget() {
  FleetRun each = OnEachTarget(RunDrain);
  return [each](FleetInvocation& invocation) {
    if (invocation.fleet.size() > 1 && !absl::GetFlag(FLAGS_yes)) {
      return Outcome::Usage(absl::StrCat("drain: ", invocation.fleet.size(),
                                         " targets given, and a drain stops each of them for good (it exits once its "
                                         "connections finish): pass --yes to drain them all; none was drained"));
    }
    return each(invocation);
  };
}

}  // namespace

std::string ThrottleText(const admin::Throttle& t) {
  return absl::StrCat("conn_rate ", ByteRateText(t.bytes_per_second_per_connection()), ", total_rate ",
                      ByteRateText(t.bytes_per_second_total()), ", accept_rate ", RateText(t.accepts_per_second()),
                      ", max_connections ", t.max_connections(),
                      t.draining()           ? ", draining (accepting nothing)"
                      : t.accepting_paused() ? ", accepting paused"
                                             : "");
}

std::vector<Command> TrafficCommands() {
  return {
      Command{
          .name = "throttle",
          .summary = "show the throttles, or change the ones given (the others stay)",
          .details = "Without flags: GetThrottle. With any: SetThrottle, which changes only what is given; both\n"
                     "print every throttle in force. Rates take a plain number or a decimal suffix (K = 1000,\n"
                     "M, G, T; a trailing B or /s is allowed): --conn_rate=10KB, --total_rate=1.5M. 0 (or\n"
                     "`unlimited`) lifts a rate.\n"
                     "  brrrctl throttle --conn_rate=10KB --max_connections=1000\n"
                     "  brrrctl throttle --pause         # new connections wait in the kernel's backlog",
          .changes_server = true,
          .flags = {{"conn_rate", "RATE", "bytes per second each connection may send: 0, or 1K to 100G"},
                    {"total_rate", "RATE", "bytes per second all connections together may send: 0, or 1K to 100G"},
                    {"accept_rate", "RATE", "new connections per second, over all loops: 0, or 1 to 1M"},
                    {"max_connections", "N", "connections open at once, over all loops: 1 to 10M (lowering it\n"
                                             "closes no open connection)"},
                    {"pause", "", "stop accepting (connections wait in the kernel's backlog)"},
                    {"resume", "", "accept again"}},
          .run = RunThrottle,
          .run_fleet = OnEachTarget(RunThrottle),
      },
      Command{
          .name = "drain",
          .summary = "stop accepting, let connections finish, then the server exits 0",
          .details = "Drain. The reply comes at once; from then on `brrrctl health` exits 5 (NOT_SERVING), and\n"
                     "the server exits with status 0 once every connection has finished. On several targets\n"
                     "it drains them all only with --yes (else a usage error, and none is drained).\n"
                     "  brrrctl --targets_file=fleet.txt drain --yes",
          .changes_server = true,
          .flags = {{"yes", "", "with several targets: drain every one of them"}},
          .run = RunDrain,
          .run_fleet = DrainOnEachTarget(),
      },
  };
}

}  // namespace brrr::control
