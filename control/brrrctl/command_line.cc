#include "control/brrrctl/command_line.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace brrr::control {
namespace {

absl::CommandLineFlag* FindKnownFlag(absl::string_view name, const std::set<std::string, std::less<>>& known) {
  return known.find(name) != known.end() ? absl::FindCommandLineFlag(name) : nullptr;
}

// What a value of the flag's type looks like, for types whose parser gives no reason.
std::string ExpectedValue(const absl::CommandLineFlag& flag) {
  if (flag.IsOfType<bool>()) return "expected true or false";
  if (flag.IsOfType<absl::Duration>()) return "expected a duration with a unit, such as 300ms, 2s or 1m30s";
  if (flag.IsOfType<uint32_t>()) return "expected a whole number from 0 to 4294967295";
  if (flag.IsOfType<uint64_t>()) return "expected a whole number from 0";
  if (flag.IsOfType<int32_t>() || flag.IsOfType<int64_t>()) return "expected a whole number";
  return "not a valid value";
}

// absl's message is "Illegal value 'V' specified for flag 'F'", then "; " and the parser's
// reason when it gives one. Keep the reason; say what is expected when there is none
// (`expected` when given, else what the type takes).
std::string BadValueMessage(const absl::CommandLineFlag& flag, absl::string_view value, absl::string_view absl_error,
                            std::string expected) {
  std::string reason(absl_error);
  std::string prefix = absl::StrCat("Illegal value '", value, "' specified for flag '", flag.Name(), "'");
  if (absl::StartsWith(reason, prefix)) {
    reason = reason.substr(prefix.size());
    if (absl::StartsWith(reason, "; ")) reason = reason.substr(2);
  }
  if (reason.empty()) reason = expected.empty() ? ExpectedValue(flag) : std::move(expected);
  return absl::StrCat("--", flag.Name(), "=", value, ": ", reason);
}

}  // namespace

absl::StatusOr<CommandLine> CommandLine::Parse(int argc, const char* const* argv,
                                               const std::set<std::string, std::less<>>& known,
                                               const ExpectedFor& expected) {
  CommandLine line;
  // Parsed once the command is known, for `expected`.
  struct Given {
    absl::CommandLineFlag* flag;
    absl::string_view name;
    absl::string_view value;
  };
  std::vector<Given> given;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) line.args.emplace_back(argv[i]);
      break;
    }
    // A negative number ("cancel -1", "stall-threshold -5ms") is an argument, for its command to
    // refuse as a value, not a flag.
    if (arg.size() < 2 || arg[0] != '-' || absl::ascii_isdigit(static_cast<unsigned char>(arg[1]))) {
      line.args.emplace_back(arg);
      continue;
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    absl::string_view name = body;
    absl::string_view value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    if (name == "help" || name == "h") {
      line.help = true;
      continue;
    }
    if (name == "version") {
      line.version = true;
      continue;
    }
    absl::CommandLineFlag* flag = FindKnownFlag(name, known);
    if (flag == nullptr && !has_value && absl::StartsWith(name, "no")) {
      absl::CommandLineFlag* negated = FindKnownFlag(name.substr(2), known);
      if (negated != nullptr && negated->IsOfType<bool>()) {
        flag = negated;
        name = name.substr(2);
        value = "false";
        has_value = true;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg.substr(0, arg.find('='))));
    }
    if (!has_value) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (--", name, "=VALUE)"));
      }
    }
    given.push_back({flag, name, value});
  }
  for (const Given& g : given) {
    std::string error;
    if (!g.flag->ParseFrom(g.value, &error)) {
      return absl::InvalidArgumentError(
          BadValueMessage(*g.flag, g.value, error, expected ? expected(line, g.name) : std::string()));
    }
    line.flags.emplace(g.name);
  }
  return line;
}

}  // namespace brrr::control
