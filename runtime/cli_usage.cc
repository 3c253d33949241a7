#include "runtime/cli_usage.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace brrr {

void SetUsage(absl::string_view usage) {
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view file) { return !absl::StrContains(file, "absl/"); };
  config.contains_help_flags = ours;
  config.contains_helpshort_flags = ours;
  absl::SetFlagsUsageConfig(config);
}

void ParseFlagsOnly(int argc, char** argv, absl::string_view program, int exit_code) {
  std::vector<char*> words = absl::ParseCommandLine(argc, argv);
  if (words.size() <= 1) return;  // words[0] is the program
  std::fprintf(stderr,
               "%.*s: unexpected argument \"%s\": this program takes flags only (--name=value); see --help\n",
               static_cast<int>(program.size()), program.data(), words[1]);
  std::exit(exit_code);
}

}  // namespace brrr
