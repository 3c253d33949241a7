// brrrctl's target lists: --target=A,B and --targets_file, with the usage errors they give.
#include "control/brrrctl/targets.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace brrr::control {
namespace {

using Targets = std::vector<std::string>;

std::string ErrorOf(const absl::StatusOr<Targets>& targets) {
  EXPECT_FALSE(targets.ok());
  return targets.ok() ? "" : std::string(targets.status().message());
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CheckAddressTest, TakesHostPortAndSchemes) {
  for (const char* ok : {"127.0.0.1:5001", "localhost:1", "[::1]:65535", "echo-3.internal:5001", "unix:/run/brrr.sock",
                         "dns:///echo.internal:5001", "unix-abstract:brrr"}) {
    EXPECT_TRUE(CheckAddress(ok).ok()) << ok << ": " << CheckAddress(ok);
  }
  struct Case {
    const char* address;
    const char* why;
  };
  for (const Case& c : {Case{"", "empty"}, Case{"127.0.0.1", "no port"}, Case{":5001", "no host"},
                        Case{"127.0.0.1:0", "1 to 65535"}, Case{"127.0.0.1:65536", "1 to 65535"},
                        Case{"127.0.0.1:50x1", "1 to 65535"}, Case{"127.0.0.1:+5", "1 to 65535"},
                        Case{"::1:5001", "brackets"}, Case{"[::1:5001", "unclosed"}, Case{"[]:5001", "empty [IPv6]"},
                        Case{"host name:1", "space"}, Case{"unix:", "nothing after unix:"}}) {
    absl::Status s = CheckAddress(c.address);
    EXPECT_FALSE(s.ok()) << c.address;
    EXPECT_TRUE(Contains(std::string(s.message()), c.why)) << c.address << ": " << s;
  }
}

TEST(ParseTargetFlagTest, OneOrSeveralInOrder) {
  EXPECT_EQ(*ParseTargetFlag("127.0.0.1:5001"), Targets{"127.0.0.1:5001"});
  EXPECT_EQ(*ParseTargetFlag("127.0.0.1:5003,[::1]:5001, localhost:5002"),
            (Targets{"127.0.0.1:5003", "[::1]:5001", "localhost:5002"}));
}

TEST(ParseTargetFlagTest, NamesTheBadAddress) {
  EXPECT_TRUE(Contains(ErrorOf(ParseTargetFlag("")), "--target=: address 1: an empty address"));
  EXPECT_TRUE(Contains(ErrorOf(ParseTargetFlag("a:1,,b:2")), "--target=a:1,,b:2: address 2: an empty address"));
  EXPECT_TRUE(Contains(ErrorOf(ParseTargetFlag("a:1,b")), "address 2: \"b\": no port"));
  EXPECT_TRUE(Contains(ErrorOf(ParseTargetFlag("a:1,b:2,a:1")), "address 3: a:1 is address 1 already"));
}

// A URL (copied from a browser, or the metrics port's documentation) is not read as an IPv6
// host without brackets: the message gives the HOST:PORT to use instead.
TEST(CheckAddressTest, AUrlIsAnsweredWithItsHostPort) {
  struct Case {
    const char* address;
    const char* message;
  };
  for (const Case& c : {Case{"http://127.0.0.1:5001",
                             "\"http://127.0.0.1:5001\": a URL; the admin plane takes "
                             "HOST:PORT, without a scheme or path: give 127.0.0.1:5001"},
                        Case{"grpc://[::1]:5001/", "give [::1]:5001"},
                        Case{"https://echo.internal:5001/metrics?x=1", "give echo.internal:5001"},
                        Case{"http://", "give HOST:PORT, e.g. 127.0.0.1:5001"}}) {
    absl::Status s = CheckAddress(c.address);
    EXPECT_FALSE(s.ok()) << c.address;
    EXPECT_TRUE(Contains(std::string(s.message()), c.message)) << c.address << ": " << s;
    EXPECT_FALSE(Contains(std::string(s.message()), "IPv6")) << c.address << ": " << s;
  }
}

// The same server written two ways is given twice: called twice, its figures would count twice
// in a fleet's totals. The error names both spellings.
TEST(ParseTargetFlagTest, TheSameServerWrittenAnotherWayIsGivenTwice) {
  struct Case {
    const char* value;
    const char* message;
  };
  for (const Case& c :
       {Case{"127.0.0.1:5001,127.0.0.1:05001",
             "address 2: 127.0.0.1:05001 is address 1 already (127.0.0.1:5001 written another way)"},
        Case{"[::ffff:127.0.0.1]:5001,127.0.0.1:5001", "address 2: 127.0.0.1:5001 is address 1 already"},
        Case{"[::1]:5001,[0:0:0:0:0:0:0:1]:5001", "address 2: [0:0:0:0:0:0:0:1]:5001 is address 1 already"},
        Case{"[::1]:5002,[::1]:5001,[0::1]:005001", "address 3: [0::1]:005001 is address 2 already ([::1]:5001"},
        Case{"echo-1.internal:5001,ECHO-1.Internal:5001", "address 2: ECHO-1.Internal:5001 is address 1 already"}}) {
    EXPECT_TRUE(Contains(ErrorOf(ParseTargetFlag(c.value)), c.message))
        << c.value << ": " << ErrorOf(ParseTargetFlag(c.value));
  }
  // Other servers: another port, another address, another family's loopback.
  EXPECT_EQ(ParseTargetFlag("127.0.0.1:5001,127.0.0.1:5002,127.0.0.2:5001,[::1]:5001")->size(), 4u);
}

TEST(ParseTargetsFileTest, TheSameServerWrittenAnotherWayIsOnItsLineAlready) {
  EXPECT_EQ(ErrorOf(ParseTargetsFile("f", "127.0.0.1:5001\n[::1]:5001\n[::ffff:7f00:1]:05001 # again\n")),
            "--targets_file=f line 3: [::ffff:7f00:1]:05001 is on line 1 already (127.0.0.1:5001 written another way)");
}

TEST(ParseTargetsFileTest, SkipsBlankLinesAndComments) {
  const char* content =
      "# the fleet\n"
      "127.0.0.1:5001\n"
      "\n"
      "   127.0.0.1:5002   # canary\n"
      "\t\n"
      "[::1]:5003\r\n"
      "#127.0.0.1:5004\n";
  EXPECT_EQ(*ParseTargetsFile("fleet.txt", content), (Targets{"127.0.0.1:5001", "127.0.0.1:5002", "[::1]:5003"}));
  EXPECT_EQ(*ParseTargetsFile("fleet.txt", "127.0.0.1:5001"), Targets{"127.0.0.1:5001"});  // no final newline
}

TEST(ParseTargetsFileTest, NamesTheLine) {
  EXPECT_EQ(ErrorOf(ParseTargetsFile("f", "127.0.0.1:1\n\n127.0.0.1\n")),
            "--targets_file=f line 3: \"127.0.0.1\": no port (expected HOST:PORT, e.g. 127.0.0.1:5001 or "
            "[::1]:5001) (one address per line)");
  EXPECT_EQ(ErrorOf(ParseTargetsFile("f", "# a\n127.0.0.1:1\n127.0.0.1:2\n127.0.0.1:1 # again\n")),
            "--targets_file=f line 4: 127.0.0.1:1 is on line 2 already");
  EXPECT_TRUE(Contains(ErrorOf(ParseTargetsFile("f", "127.0.0.1:1 127.0.0.1:2\n")), "line 1: "));
  EXPECT_EQ(ErrorOf(ParseTargetsFile("f", "127.0.0.1:1,127.0.0.1:2\n")),
            "--targets_file=f line 1: \"127.0.0.1:1,127.0.0.1:2\": a comma in it: one address each (HOST:PORT) (one "
            "address per line)");
}

TEST(ParseTargetsFileTest, AnEmptyListIsAnError) {
  for (const char* content : {"", "\n\n", "# only comments\n  # here\n"}) {
    EXPECT_EQ(ErrorOf(ParseTargetsFile("f", content)),
              "--targets_file=f: no address in it (one HOST:PORT per line; # starts a comment)");
  }
}

TEST(ReadTargetsFileTest, ReadsTheFileAndSaysWhyNot) {
  const std::string dir = std::getenv("TEST_TMPDIR");
  const std::string path = dir + "/fleet.txt";
  std::ofstream(path) << "# two\n127.0.0.1:5001\n127.0.0.1:5002\n";
  EXPECT_EQ(*ReadTargetsFile(path), (Targets{"127.0.0.1:5001", "127.0.0.1:5002"}));
  EXPECT_EQ(ErrorOf(ReadTargetsFile(dir + "/missing.txt")),
            "--targets_file=" + dir + "/missing.txt: cannot read it: No such file or directory");
  EXPECT_EQ(ErrorOf(ReadTargetsFile(dir)), "--targets_file=" + dir + ": cannot read it: Is a directory");
}

}  // namespace
}  // namespace brrr::control
