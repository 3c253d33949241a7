// brrrctl's lists of admin planes (control/brrrctl/targets.h) on any text, as a --targets_file
// and as a --target value: no crash, and what they accept means what they say. Every address
// accepted passes CheckAddress, none is empty, holds a space or (from a file) a comment, none is
// there twice; a file gives one address per line that is not blank or a comment; the addresses
// of a file, joined with commas, read back as a --target value to the same list (unless one
// holds a comma), and those of a --target value, one per line, read back as a file to the same
// list (unless one holds a '#', or the first starts with a UTF-8 byte-order mark, which a file
// skips). Every refusal is InvalidArgument naming the flag.
//
// Input: [mode: 1 byte, even: a file, odd: a --target value][the text: the rest]
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "control/brrrctl/targets.h"
#include "tests/fuzz/fuzz_input.h"

namespace brrr::fuzz {
namespace {

using control::CheckAddress;
using control::ParseTargetFlag;
using control::ParseTargetsFile;
using Targets = std::vector<std::string>;

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "targets_fuzzer: %s\n", what);
  std::abort();
}

bool HoldsAny(const Targets& targets, char c) {
  for (const std::string& t : targets) {
    if (t.find(c) != std::string::npos) return true;
  }
  return false;
}

void CheckAccepted(const Targets& targets, bool from_file) {
  Require(!targets.empty(), "an empty list accepted");
  std::set<std::string> seen;
  for (const std::string& t : targets) {
    Require(CheckAddress(t).ok(), "an address accepted that CheckAddress refuses");
    Require(!t.empty(), "an empty address accepted");
    for (char c : t) Require(!absl::ascii_isspace(static_cast<unsigned char>(c)), "an address with a space in it");
    Require(!from_file || t.find('#') == std::string::npos, "a comment read as part of an address");
    Require(seen.insert(t).second, "an address accepted twice");
  }
}

void CheckRefused(const absl::Status& status, const char* flag) {
  Require(status.code() == absl::StatusCode::kInvalidArgument, "refused with a code other than InvalidArgument");
  Require(absl::StartsWith(status.message(), flag), "a refusal that does not name the flag");
}

constexpr absl::string_view kByteOrderMark = "\xEF\xBB\xBF";

// The lines of a file that hold an address: neither blank nor only a comment (a byte-order mark
// at the start of the file is not content).
size_t LinesWithContent(absl::string_view text) {
  absl::ConsumePrefix(&text, kByteOrderMark);
  size_t n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = line.substr(0, line.find('#'));
    if (!absl::StripAsciiWhitespace(line).empty()) ++n;
  }
  return n;
}

}  // namespace

int OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const bool as_file = in.Byte() % 2 == 0;
  const std::string text(in.Rest());
  if (as_file) {
    absl::StatusOr<Targets> targets = ParseTargetsFile("f", text);
    if (!targets.ok()) {
      CheckRefused(targets.status(), "--targets_file=f");
      return 0;
    }
    CheckAccepted(*targets, true);
    Require(targets->size() == LinesWithContent(text), "not one address per line with content");
    if (!HoldsAny(*targets, ',')) {
      absl::StatusOr<Targets> again = ParseTargetFlag(absl::StrJoin(*targets, ","));
      Require(again.ok() && *again == *targets, "a file's list does not read back as a --target value");
    }
  } else {
    absl::StatusOr<Targets> targets = ParseTargetFlag(text);
    if (!targets.ok()) {
      CheckRefused(targets.status(), "--target=");
      return 0;
    }
    CheckAccepted(*targets, false);
    if (!HoldsAny(*targets, '#') && !absl::StartsWith(targets->front(), kByteOrderMark)) {
      absl::StatusOr<Targets> again = ParseTargetsFile("f", absl::StrJoin(*targets, "\n"));
      Require(again.ok() && *again == *targets, "a --target value's list does not read back as a file");
    }
  }
  return 0;
}

}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return brrr::fuzz::OneInput(data, size); }
