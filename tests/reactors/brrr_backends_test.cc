// brrr-backends, the listing of the backend plugins: every backend with whether it starts here
// (the same answer the tests' own probe gives), its capabilities and file, and what
// --backend=auto picks; the same in --json; a damaged plugin and one that crashes are listed
// with the reason, the listing goes on; and bad arguments are refused with exit code 2.
#include <unistd.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/reactors/damaged_plugins.h"
#include "tests/testing/backends.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::Process;

std::string Backends() { return testing::Runfile("runtime/brrr-backends"); }

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The best backend that starts here, in auto's order.
std::string BestHere() {
  for (const char* name : {"io_uring", "epoll", "poll", "select"}) {
    std::string why;
    if (testing::BackendStarts(name, &why)) return name;
  }
  return "";
}

TEST(BrrrBackendsTest, ListsEveryBackendWhetherItStartsAndWhatAutoPicks) {
  Process p(Backends(), {});
  std::optional<int> code = p.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << p.err();
  std::vector<std::string> lines = Lines(p.out());
  ASSERT_GE(lines.size(), 5u) << p.out();
  const std::string& header = lines[0];
  ASSERT_TRUE(StartsWith(header, "BACKEND")) << p.out();
  size_t status_at = header.find("STATUS");
  size_t caps_at = header.find("CAPABILITIES");
  size_t file_at = header.find("FILE");
  ASSERT_NE(file_at, std::string::npos) << header;
  for (const char* name : {"io_uring", "epoll", "poll", "select"}) {
    SCOPED_TRACE(name);
    const std::string* row = nullptr;
    for (const std::string& line : lines) {
      if (StartsWith(line, std::string(name) + " ")) row = &line;
    }
    ASSERT_NE(row, nullptr) << p.out();
    std::string why;
    bool starts = testing::BackendStarts(name, &why);
    // Columns line up under the header, however long an entry is.
    EXPECT_EQ(row->substr(status_at, starts ? 7 : 13), starts ? "starts " : "cannot start ") << *row;
    EXPECT_NE(row->at(caps_at), ' ') << *row;
    EXPECT_EQ(row->at(file_at - 1), ' ') << *row;
    std::string file = row->substr(file_at);
    EXPECT_TRUE(file.size() > 1 && file[0] == '/' && file.find("/libbrrr_reactor_" + std::string(name) + ".so") !=
                                                            std::string::npos)
        << *row;
    EXPECT_EQ(::access(file.c_str(), R_OK), 0) << file;
  }
  // io_uring alone performs its operations in the kernel.
  for (const std::string& line : lines) {
    if (StartsWith(line, "io_uring ")) {
      EXPECT_NE(line.find("native-ops"), std::string::npos) << line;
    }
    if (StartsWith(line, "epoll ")) {
      EXPECT_EQ(line.find("native-ops"), std::string::npos) << line;
    }
  }
  std::string best = BestHere();
  ASSERT_FALSE(best.empty());
  EXPECT_EQ(lines.back(), "--backend=auto picks: " + best) << p.out();
}

TEST(BrrrBackendsTest, JsonSaysTheSameOneObjectPerLine) {
  Process p(Backends(), {"--json"});
  std::optional<int> code = p.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << p.err();
  std::vector<std::string> lines = Lines(p.out());
  std::string best = BestHere();
  int autos = 0;
  for (const char* name : {"io_uring", "epoll", "poll", "select"}) {
    SCOPED_TRACE(name);
    std::string prefix = "{\"name\":\"" + std::string(name) + "\",";
    const std::string* object = nullptr;
    for (const std::string& line : lines) {
      if (StartsWith(line, prefix)) object = &line;
    }
    ASSERT_NE(object, nullptr) << p.out();
    EXPECT_EQ(object->back(), '}') << *object;
    std::string why;
    bool starts = testing::BackendStarts(name, &why);
    EXPECT_NE(object->find(std::string("\"starts\":") + (starts ? "true" : "false")), std::string::npos) << *object;
    bool picked = object->find("\"auto\":true") != std::string::npos;
    EXPECT_EQ(picked, name == best) << *object;
    autos += picked ? 1 : 0;
    EXPECT_NE(object->find("\"path\":\"/"), std::string::npos) << *object;
    if (starts) {
      EXPECT_NE(object->find("\"reason\":\"\"}"), std::string::npos) << *object;
    }
  }
  EXPECT_EQ(autos, 1) << p.out();
}

