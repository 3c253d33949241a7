// brrrctl with no server to talk to, as a child process: usage errors exit 2 with a clear
// message, --help states the contract, and an unreachable target exits 3 at once.
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/version.h"
#include "tests/control/brrrctl_run.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::Brrrctl;
using testing::Contains;
using testing::CtlRun;
using testing::WriteFile;

TEST(BrrrctlUsageTest, UsageErrorsExitTwoWithAClearMessage) {
  const std::string free_target = "--target=127.0.0.1:" + std::to_string(testing::PickFreePort());
  const std::string empty_token = WriteFile("empty_token", " \n");
  const std::string control_token = WriteFile("control_token",
                                              "tok\x01"
                                              "en\n");
  const std::string long_token = WriteFile("long_token", std::string(5000, 'a'));
  const std::string token_dir = std::getenv("TEST_TMPDIR");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "no command given"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"--bogus", "info"}, "unknown flag --bogus"},
      {{"stats", "--count=3"}, "--count does not apply to stats"},
      {{"inject", "blocking-sleep", "--duration=fast"}, "--duration=fast: expected a duration"},
      {{"inject", "blocking-sleep"}, "inject needs --duration"},
      {{"inject", "sleepy", "--duration=1s"},
       "inject sleepy: KIND is blocking-spin, blocking-sleep or nonblocking-sleep"},
      {{"inject", "blocking-spin", "--duration=1500us"}, "--duration=1.5ms: not a whole number of milliseconds"},
      {{"throttle", "--conn_rate=10QB"}, "--conn_rate=10QB: expected a number"},
      {{"throttle", "--pause", "--resume"}, "throttle: give --pause or --resume, not both"},
      {{"watch", "--count=-1"}, "--count=-1: expected a whole number"},
      // 0 is the API's "default" (1 s, 10000 sockets): refused rather than silently replaced.
      {{"watch", "--interval=0s"}, "--interval=0: the time between samples must be from 50ms to 1h"},
      // The server's own ranges, said before any call (exit 2, not a refusal's 1).
      {{"watch", "--interval=10ms"}, "--interval=10ms: the time between samples must be from 50ms to 1h"},
      {{"watch", "--interval=2h"}, "--interval=2h: the time between samples must be from 50ms to 1h"},
      {{"stall-threshold", "500us"}, "stall-threshold 500us: the threshold must be from 1ms to 1m"},
      {{"stall-threshold", "61s"}, "stall-threshold 61s: the threshold must be from 1ms to 1m"},
      {{"stall-threshold", "-5ms"}, "stall-threshold -5ms: expected a positive duration"},
      {{"throttle", "--conn_rate=500"}, "throttle: --conn_rate=500 is out of range: allowed 0 (unlimited) or"},
      // The value as given, and what it reads as where they differ.
      {{"throttle", "--accept_rate=2M"},
       "throttle: --accept_rate=2M (2000000) is out of range: allowed 0 (unlimited) or 1 to"},
      {{"throttle", "--max_connections=0"}, "throttle: --max_connections=0 is out of range: allowed 1 to"},
      {{"throttle", "--max_connections=unlimited"},
       "throttle: --max_connections=unlimited (0) is out of range: allowed 1 to"},
      {{"throttle", "--total_rate=200G"}, "throttle: --total_rate=200G (200000000000) is out of range"},
      {{"inject", "blocking-spin", "--duration=10ms", "--count=0"}, "--count=0: must be from 1 to 1000000"},
      {{"inject", "blocking-spin", "--duration=10ms", "--count=1000001"}, "--count=1000001: must be from 1 to 1000000"},
      // A value the flag's type cannot hold: the range said is the command's, not the type's.
      {{"inject", "blocking-spin", "--duration=10ms", "--count=-5"},
       "--count=-5: expected a whole number from 1 to 1000000"},
      {{"inject", "blocking-spin", "--duration=0s"}, "--duration=0: an injection lasts 1ms at the least"},
      // The flag as given and the range its help states; the server's field names
      // ("interval_ms=7200000") are not the command line's.
      {{"inject", "nonblocking-sleep", "--duration=2h"}, "--duration=2h: a nonblocking-sleep lasts 1ms to 1h"},
      {{"inject", "nonblocking-sleep", "--duration=2000h"}, "--duration=2000h: a nonblocking-sleep lasts 1ms to 1h"},
      {{"inject", "blocking-spin", "--duration=10ms", "--interval=2h"}, "--interval=2h: must be from 0 to 1h"},
      {{"inject", "blocking-spin", "--duration=10ms", "--interval=2000h"}, "--interval=2000h: must be from 0 to 1h"},
      {{"cancel", "-1"}, "cancel -1: ID must be an injection id"},
      {{"cancel", "0"}, "cancel 0: ID must be an injection id"},
      {{"-x", "info"}, "unknown flag -x"},
      {{"sockets", "--limit=0"}, "--limit=0: must be from 1 to 100000"},
      // Past the server's range: refused here (exit 2), not sent to be refused (exit 1).
      {{"sockets", "--limit=100001"}, "--limit=100001: must be from 1 to 100000"},
      {{"sockets", "--limit=-5"}, "--limit=-5: expected a whole number from 1 to 100000"},
      {{"--limit", "5000000000", "sockets"}, "--limit=5000000000: expected a whole number from 1 to 100000"},
      {{"sockets", "--set=some"}, "--set=some: expected all, read, write or neither"},
      {{"cancel"}, "cancel takes 1 argument, got 0"},
      {{"close", "seven"}, "close seven: FD must be a file descriptor number"},
      // No server listens: a call would exit 3. An empty --peer meant any connection.
      {{"close", "12", "--peer=garbage"}, "close --peer: \"garbage\" is not a peer address: expected HOST:PORT"},
      {{"close", "12", "--peer="}, "close --peer is empty: give the connection's HOST:PORT"},
      // An empty --loop (a shell variable that was not set) read as every loop, which leaving
      // --loop out says; empty, it is refused as the other empty values are.
      {{"stats", "--loop="}, "stats --loop is empty: name a loop (--loop=N[,N...], from 0) or leave --loop out"},
      {{"watch", "--loop", " "}, "watch --loop is empty: name a loop (--loop=N[,N...], from 0)"},
      {{"sockets", "--loop="}, "sockets --loop is empty: name a loop (--loop=N, from 0) or leave --loop out"},
      {{"close", "12", "--loop="}, "close --loop is empty: name a loop (--loop=N, from 0)"},
      {{"inject", "blocking-spin", "--duration=10ms", "--loop="}, "inject --loop is empty"},
      {{"stall-threshold", "fast"}, "stall-threshold fast: expected a positive duration"},
      {{"--timeout=0s", "info"}, "--timeout=0: must be positive"},
      {{"--token_file=/nonexistent/token", "info"}, "--token_file=/nonexistent/token: cannot read it"},
      {{"--token_file=" + empty_token, "info"}, "--token_file=" + empty_token + ": the file holds no token"},
      {{"--token_file=" + token_dir, "info"}, "--token_file=" + token_dir + ": is a directory, not a file"},
      // gRPC aborted brrrctl (SIGABRT) on a token it cannot send as metadata.
      {{"--token_file=" + control_token, "info"}, "--token_file=" + control_token + ": the token's byte 4 is 0x01"},
      {{"--token_file=" + long_token, "info"}, "--token_file=" + long_token + ": the token is 5000 bytes long"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.begin(), free_target);
    CtlRun r = Brrrctl(args);
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_TRUE(Contains(r.err, "brrrctl: " + c.message)) << r;
    EXPECT_TRUE(Contains(r.err, "brrrctl --help") || Contains(r.err, "brrrctl help ")) << r;
    EXPECT_EQ(r.out, "") << r;
  }
}

