// seed_demo, the tutorial's examples as a program: it runs every example on the backend asked
// for and exits 0; a word that is not a flag, a --sleep_ms out of range, a --plugin_dir that is
// not a directory and an unknown backend are refused with a message and exit code 2; output that
// cannot be written is exit code 6.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::Process;

std::string Demo() { return testing::Runfile("runtime/examples/seed_demo"); }

TEST(SeedDemoTest, RunsEveryExampleAndExitsZero) {
  Process p(Demo(), {"--backend=poll", "--sleep_ms=20"});
  std::optional<int> code = p.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "still running after 60 s";
  EXPECT_EQ(*code, 0) << p.err();
  EXPECT_NE(p.out().find("brrr seed demo on the poll backend"), std::string::npos) << p.out();
  for (const char* section : {"### (1)", "### (2)", "### (3a)", "### (3b)", "### (3c)", "### (4)", "### (5)",
                              "### (6)", "### (7)"}) {
    EXPECT_NE(p.out().find(section), std::string::npos) << section << " missing from:\n" << p.out();
  }
  EXPECT_NE(p.out().find("\nloop: "), std::string::npos) << p.out();
}

// What the examples print, when it cannot be written (stdout on a full disk), is an error: exit 6
// and why on stderr (it exited 0).
TEST(SeedDemoTest, WhatItCannotPrintIsAnError) {
  Process p("/bin/sh", testing::StdoutOnAFullDisk(Demo(), {"--backend=poll", "--sleep_ms=0"}));
  std::optional<int> code = p.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "still running after 60 s";
  EXPECT_EQ(*code, 6) << p.err();
  EXPECT_NE(p.err().find("seed_demo: cannot write to standard output"), std::string::npos) << p.err();
}

struct Refusal {
  std::vector<std::string> args;
  std::string says;
};

TEST(SeedDemoTest, BadArgumentsAreRefusedWithExitCodeTwo) {
  const std::vector<Refusal> refusals = {
      {{"poll"}, "poll"},  // --backend poll was meant
      {{"--sleep_ms=-1"}, "--sleep_ms=-1: must be from 0 to 60000"},
      {{"--sleep_ms=60001"}, "--sleep_ms=60001: must be from 0 to 60000"},
      {{"--plugin_dir=/dev/null"}, "--plugin_dir: /dev/null: not a directory"},
      {{"--plugin_dir=/no/such/dir"}, "--plugin_dir: /no/such/dir: No such file or directory"},
      {{"--backend=kqueue"}, "backend \"kqueue\" not found"},
  };
  for (const Refusal& r : refusals) {
    SCOPED_TRACE(r.args[0]);
    Process p(Demo(), r.args);
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2) << p.err();
    EXPECT_NE(p.err().find("seed_demo"), std::string::npos) << p.err();
    EXPECT_NE(p.err().find(r.says), std::string::npos) << p.err();
    EXPECT_EQ(p.out().find("### (1)"), std::string::npos) << "ran the examples anyway";
  }
  // What absl itself refuses (its message names the flag, not the program) exits 2 as well.
  Process malformed(Demo(), {"--sleep_ms=abc"});
  EXPECT_EQ(malformed.Wait(seconds(30)), 2) << malformed.err();
  EXPECT_NE(malformed.err().find("Illegal value 'abc' specified for flag 'sleep_ms'"), std::string::npos)
      << malformed.err();
}

}  // namespace
}  // namespace brrr
