// cli_usage.h: --help for brrr's command-line programs.
//
// absl's --help lists only flags from a file named like the program; brrr's programs keep
// their flags in main.cc files, so ParseFlagsOnly makes --help (and --helpshort) list every
// flag defined in brrr's own sources, after the description SetUsage gave.
//
//   brrr::SetUsage("brrr-echo: the echo server...\n\nUsage: brrr-echo [--port=5000] ...");
//   brrr::ParseFlagsOnly(argc, argv, "brrr-echo", /*exit_code=*/1);
#ifndef BRRR_RUNTIME_CLI_USAGE_H_
#define BRRR_RUNTIME_CLI_USAGE_H_

#include "absl/strings/string_view.h"

namespace brrr {

// The program's description, which --help prints first.
void SetUsage(absl::string_view usage);

// absl::ParseCommandLine for a program that takes flags only: a word that is not a flag
// (`brrr-echo 6000`, where `--port 6000` was meant) is refused on stderr, naming `program`,
// and the process exits with `exit_code`, instead of the word being ignored. A malformed or
// unknown flag (absl says why) exits with `exit_code` too, not absl's 1, and so does a
// --flagfile that names a directory (absl read it as empty). --help (and --helpfull,
// --helpshort...) exits 0 once printed, and --version prints "PROGRAM VERSION"
// (runtime/version.h) and exits 0; beside a flag that does not exist, each is a usage error
// (`exit_code`), as brrrctl's are.
// --help and --version that cannot write what they print (a full disk, an I/O error) say so
// and exit kOutputFailedExitCode instead of 0.
void ParseFlagsOnly(int argc, char** argv, absl::string_view program, int exit_code);

// What each of brrr's programs exits with when what it printed to stdout could not all be
// written (a full disk, an I/O error): brrrctl's code for it too. A closed pipe ends a program
// by SIGPIPE instead, as it does any filter.
inline constexpr int kOutputFailedExitCode = 6;

// For a program's last line, `return ExitCodeAfterStdout("brrr-backends", code);`: flushes
// stdout and returns `code` when all that was printed there was written; else says so on stderr
// ("PROGRAM: cannot write to standard output: REASON") and returns kOutputFailedExitCode, or
// `code` when that already says the program failed (its own reason is on stderr too).
int ExitCodeAfterStdout(absl::string_view program, int code);

}  // namespace brrr

#endif  // BRRR_RUNTIME_CLI_USAGE_H_