// A plugin that crashes as it starts, and a damaged copy of epoll, in --plugin_dir (searched
// first): both listed as cannot start with why, the real ones still listed, auto not on epoll.
TEST(BrrrBackendsTest, ADamagedOrCrashingPluginIsListedWithWhyAndTheListingGoesOn) {
  std::string dir = testing::FreshDir("brrr_backends_damaged");
  std::string crashes = dir + "/libbrrr_reactor_crashes.so";
  ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/libbrrr_reactor_crashes.so").c_str(), crashes.c_str()), 0);
  std::string epoll = dir + "/libbrrr_reactor_epoll.so";
  std::string reason = testing::WriteDamagedPlugin(testing::DamageKind::kCutAt8000Bytes, "epoll", epoll);
  Process p(Backends(), {"--plugin_dir=" + dir});
  std::optional<int> code = p.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << p.err();
  const std::string& out = p.out();
  EXPECT_NE(out.find("why: " + crashes + ": the probe crashed (SIGBUS)"), std::string::npos) << out;
  EXPECT_NE(out.find("why: " + epoll + ": "), std::string::npos) << out;
  EXPECT_NE(out.find(reason), std::string::npos) << out << "\nlacks: " << reason;
  for (const std::string& line : Lines(out)) {
    if (StartsWith(line, "crashes ") || StartsWith(line, "epoll ")) {
      EXPECT_NE(line.find(" cannot start "), std::string::npos) << line;
    }
    if (StartsWith(line, "poll ")) {
      EXPECT_NE(line.find(" starts "), std::string::npos) << line;
    }
  }
  EXPECT_NE(out.find("--backend=auto picks: "), std::string::npos) << out;
  EXPECT_EQ(out.find("--backend=auto picks: epoll"), std::string::npos) << out;
}

// Where no backend starts (each one shadowed by a file that holds another backend): each is
// listed with why, auto has no pick, and the exit code is 1, in text and in --json.
TEST(BrrrBackendsTest, NoBackendStartsExits1) {
  std::string dir = testing::FreshDir("brrr_backends_none");
  for (const char* name : {"io_uring", "epoll", "poll", "select"}) {
    std::string path = dir + "/libbrrr_reactor_" + name + ".so";
    ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/libbrrr_reactor_crashes.so").c_str(), path.c_str()), 0);
  }
  Process text(Backends(), {"--plugin_dir=" + dir});
  std::optional<int> code = text.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << text.err();
  int listed = 0;
  for (const std::string& line : Lines(text.out())) {
    for (const char* name : {"io_uring ", "epoll ", "poll ", "select "}) {
      if (!StartsWith(line, name)) continue;
      ++listed;
      EXPECT_NE(line.find(" cannot start "), std::string::npos) << line;
    }
  }
  EXPECT_EQ(listed, 4) << text.out();
  EXPECT_NE(text.out().find("why: " + dir + "/libbrrr_reactor_select.so: the file is named for backend \"select\""),
            std::string::npos)
      << text.out();
  EXPECT_NE(text.out().find("\n--backend=auto: no backend starts here (tried io_uring, epoll, poll, select in " + dir),
            std::string::npos)
      << text.out();
  EXPECT_EQ(text.out().find("--backend=auto picks"), std::string::npos) << text.out();

  Process json(Backends(), {"--plugin_dir=" + dir, "--json"});
  code = json.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1) << json.err();
  std::vector<std::string> objects = Lines(json.out());
  EXPECT_EQ(objects.size(), 4u) << json.out();
  for (const std::string& object : objects) {
    EXPECT_NE(object.find("\"starts\":false,\"auto\":false"), std::string::npos) << object;
  }
}

TEST(BrrrBackendsTest, BadArgumentsAreRefusedWithExitCode2) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"epoll"}, "brrr-backends: unexpected argument \"epoll\": this program takes flags only"},
      {{"--json", "true"}, "unexpected argument \"true\""},
      {{"--plugin_dir=/nonexistent/brrr"}, "brrr-backends: --plugin_dir: /nonexistent/brrr: No such file or directory"},
      {{"--plugin_dir=/dev/null"}, "brrr-backends: --plugin_dir: /dev/null: not a directory"},
      // What absl itself refuses: a bad option too (2), not "no plugin found" (1).
      {{"--json=maybe"}, "Illegal value 'maybe' specified for flag 'json'"},
      {{"--no_such_flag"}, "Unknown command line flag 'no_such_flag'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.args[0]);
    Process p(Backends(), c.args);
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2) << p.err();
    EXPECT_NE(p.err().find(c.message), std::string::npos) << p.err();
    EXPECT_EQ(p.out(), "");
  }
}

TEST(BrrrBackendsTest, HelpExitsZero) {
  Process p(Backends(), {"--help"});
  EXPECT_EQ(p.Wait(seconds(30)), 0) << p.err();
  EXPECT_NE((p.out() + p.err()).find("--json"), std::string::npos) << p.out();
}

// A listing, --help or --version whose stdout cannot be written (a full disk) says so and exits 6,
// as brrrctl does; it exited 0, as if the list had been given.
TEST(BrrrBackendsTest, AListThatCannotBeWrittenExits6) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{}, {"--json"}, {"--help"}, {"--version"}}) {
    Process p("/bin/sh", testing::StdoutOnAFullDisk(Backends(), args));
    const std::string what = args.empty() ? "the list" : args[0];
    EXPECT_EQ(p.Wait(seconds(30)), 6) << what << ": " << p.err();
    EXPECT_NE(p.err().find("brrr-backends: cannot write to standard output: No space left on device"),
              std::string::npos)
        << what << ": " << p.err();
  }
}

}  // namespace
}  // namespace brrr