// A token or targets file is read no further than a valid one goes: /dev/zero never ends, and
// brrrctl read it whole, growing without bound. The child runs with 2 GB of address space, so
// that a brrrctl that reads on dies of it (SIGABRT) rather than the machine; not under ASan or
// TSan, whose shadow memory alone is terabytes of address space (a brrrctl that read on would
// fail the 10 s wait there).
TEST(BrrrctlUsageTest, FilesThatNeverEndAreRefusedUnread) {
  const bool shadow = testing::UnderSanitizer("asan") || testing::UnderSanitizer("tsan");
  const std::string free_target = "--target=127.0.0.1:" + std::to_string(testing::PickFreePort());
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{free_target, "--token_file=/dev/zero", "info"},
            "--token_file=/dev/zero: the file is longer than 8192 bytes; a token is at most 4096 bytes"},
           {{"--targets_file=/dev/zero", "info"},
            "--targets_file=/dev/zero: the file is longer than 1 MiB (1048576 bytes); give a file of one "
            "HOST:PORT per line"},
       }) {
    std::vector<std::string> args = {"-c", std::string(shadow ? "" : "ulimit -v 2000000 && ") + "exec \"$0\" \"$@\"",
                                     testing::Runfile("control/brrrctl/brrrctl")};
    args.insert(args.end(), c.args.begin(), c.args.end());
    testing::Process p("/bin/sh", args);
    EXPECT_EQ(p.Wait(seconds(10)), 2) << c.message << "\n" << p.err();
    EXPECT_TRUE(Contains(p.err(), "brrrctl: " + c.message)) << p.err();
  }
}

