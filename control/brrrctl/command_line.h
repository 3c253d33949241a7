// command_line.h: splits a kubectl-style command line into flags and positional arguments,
// and sets the flags through absl's flag registry.
//
//   absl::StatusOr<CommandLine> line = CommandLine::Parse(argc, argv, {"json", "target", "loop"});
//   if (!line.ok()) ...                                // usage error: exit 2
//   line->args;                                       // {"stats"}
//   line->given("loop");                              // --loop was on the command line
//
// Flags may come before, between or after positional arguments; "--" ends the flags. Forms:
// --name=value, --name value (not for bools), --bool, --nobool, and the same with one dash.
// --help and -h set `help`; --version sets `version`.
//
// Why not absl::ParseCommandLine: it takes flags anywhere too, but on an unknown flag or a bad
// value it prints its own message and exits with status 1, and its --help exits 1; brrrctl
// promises exit 2 for usage errors and 0 for help. The flags themselves stay ordinary
// ABSL_FLAGs (types, defaults, parsing).
//
// Threads: Parse sets global flags: call it once, from main, before other threads read them.
#ifndef BRRR_CONTROL_COMMAND_LINE_H_
#define BRRR_CONTROL_COMMAND_LINE_H_

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace brrr::control {

struct CommandLine {
  // The positional arguments, in order.
  std::vector<std::string> args;
  // Names of the flags given (without dashes).
  std::set<std::string, std::less<>> flags;
  // --help or -h was given.
  bool help = false;
  // --version was given.
  bool version = false;

  bool given(absl::string_view flag) const { return flags.find(flag) != flags.end(); }

  // What a value of `flag` must be on this command line, for the message on one its type does
  // not parse: "expected a whole number from 1 to 100000", the range of the command in
  // `line.args`; empty: what the type takes. It sees every positional argument (a flag may
  // come before the command it is for).
  using ExpectedFor = std::function<std::string(const CommandLine& line, absl::string_view flag)>;

  // Parses argv[1..]. `known`: the flags this program takes; each must be an ABSL_FLAG linked
  // into the program. Errors (InvalidArgument), as a message for the user: a flag that is not
  // known, a flag without its value, a value the flag's type does not parse (values are parsed
  // once the whole line is read, so that error comes after the others).
  static absl::StatusOr<CommandLine> Parse(int argc, const char* const* argv,
                                           const std::set<std::string, std::less<>>& known,
                                           const ExpectedFor& expected = nullptr);
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_COMMAND_LINE_H_
