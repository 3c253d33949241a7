// cli_usage.h: --help for brrr's command-line programs.
//
// absl's --help lists only flags from a file named like the program; brrr's programs keep
// their flags in main.cc files, so this makes --help (and --helpshort) list every flag
// defined in brrr's own sources, after the program's description.
//
//   brrr::SetUsage("brrr-echo: the echo server...\n\nUsage: brrr-echo [--port=5000] ...");
//   absl::ParseCommandLine(argc, argv);
#ifndef BRRR_RUNTIME_CLI_USAGE_H_
#define BRRR_RUNTIME_CLI_USAGE_H_

#include "absl/strings/string_view.h"

namespace brrr {

void SetUsage(absl::string_view usage);

}  // namespace brrr

#endif  // BRRR_RUNTIME_CLI_USAGE_H_