TEST(BrrrctlUsageTest, HelpExitsZeroAndStatesTheContract) {
  CtlRun general = Brrrctl({"--help"});
  ASSERT_EQ(general.code, 0) << general;
  for (const std::string command : {"info", "stats", "watch", "sockets", "throttle", "inject", "injections", "cancel",
                                    "close", "drain", "health", "stalls", "stall-threshold"}) {
    EXPECT_TRUE(Contains(general.out, "\n  " + command + " ")) << command << "\n" << general.out;
  }
  EXPECT_TRUE(Contains(general.out, "Exit codes:")) << general.out;
  EXPECT_TRUE(Contains(general.out, "5  health:")) << general.out;
  EXPECT_TRUE(Contains(general.out, "6  the output could not be written")) << general.out;
  EXPECT_TRUE(Contains(general.out, "DECIMAL suffix: K = 1000")) << general.out;

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"help", "inject"}, std::vector<std::string>{"inject", "--help"}}) {
    CtlRun r = Brrrctl(args);
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_TRUE(Contains(r.out, "Usage: brrrctl inject KIND --duration=DURATION")) << r;
    EXPECT_TRUE(Contains(r.out, "--interval=DURATION")) << r;
    EXPECT_TRUE(Contains(r.out, "the start of the next: 0 to 1h")) << r;  // the range --interval is checked against
    EXPECT_TRUE(Contains(r.out, "nonblocking-sleep")) << r;
  }
  CtlRun close = Brrrctl({"help", "close"});
  ASSERT_EQ(close.code, 0) << close;
  EXPECT_TRUE(Contains(close.out, "--peer is HOST:PORT written as sockets lists it (127.0.0.1:41234, [::1]:41234)"))
      << close;
  EXPECT_TRUE(Contains(close.out, "form, or an empty --peer=, is a usage error (exit 2) and nothing is called."))
      << close;
  CtlRun unknown = Brrrctl({"help", "frobnicate"});
  EXPECT_EQ(unknown.code, 2) << unknown;
  CtlRun help_of_help = Brrrctl({"help", "help"});  // help is a command the general help lists
  EXPECT_EQ(help_of_help.code, 0) << help_of_help;
  EXPECT_EQ(help_of_help.out, general.out) << help_of_help;
}

TEST(BrrrctlUsageTest, VersionPrintsBrrrctlsOwnVersionAndExitsZero) {
  // Alone, and beside a command: nothing is called (no server listens on this target).
  const std::string free_target = "--target=127.0.0.1:" + std::to_string(testing::PickFreePort());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--version"}, std::vector<std::string>{free_target, "stats", "--version"}}) {
    CtlRun r = Brrrctl(args);
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_EQ(r.out, std::string("brrrctl ") + kVersion + "\n") << r;
    EXPECT_EQ(r.err, "") << r;
  }
  // A bad flag beside it is still a usage error, and help wins over it.
  CtlRun bad = Brrrctl({"--version", "--bogus"});
  EXPECT_EQ(bad.code, 2) << bad;
  EXPECT_TRUE(Contains(bad.err, "unknown flag --bogus")) << bad;
  EXPECT_EQ(bad.out, "") << bad;
  CtlRun help = Brrrctl({"--version", "--help"});
  EXPECT_EQ(help.code, 0) << help;
  EXPECT_TRUE(Contains(help.out, "Usage: brrrctl")) << help;
  EXPECT_TRUE(Contains(help.out, "brrrctl --version")) << help;
}

TEST(BrrrctlUsageTest, UnreachableTargetExitsThreeAtOnce) {
  const std::string target = "127.0.0.1:" + std::to_string(testing::PickFreePort());  // nothing listens
  for (const std::string command : {"info", "health", "watch", "stalls"}) {
    auto start = std::chrono::steady_clock::now();
    CtlRun r = Brrrctl({"--target=" + target, "--timeout=20s", command});
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.code, 3) << command << ": " << r;
    EXPECT_TRUE(Contains(r.err, "brrrctl: cannot reach the admin plane at " + target)) << r;
    // A refused connection is known at once: brrrctl does not sit out its --timeout. (A bound
    // of half that timeout, where a refusal takes milliseconds: safe however loaded the machine.)
    EXPECT_LT(took, seconds(10)) << command;
  }
  // With --json and one target the error is the same text on stderr, nothing on stdout (the
  // help says so; several targets give a JSON line per target instead: brrrctl_fleet_test).
  CtlRun json = Brrrctl({"--target=" + target, "--json", "stats"});
  EXPECT_EQ(json.code, 3) << json;
  EXPECT_EQ(json.out, "") << json;
  EXPECT_TRUE(Contains(json.err, "brrrctl: cannot reach the admin plane at " + target)) << json;
}

}  // namespace
}  // namespace brrr
