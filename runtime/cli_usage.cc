#include "runtime/cli_usage.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/version.h"

namespace brrr {
namespace {

// What the process exits with while absl parses its command line, -1 outside the parse.
// absl::ParseCommandLine ends the process itself with std::exit(1) after a malformed or unknown
// flag, and after printing --help; an exit handler turns that into this code.
std::atomic<int> exit_code_while_parsing{-1};

// More than the longest --helpfull (brrr-echo's, about 8 KB).
constexpr size_t kHelpBufferBytes = 64 * 1024;

// The program being parsed, for the exit handler's message (never destroyed: exit handlers run
// while static objects are being destroyed).
std::string& ProgramBeingParsed() {
  static std::string* const program = new std::string;
  return *program;
}

void ExitWithTheParsesCode() {
  int code = exit_code_while_parsing.load();
  if (code < 0) return;
  // --help and --version: std::cout writes into stdout's buffer (synchronised with stdio, the
  // default), so flushing stdout first keeps the errno of a failed write.
  if (code == 0) code = ExitCodeAfterStdout(ProgramBeingParsed(), code);
  std::cout.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

// --help and its kin (absl's usage flags) and --version: the program then exits 0 after
// printing them.
bool AsksForHelpOrVersion(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view word = argv[i];
    if (word == "--") break;
    if (!absl::ConsumePrefix(&word, "--") && !absl::ConsumePrefix(&word, "-")) continue;
    word = word.substr(0, word.find('='));
    for (absl::string_view help : {"help", "helpfull", "helpshort", "helppackage", "helpon", "helpmatch", "version"}) {
      if (word == help) return true;
    }
  }
  return false;
}

// absl's built-in flags: those that take a value, and switches.
constexpr absl::string_view kAbslValueFlags[] = {"flagfile", "fromenv", "tryfromenv", "undefok", "helpon", "helpmatch"};
constexpr absl::string_view kAbslSwitches[] = {"help",        "helpfull", "helpshort",
                                               "helppackage", "version",  "only_check_args"};

// The first word of the command line that names no flag ("--bogus", as typed), or "": absl
// reports it but, beside --help or --version, prints those and exits as if all was well. A
// non-bool flag given as `--name value` takes the next word as its value; `--noname` is a bool's
// `--name=false`; names in --undefok are allowed. (Only names are checked: a malformed value
// beside --help is still absl's to report.)
std::string UnknownFlag(int argc, char** argv) {
  std::vector<std::string> undefok;
  for (int i = 1; i < argc; ++i) {
    absl::string_view word = argv[i];
    if (absl::ConsumePrefix(&word, "--undefok=") || absl::ConsumePrefix(&word, "-undefok=")) {
      for (absl::string_view name : absl::StrSplit(word, ',', absl::SkipEmpty())) undefok.emplace_back(name);
    }
  }
  for (int i = 1; i < argc; ++i) {
    absl::string_view word = argv[i];
    if (word == "--") break;
    if (!absl::ConsumePrefix(&word, "--") && !absl::ConsumePrefix(&word, "-")) continue;
    const bool has_value = absl::StrContains(word, '=');
    const absl::string_view name = word.substr(0, word.find('='));
    if (name.empty() || absl::c_linear_search(undefok, name)) continue;  // "-" is a word, not a flag
    // absl's own flags, which its registry does not list (Debian's build).
    if (absl::c_linear_search(kAbslValueFlags, name)) {
      if (!has_value) ++i;  // --flagfile FILE
      continue;
    }
    if (absl::c_linear_search(kAbslSwitches, name)) continue;
    if (absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name); flag != nullptr) {
      if (!has_value && !flag->IsOfType<bool>()) ++i;  // --name value
      continue;
    }
    absl::string_view negated = name;
    if (absl::ConsumePrefix(&negated, "no")) {
      absl::CommandLineFlag* flag = absl::FindCommandLineFlag(negated);
      if (flag != nullptr && flag->IsOfType<bool>()) continue;
    }
    return std::string(argv[i]);
  }
  return "";
}

// Each file a --flagfile names that is not a file absl can read flags from (a directory reads
// as empty, so absl went on without its flags), or "".
std::string BadFlagfile(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view word = argv[i];
    if (word == "--") break;
    if (!absl::ConsumePrefix(&word, "--") && !absl::ConsumePrefix(&word, "-")) continue;
    if (!absl::ConsumePrefix(&word, "flagfile")) continue;
    absl::string_view files;
    if (absl::ConsumePrefix(&word, "=")) {
      files = word;
    } else if (word.empty() && i + 1 < argc) {
      files = argv[i + 1];
    } else {
      continue;
    }
    for (absl::string_view file : absl::StrSplit(files, ',', absl::SkipEmpty())) {
      struct stat st {};
      if (::stat(std::string(file).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return absl::StrCat("--flagfile=", file, ": is a directory, not a file of flags");
      }
    }
  }
  return "";
}

// --help lists brrr's own flags; --version says "PROGRAM VERSION" (absl's default names the
// build type). absl takes the whole configuration at once: what is not set goes back to its default.
void ConfigureUsage(absl::string_view program) {
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view file) { return !absl::StrContains(file, "absl/"); };
  config.contains_help_flags = ours;
  config.contains_helpshort_flags = ours;
  config.version_string = [name = std::string(program)] { return absl::StrCat(name, " ", kVersion, "\n"); };
  absl::SetFlagsUsageConfig(config);
}

}  // namespace

