// CommandLine: flags anywhere, positional arguments in order, usage errors as Status.
#include "control/brrrctl/command_line.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

ABSL_FLAG(bool, cl_test_verbose, false, "A bool");
ABSL_FLAG(uint32_t, cl_test_count, 0, "A count");
ABSL_FLAG(absl::Duration, cl_test_wait, absl::Seconds(1), "A duration");
ABSL_FLAG(std::string, cl_test_name, "", "A string");
ABSL_FLAG(bool, cl_test_unlisted, false, "Defined, but not among the known flags");

namespace brrr::control {
namespace {

const std::set<std::string, std::less<>> kKnown = {"cl_test_verbose", "cl_test_count", "cl_test_wait",
                                                   "cl_test_name"};

absl::StatusOr<CommandLine> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "program");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  return CommandLine::Parse(static_cast<int>(argv.size()), argv.data(), kKnown);
}

class CommandLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetFlag(&FLAGS_cl_test_verbose, false);
    absl::SetFlag(&FLAGS_cl_test_count, 0);
    absl::SetFlag(&FLAGS_cl_test_wait, absl::Seconds(1));
    absl::SetFlag(&FLAGS_cl_test_name, "");
  }
};

TEST_F(CommandLineTest, FlagsMayComeAnywhere) {
  absl::StatusOr<CommandLine> line =
      Parse({"--cl_test_verbose", "cmd", "--cl_test_count=3", "arg", "-cl_test_wait", "250ms", "last"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->args, (std::vector<std::string>{"cmd", "arg", "last"}));
  EXPECT_TRUE(line->given("cl_test_verbose"));
  EXPECT_TRUE(line->given("cl_test_count"));
  EXPECT_TRUE(line->given("cl_test_wait"));
  EXPECT_FALSE(line->given("cl_test_name"));
  EXPECT_FALSE(line->help);
  EXPECT_TRUE(absl::GetFlag(FLAGS_cl_test_verbose));
  EXPECT_EQ(absl::GetFlag(FLAGS_cl_test_count), 3u);
  EXPECT_EQ(absl::GetFlag(FLAGS_cl_test_wait), absl::Milliseconds(250));
}

TEST_F(CommandLineTest, NoBoolAndDoubleDashAndHelp) {
  absl::SetFlag(&FLAGS_cl_test_verbose, true);
  absl::StatusOr<CommandLine> line = Parse({"--nocl_test_verbose", "cmd", "-h", "--", "--cl_test_count=9", "-x"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_FALSE(absl::GetFlag(FLAGS_cl_test_verbose));
  EXPECT_TRUE(line->help);
  EXPECT_EQ(line->args, (std::vector<std::string>{"cmd", "--cl_test_count=9", "-x"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_cl_test_count), 0u);
  ASSERT_TRUE(Parse({"--help"})->help);
}

TEST_F(CommandLineTest, VersionIsAskedForAnywhereAndIsNotAnArgument) {
  absl::StatusOr<CommandLine> line = Parse({"stats", "--version", "--cl_test_count=3"});
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_TRUE(line->version);
  EXPECT_FALSE(line->help);
  EXPECT_EQ(line->args, (std::vector<std::string>{"stats"}));
  EXPECT_EQ(absl::GetFlag(FLAGS_cl_test_count), 3u);
  EXPECT_FALSE(Parse({"stats"})->version);
  EXPECT_FALSE(Parse({"--", "--version"})->version);  // after "--", an argument
}

TEST_F(CommandLineTest, UsageErrorsSayWhatIsWrong) {
  auto message = [](std::vector<std::string> args) {
    absl::StatusOr<CommandLine> line = Parse(std::move(args));
    EXPECT_FALSE(line.ok());
    EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(line.status().message());
  };
  EXPECT_EQ(message({"--bogus"}), "unknown flag --bogus");
  EXPECT_EQ(message({"--cl_test_unlisted"}), "unknown flag --cl_test_unlisted");
  EXPECT_EQ(message({"--nocl_test_count"}), "unknown flag --nocl_test_count");
  EXPECT_EQ(message({"cmd", "--cl_test_name"}), "--cl_test_name needs a value (--cl_test_name=VALUE)");
  EXPECT_EQ(message({"--cl_test_count=many"}), "--cl_test_count=many: expected a whole number from 0 to 4294967295");
  EXPECT_EQ(message({"--cl_test_wait=5"}),
            "--cl_test_wait=5: expected a duration with a unit, such as 300ms, 2s or 1m30s");
  EXPECT_EQ(message({"--cl_test_verbose=maybe"}), "--cl_test_verbose=maybe: expected true or false");
}

// What a bad value should have been can depend on the command, which may come after the flag.
TEST_F(CommandLineTest, WhatIsExpectedCanComeFromTheWholeLine) {
  auto expected = [](const CommandLine& line, absl::string_view flag) -> std::string {
    if (flag != "cl_test_count" || line.args.empty() || line.args[0] != "narrow") return "";
    return "expected a whole number from 1 to 10";
  };
  auto message = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "program");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    absl::StatusOr<CommandLine> line = CommandLine::Parse(static_cast<int>(argv.size()), argv.data(), kKnown, expected);
    EXPECT_FALSE(line.ok());
    return std::string(line.status().message());
  };
  EXPECT_EQ(message({"--cl_test_count=-1", "narrow"}), "--cl_test_count=-1: expected a whole number from 1 to 10");
  EXPECT_EQ(message({"narrow", "--cl_test_count", "x"}), "--cl_test_count=x: expected a whole number from 1 to 10");
  EXPECT_EQ(message({"wide", "--cl_test_count=-1"}),
            "--cl_test_count=-1: expected a whole number from 0 to 4294967295");
  EXPECT_EQ(message({"narrow", "--cl_test_wait=5"}),
            "--cl_test_wait=5: expected a duration with a unit, such as 300ms, 2s or 1m30s");
}

}  // namespace
}  // namespace brrr::control
