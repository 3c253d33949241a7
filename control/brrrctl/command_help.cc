#include "control/brrrctl/command_help.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "control/brrrctl/text_table.h"

namespace brrr::control {
namespace {

// "  --name=VALUE   help", with the help's further lines under its first.
std::string FlagsText(const std::vector<FlagUse>& flags) {
  std::vector<std::string> names;
  size_t width = 0;
  for (const FlagUse& f : flags) {
    names.push_back(absl::StrCat("--", f.name, f.value.empty() ? "" : "=", f.value));
    width = std::max(width, names.back().size());
  }
  std::string text;
  const std::string indent(2 + width + 3, ' ');
  for (size_t i = 0; i < flags.size(); ++i) {
    absl::StrAppend(&text, "  ", names[i], std::string(width - names[i].size() + 3, ' '),
                    absl::StrReplaceAll(flags[i].help, {{"\n", "\n" + indent}}), "\n");
  }
  return text;
}

std::string Synopsis(const Command& c) {
  std::string text = absl::StrCat("brrrctl ", c.name);
  if (!c.arguments.empty()) absl::StrAppend(&text, " ", c.arguments);
  for (const FlagUse& f : c.flags) {
    if (absl::StrContains(c.arguments, absl::StrCat("--", f.name))) continue;  // required, already shown
    absl::StrAppend(&text, " [--", f.name, f.value.empty() ? "" : "=", f.value, "]");
  }
  return text;
}

}  // namespace

const std::vector<FlagUse>& GlobalFlags() {
  static const std::vector<FlagUse>* const flags = new std::vector<FlagUse>{
      {"target", "HOST:PORT[,...]", "the admin plane, brrr-echo --admin_port (default 127.0.0.1:5001);\n"
                                    "several, comma-separated: the command runs on each (see Several targets)"},
      {"targets_file", "PATH", "the admin planes, one HOST:PORT per line (blank lines and # comments\n"
                               "are ignored); instead of --target. An address given twice, in either,\n"
                               "is a usage error (exit 2); so are more than 1024 targets"},
      {"token_file", "PATH", "a file holding the admin token (brrr-echo --admin_token_file); sent as\n"
                             "\"authorization: Bearer <token>\" on every call"},
      {"json", "", "one JSON object per line instead of text (format: brrrctl --help)"},
      {"timeout", "DURATION", "deadline of each call, and how long a stream waits to connect (default 5s)"},
  };
  return *flags;
}

std::string GeneralHelp() {
  TextTable commands;
  for (const Command& c : AllCommands()) {
    commands.AddRow({absl::StrCat("  ", c.name, c.changes_server ? " *" : ""),
                     absl::StrCat(c.summary, c.run_fleet ? "" : " (one target)")});
  }
  commands.AddRow({"  help [COMMAND]", "this help, or a command's (also: brrrctl COMMAND --help)"});
  return absl::StrCat(
      "brrrctl: inspects and steers a running brrr-echo through its gRPC admin plane\n"
      "(brrr.admin.v1.Admin and grpc.health.v1; start brrr-echo with --admin_port=5001).\n"
      "\n"
      "Usage: brrrctl [--target=HOST:PORT[,...] | --targets_file=PATH] [--token_file=PATH] [--json] [--timeout=5s]\n"
      "               COMMAND [ARGS] [FLAGS]\n"
      "Flags may come before or after the command; `--` ends the flags. brrrctl --version prints\n"
      "brrrctl's own version (a server's: brrrctl info).\n"
      "\n"
      "Commands (* can change the server):\n",
      commands.Render(),
      "\n"
      "Global flags:\n",
      FlagsText(GlobalFlags()),
      "\n"
      "Values:\n"
      "  DURATION  a number with a unit: 300ms, 2s, 1m30s, 1h (ns, us, ms, s, m, h)\n"
      "  N         a whole number in plain digits: 5, 10000 (throttle's --max_connections takes a\n"
      "            DECIMAL suffix too, as a RATE: 10K)\n"
      "  RATE      a plain number or one with a DECIMAL suffix: K = 1000, M = 10^6, G = 10^9, T = 10^12,\n"
      "            optionally followed by B and/or /s: 500, 10K, 10KB, 1.5M, 2GB/s; 0 or `unlimited`\n"
      "            lifts a rate. Binary suffixes (KiB) are refused.\n"
      "\n"
      "JSON (--json): exactly one object per line, flushed at once (streams: one per message). Field\n"
      "names are those of admin.proto (snake_case); every field is always present, zeros included;\n"
      "64-bit integers are numbers (exact in jq up to 2^53), enums are their names. An error stays\n"
      "text on stderr with its exit code, stdout empty (several targets: a JSON line each, below).\n"
      "  brrrctl stats --json | jq '.total.connections_active'\n"
      "  brrrctl watch --json --interval=1s | jq -c '{t: .uptime_seconds, conns: .total.connections_active}'\n"
      "\n"
      "Several targets (--target=A,B,C or --targets_file): every command but those marked \"one target\"\n"
      "runs on every target at once (one unreachable target costs one --timeout, not one each), and\n"
      "the results print in the order the targets were given; a target that fails does not stop the\n"
      "others. Text: a line \"== HOST:PORT ==\" per target, then its usual output, or its error as\n"
      "\"error (exit N): message\". info, stats and sockets end with \"== total: M of N targets\n"
      "answering ==\" and the total over the targets that answered: stats sums each figure as its\n"
      "figure list says (counters and levels summed, maxima the largest, a setting the value every\n"
      "loop has, else 0 as in one server's total, said under it; percentiles cannot be added and\n"
      "are left out, \"-\"), sockets counts sockets, read set, write set and queued bytes, info the\n"
      "loops and listening addresses. watch prints per sample a line per target and a total line,\n"
      "without waiting for a target that has sent nothing for two intervals (at least 2s; its line\n"
      "is \"-\" until it sends again); stalls prefixes each line with \"[HOST:PORT] \". With --json,\n"
      "one object per line per target, then the total's:\n"
      "  {\"target\":\"HOST:PORT\",\"result\":{...the object one target prints...}}\n"
      "  {\"target\":\"HOST:PORT\",\"error\":{\"exit_code\":3,\"message\":\"cannot reach ...\"}}\n"
      "  {\"total\":{\"targets\":3,\"answering\":2,...}}   (stats: \"stats\" holds the summed LoopStats,\n"
      "                                                 left-out fields null, named in \"left_out\")\n"
      "  brrrctl --targets_file=fleet.txt stats --json | jq 'select(.total) | .total.stats.bytes_in'\n"
      "The exit code is the worst of the targets', in this order (best first): 0 ok, 5 not serving,\n"
      "1 server error, 4 unauthenticated, 3 unreachable; a usage error (2) is found before any call.\n"
      "\n"
      "Exit codes:\n"
      "  0  success; streams (watch, stalls) also after --count messages or on SIGINT/SIGTERM\n"
      "  1  the server answered with an error; stderr says \"brrrctl: CODE: message\"\n"
      "     (e.g. INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED from an older server); a stream (watch,\n"
      "     stalls) the server ended, before its first message too: \"the stream from ... ended\"\n"
      "  2  usage: unknown command or flag, a bad value (also one outside the range a command's help\n"
      "     gives: checked before any call), a missing or empty --token_file, or a directory\n"
      "  3  cannot reach the admin plane at --target (UNAVAILABLE, DEADLINE_EXCEEDED before connecting);\n"
      "     top: a target it could not reach at any of its polls\n"
      "  4  UNAUTHENTICATED: the server wants a token (--token_file), or another one\n"
      "  5  health: the server answered but is not SERVING (it is draining, for one)\n"
      "  6  the output could not be written (standard output: a full disk, an I/O error); stderr\n"
      "     says why, a stream stops there, and 6 replaces whatever the command would have exited with\n"
      "  Several targets: the worst of theirs, in the order under \"Several targets\".\n"
      "  SIGINT/SIGTERM outside a stream end brrrctl as usual (status 128 + signal); so does SIGPIPE\n"
      "  when the reader of a pipe has gone (141 in a shell).\n");
}

std::string CommandHelp(const Command& c) {
  std::string text = absl::StrCat("Usage: ", Synopsis(c), "\n\n", c.summary, "\n");
  if (!c.details.empty()) absl::StrAppend(&text, "\n", c.details, "\n");
  if (c.changes_server) absl::StrAppend(&text, "\nThis command can change the server.\n");
  if (!c.run_fleet) absl::StrAppend(&text, "\nThis command takes one target.\n");
  if (!c.flags.empty()) absl::StrAppend(&text, "\nFlags:\n", FlagsText(c.flags));
  absl::StrAppend(&text, "\nGlobal flags:\n", FlagsText(GlobalFlags()),
                  "\nExit codes and value syntax: brrrctl --help\n");
  return text;
}

std::string UsageHint(const Command* command) {
  if (command == nullptr) return "Run 'brrrctl --help' for usage.";
  return absl::StrCat("Usage: ", Synopsis(*command), "\nRun 'brrrctl help ", command->name, "' for more.");
}

}  // namespace brrr::control