void SetUsage(absl::string_view usage) { absl::SetProgramUsageMessage(usage); }

int ExitCodeAfterStdout(absl::string_view program, int code) {
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  const int error = flush_failed ? errno : 0;
  if (!flush_failed && !std::ferror(stdout)) return code;
  // A write that failed before this flush left no errno behind: the reason is not known then.
  std::fprintf(stderr, "%.*s: cannot write to standard output%s%s\n", static_cast<int>(program.size()), program.data(),
               error != 0 ? ": " : "", error != 0 ? std::strerror(error) : "");
  return code != 0 ? code : kOutputFailedExitCode;
}

void ParseFlagsOnly(int argc, char** argv, absl::string_view program, int exit_code) {
  static const bool handler_registered = std::atexit(ExitWithTheParsesCode) == 0;
  (void)handler_registered;
  ConfigureUsage(program);
  ProgramBeingParsed() = std::string(program);
  if (std::string bad = BadFlagfile(argc, argv); !bad.empty()) {
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(), bad.c_str());
    std::exit(exit_code);
  }
  const bool help_or_version = AsksForHelpOrVersion(argc, argv);
  // Beside --help or --version, as alone, a flag that does not exist is a usage error.
  if (std::string unknown = help_or_version ? UnknownFlag(argc, argv) : ""; !unknown.empty()) {
    std::fprintf(stderr, "%.*s: unknown flag %s; see --help\n", static_cast<int>(program.size()), program.data(),
                 unknown.c_str());
    std::exit(exit_code);
  }
  // What they print stays in stdout's buffer until the exit handler flushes it, so that a write
  // that fails there (a full disk) is seen with its errno: a write failed earlier leaves none.
  // (glibc takes the size only with a buffer given; this one lives until the process exits.)
  if (help_or_version) {
    static char* const help_buffer = new char[kHelpBufferBytes];
    std::setvbuf(stdout, help_buffer, _IOFBF, kHelpBufferBytes);
  }
  exit_code_while_parsing = help_or_version ? 0 : exit_code;
  std::vector<char*> words = absl::ParseCommandLine(argc, argv);
  exit_code_while_parsing = -1;
  if (words.size() <= 1) return;  // words[0] is the program
  std::fprintf(stderr,
               "%.*s: unexpected argument \"%s\": this program takes flags only (--name=value); see --help\n",
               static_cast<int>(program.size()), program.data(), words[1]);
  std::exit(exit_code);
}

}  // namespace brrr
