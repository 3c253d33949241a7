// brrr-echo's command line, the real binary: bad flags give a clear error and exit code, a
// port in use is reported, --help describes the server, and backends come from --plugin_dir,
// then $BRRR_PLUGIN_DIR, then beside the program (--list_backends says which start here).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/duration_range.h"
#include "runtime/integer_range.h"
#include "server/brrr-echo/flag_ranges.h"
#include "server/server_options.h"
#include "tests/server/echo_server_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::BlockingClient;
using testing::EchoBinary;
using testing::Process;

// Flags: clear errors and exit codes (no backend involved).
TEST(EchoServerFlagsTest, BadFlagsGiveAClearErrorAndExitCode) {
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--no_such_flag"}, 1, "Unknown command line flag 'no_such_flag'"},
      {{"--port=70000"}, 2, "--port=70000: must be from 0 to 65535"},
      {{"--loops=0"}, 2, "--loops=0: must be from 1 to 256"},
      {{"--loops=257"}, 2, "--loops=257: must be from 1 to 256"},
      {{"--max_connections=0"}, 2, "--max_connections=0: must be from 1 to 10000000"},
      // Above what the admin plane's SetThrottle takes, which could then never set it back.
      {{"--max_connections=10000001"}, 2, "--max_connections=10000001: must be from 1 to 10000000"},
      {{"--high_water=0"}, 2, "--high_water=0: must be from 1 byte to 1 GiB"},
      // "Unbounded" would bound no connection's memory.
      {{"--high_water=18446744073709551615"}, 2, "--high_water=18446744073709551615: must be from 1 byte to 1 GiB"},
      {{"--idle_timeout=-1s"}, 2, "--idle_timeout=-1s: must be from 0 to 24h"},
      {{"--idle_timeout=25h"}, 2, "--idle_timeout=25h: must be from 0 to 24h"},
      {{"--drain_timeout=-1s"}, 2, "--drain_timeout=-1s: must be from 0 to 24h"},
      // Once taken as "no deadline", it overflowed the deadline's arithmetic and cut at once.
      {{"--drain_timeout=inf"}, 2, "--drain_timeout=inf: must be from 0 to 24h"},
      {{"--drain_grace=11m"}, 2, "--drain_grace=11m: must be from 0 to 10m"},
      {{"--stall_threshold=0s"}, 2, "--stall_threshold=0: must be from 1ms to 1m"},
      // Above what the admin plane's SetStallThreshold takes, which could then never set it back.
      {{"--stall_threshold=61s"}, 2, "--stall_threshold=1m1s: must be from 1ms to 1m"},
      {{"--stall_threshold=inf"}, 2, "--stall_threshold=inf: must be from 1ms to 1m"},
      {{"--recv_buffer_size=511"}, 2, "--recv_buffer_size=511: must be from 512 bytes to 16 MiB"},
      {{"--recv_buffers=32769"}, 2, "--recv_buffers=32769: must be from 1 to 32768 (the most a backend takes)"},
      {{"--admin_max_block=11m"}, 2, "--admin_max_block=11m: must be from 1ms to 10m"},
      {{"--admin_max_connections=1001"}, 2, "--admin_max_connections=1001: must be from 1 to 1000"},
      {{"--admin_max_calls=0"}, 2, "--admin_max_calls=0: must be from 1 to 10000"},
      {{"--admin_max_calls=10001"}, 2, "--admin_max_calls=10001: must be from 1 to 10000"},
      {{"--admin_idle_timeout=99ms"}, 2, "--admin_idle_timeout=99ms: must be from 100ms to 24h"},
      {{"--admin_unread_timeout=999ms"}, 2, "--admin_unread_timeout=999ms: must be from 1s to 24h"},
      {{"--admin_unread_timeout=25h"}, 2, "--admin_unread_timeout=25h: must be from 1s to 24h"},
      {{"--take_over_or_start"}, 2, "--take_over_or_start needs --take_over=PATH"},
      {{"--high_water=100", "--low_water=200"},
       2,
       "--low_water=200: must be from 0 bytes to --high_water - 1 (99 bytes)"},
      // Equal marks are refused too: a connection paused at high water must wait to drain below it.
      {{"--high_water=100", "--low_water=100", "--port=0"},
       2,
       "--low_water=100: must be from 0 bytes to --high_water - 1 (99 bytes)"},
      {{"--host=not-an-address"}, 2, "is not an IPv4 or IPv6 address"},
      {{"--backend=kqueue"}, 3, "backend \"kqueue\" not found"},
      {{"--backend="}, 2, "brrr-echo: --backend is empty: give auto, a backend's name"},
      {{"--idle_timeout=banana"}, 1, "idle_timeout"},
      {{"--idle_poll=11ms"}, 2, "--idle_poll=11ms: must be from 0 to 10ms"},
      {{"--idle_poll=-1us"}, 2, "--idle_poll=-1us: must be from 0 to 10ms"},
      {{"--reply_prefix=" + std::string(4097, 'P')},
       2,
       "--reply_prefix is 4097 bytes long: it may be at most 4096 bytes"},
      // A word that is not a flag is refused, not ignored (here the port was meant).
      {{"6000"}, 1, "brrr-echo: unexpected argument \"6000\": this program takes flags only"},
      {{"--port=0", "--", "x"}, 1, "unexpected argument \"x\""},
      // A --plugin_dir that is not a directory, instead of plugins from elsewhere.
      {{"--plugin_dir=/nonexistent/brrr"}, 2, "brrr-echo: --plugin_dir: /nonexistent/brrr: No such file or directory"},
      {{"--plugin_dir=/dev/null", "--list_backends"}, 2, "--plugin_dir: /dev/null: not a directory"},
  };
  for (const Case& c : cases) {
    Process p(EchoBinary(), c.args);
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    std::string flag = c.args[0].substr(0, 40);
    EXPECT_EQ(*code, c.code) << flag;
    EXPECT_NE(p.err().find(c.message), std::string::npos) << flag << ": " << p.err();
  }
}

// Every whole-number flag: a value outside its range is a range error (exit 2) that names the
// flag, the value as given and the range, whatever the value: negative, or past what any 64-bit
// type holds. (A negative --low_water or --max_connections, or a --loops past 2^31, was a
// syntax error, exit 1, from absl's unsigned or 32-bit flag types.)
TEST(EchoServerFlagsTest, EveryWholeNumberOutsideItsRangeExitsTwoNamingTheRange) {
  const std::vector<std::pair<std::string, std::string>> flags = {
      {"port", "0 to 65535"},
      {"loops", "1 to 256"},
      {"max_connections", "1 to 10000000"},
      {"high_water", "1 byte to 1 GiB (1073741824 bytes)"},
      {"low_water", "0 bytes to --high_water - 1 (262143 bytes)"},
      {"recv_buffer_size", "512 bytes to 16 MiB (16777216 bytes)"},
      {"recv_buffers", "1 to 32768 (the most a backend takes)"},
      {"admin_port", "0 to 65535 (0: no admin plane)"},
      {"admin_max_connections", "1 to 1000"},
      {"admin_max_calls", "1 to 10000"},
      {"admin_reserved_fds", "3 x --admin_max_connections + 8 (56) to 1000000"},
      {"metrics_port", "0 to 65535 (0: no metrics port)"},
      {"metrics_max_connections", "1 to 1000"},
  };
  for (const auto& [flag, range] : flags) {
    for (const std::string value :
         {"-1", "-9223372036854775809", "18446744073709551616", "-99999999999999999999999999999999999999999"}) {
      Process p(EchoBinary(), {"--" + flag + "=" + value});
      std::optional<int> code = p.Wait(seconds(30));
      ASSERT_TRUE(code.has_value());
      EXPECT_EQ(*code, 2) << flag << "=" << value << ": " << p.err();
      const std::string says = "brrr-echo: --" + flag + "=" + value + ": must be from " + range + "\n";
      EXPECT_NE(p.err().find(says), std::string::npos) << says << "\n" << p.err();
    }
  }
  // What is not a whole number stays a syntax error.
  Process p(EchoBinary(), {"--loops=1.5"});
  EXPECT_EQ(p.Wait(seconds(30)), 1) << p.err();
  EXPECT_NE(p.err().find("Illegal value '1.5' specified for flag 'loops'; expected a whole number"), std::string::npos)
      << p.err();
}

// A token file with neither plane on guards nothing: said, not silently accepted.
TEST(EchoServerFlagsTest, ATokenFileWithoutAnAdminPlaneOrMetricsPortDrawsAWarning) {
  const std::string token_file = std::string(std::getenv("TEST_TMPDIR")) + "/unused.token";
  std::ofstream(token_file) << "t0ken\n";
  Process p(EchoBinary(), {"--port=0", "--admin_token_file=" + token_file});
  EXPECT_TRUE(p.WaitForError(
      "brrr-echo: warning: --admin_token_file guards nothing: neither --admin_port nor --metrics_port is on"))
      << p.err();
  ASSERT_NE(p.ListeningPort(), 0) << p.err();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(seconds(30)), 0) << p.err();
}

TEST(EchoServerFlagsTest, AnAddressInUseIsReported) {
  // A plain listener (no SO_REUSEPORT) holds the port.
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(holder, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len);
  Process p(EchoBinary(), {"--port=" + std::to_string(ntohs(a.sin_port))});
  std::optional<int> code = p.Wait(seconds(30));
  ::close(holder);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3);
  EXPECT_NE(p.err().find("Address already in use"), std::string::npos) << p.err();
}

// Two of the server's listeners on one port and address is a usage error that names both flags,
// not a bind failure that reads as if another program held the port; on two addresses it is not.
TEST(EchoServerFlagsTest, TwoListenersOnOnePortAreRefusedUnlessTheirAddressesDiffer) {
  const std::string port = std::to_string(testing::PickFreePort());
  const std::string own_port = "each listener needs a port of its own";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--port=" + port, "--admin_port=" + port},
       "brrr-echo: --admin_port=" + port + ": --port is " + port + " on the same address (127.0.0.1); " + own_port},
      {{"--port=0", "--admin_port=" + port, "--metrics_port=" + port},
       "brrr-echo: --metrics_port=" + port + ": --admin_port is " + port + " on the same address (127.0.0.1); " +
           own_port},
      {{"--host=::1", "--port=" + port, "--metrics_host=::1", "--metrics_port=" + port},
       "brrr-echo: --metrics_port=" + port + ": --port is " + port + " on the same address (::1); " + own_port},
      // A wildcard address takes every address of its family: the bind would fail as well.
      {{"--host=0.0.0.0", "--port=" + port, "--metrics_port=" + port},
       "brrr-echo: --metrics_port=" + port + ": --port is " + port + " on 0.0.0.0, which takes 127.0.0.1 too; " +
           own_port},
      {{"--port=" + port, "--metrics_host=0.0.0.0", "--metrics_port=" + port},
       "brrr-echo: --metrics_port=" + port + ": --port is " + port + " on 127.0.0.1, which 0.0.0.0 takes too; " +
           own_port},
      {{"--host=::", "--port=" + port, "--metrics_host=::1", "--metrics_port=" + port},
       "brrr-echo: --metrics_port=" + port + ": --port is " + port + " on ::, which takes ::1 too; " + own_port},
      // The metrics port (and the admin plane) on :: take IPv4 addresses too; the echo listeners
      // on :: do not (IPv6-only), so --host=:: beside a side listener on 127.0.0.1 starts.
      {{"--port=" + port, "--metrics_host=::", "--metrics_port=" + port},
       "brrr-echo: --metrics_port=" + port + ": --port is " + port + " on 127.0.0.1, which :: takes too; " + own_port},
  };
  for (const Case& c : cases) {
    Process p(EchoBinary(), c.args);
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2) << c.args[1] << ": " << p.err();
    EXPECT_NE(p.err().find(c.message), std::string::npos) << p.err();
    EXPECT_EQ(p.out(), "") << p.out();
  }
  // The metrics port, not the admin plane: gRPC is not instrumented for ThreadSanitizer.
  for (std::string host : {"--host=127.0.0.1", "--host=::"}) {
    const std::string metrics_host = host == "--host=::" ? "127.0.0.1" : "127.0.0.2";
    Process apart(EchoBinary(), {host, "--port=" + port, "--metrics_host=" + metrics_host, "--metrics_port=" + port});
    EXPECT_EQ(apart.ListeningPort(), std::stoi(port)) << host << ": " << apart.err();
    EXPECT_TRUE(apart.WaitForOutput("metrics on ")) << host << ": " << apart.out() << apart.err();
    apart.Signal(SIGTERM);
    std::optional<int> code = apart.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << host << ": " << apart.err();
  }
}

// A descriptor limit that leaves nothing for echo connections once the planes' reserve is kept
// free stops the start (exit 3), naming the limit and the flags that make the reserve. 40
// descriptors: the reserve and those open at the start need more.
void ExpectTheReserveStopsTheStart(const std::vector<std::string>& args, const std::string& reserve,
                                   uint64_t limit = 40) {
  Process p(EchoBinary(), args, {.max_open_files = limit});
  std::optional<int> code = p.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3) << "limit " << limit << ": " << p.err();
  EXPECT_NE(p.err().find("the descriptor limit (RLIMIT_NOFILE) is " + std::to_string(limit) + ": with "),
            std::string::npos)
      << p.err();
  EXPECT_NE(p.err().find("none is left for echo connections; raise the limit (ulimit -n) or lower the reserve " +
                         reserve),
            std::string::npos)
      << p.err();
  EXPECT_EQ(p.out().find("listening on"), std::string::npos) << p.out();
}

TEST(EchoServerFlagsTest, ADescriptorLimitBelowTheAdminReserveStopsTheStart) {
  // TSan, with gRPC's library not built with it, reports a race on the descriptor of gRPC's
  // epoll as the process ends this early (exit 66); the plain, ASan+UBSan and -c opt runs cover
  // this test.
  if (testing::UnderSanitizer("tsan")) GTEST_SKIP() << "TSan reports gRPC's own epoll descriptor";
  ExpectTheReserveStopsTheStart({"--port=0", "--admin_port=" + std::to_string(testing::PickFreePort())},
                                "(the reserve is --admin_reserved_fds)");
}

// Fewer descriptors still: too few for gRPC to start, which aborted the process (SIGABRT,
// "Eventfd wakeup fd is not supported") from 14 to 18 descriptors with the default reserve, and
// at 14 and 15 with the smallest (--admin_max_connections=1, --admin_reserved_fds=11). The
// reserve is checked before gRPC starts: exit 3, saying why, as with more descriptors.
TEST(EchoServerFlagsTest, ADescriptorLimitTooLowForTheAdminPlaneToStartStopsTheStart) {
  if (testing::UnderSanitizer("tsan")) GTEST_SKIP() << "TSan reports gRPC's own epoll descriptor";
  for (uint64_t limit : {14, 15, 16, 17, 18}) {
    ExpectTheReserveStopsTheStart({"--port=0", "--admin_port=" + std::to_string(testing::PickFreePort()),
                                   "--metrics_port=" + std::to_string(testing::PickFreePort())},
                                  "(the reserve is --admin_reserved_fds + --metrics_max_connections + 1)", limit);
  }
  for (uint64_t limit : {14, 15, 16}) {
    ExpectTheReserveStopsTheStart({"--port=0", "--admin_port=" + std::to_string(testing::PickFreePort()),
                                   "--admin_max_connections=1", "--admin_reserved_fds=11"},
                                  "(the reserve is --admin_reserved_fds)", limit);
  }
}

TEST(EchoServerFlagsTest, ADescriptorLimitBelowTheMetricsReserveStopsTheStart) {
  ExpectTheReserveStopsTheStart({"--port=0", "--metrics_port=" + std::to_string(testing::PickFreePort()),
                                 "--metrics_max_connections=1000"},
                                "(the reserve is --metrics_max_connections + 1)");
}

// Where backends come from: --plugin_dir first, then $BRRR_PLUGIN_DIR, then the plugins next
// to the program (its runfiles here). Each directory holds its own copy of the poll plugin,
// and the server's memory map (/proc/PID/maps) shows which copy it loaded.
std::string CopyOfPlugin(const std::string& backend, const std::string& dir_name) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + dir_name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string to = dir + "/libbrrr_reactor_" + backend + ".so";
  std::filesystem::copy_file(testing::Runfile("reactors/libbrrr_reactor_" + backend + ".so"), to);
  return to;
}

// The path of the mapped file whose name ends in `file_name`, or "".
std::string MappedFile(pid_t pid, const std::string& file_name) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash != std::string::npos && line.size() >= file_name.size() &&
        line.compare(line.size() - file_name.size(), file_name.size(), file_name) == 0) {
      return line.substr(slash);
    }
  }
  return "";
}

TEST(EchoServerPluginsTest, PluginDirThenTheEnvironmentThenThePluginsBesideTheProgram) {
  std::string from_flag = CopyOfPlugin("poll", "flag_dir");
  std::string from_env = CopyOfPlugin("poll", "env_dir");
  std::string env_dir = from_env.substr(0, from_env.rfind('/'));
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::string expect;  // "" for the runfiles' copy
  };
  const std::vector<Case> cases = {
      {{"--plugin_dir=" + from_flag.substr(0, from_flag.rfind('/'))}, {"BRRR_PLUGIN_DIR=" + env_dir}, from_flag},
      {{}, {"BRRR_PLUGIN_DIR=" + env_dir}, from_env},
      {{}, {"BRRR_PLUGIN_DIR"}, ""},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--backend=poll", "--port=0"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Process p(EchoBinary(), args, {.env = c.env});
    uint16_t port = p.ListeningPort();
    ASSERT_NE(port, 0) << p.err();
    std::string mapped = MappedFile(p.pid(), "/libbrrr_reactor_poll.so");
    if (c.expect.empty()) {
      EXPECT_NE(mapped, "") << "no poll plugin mapped";
      EXPECT_NE(mapped, from_flag);
      EXPECT_NE(mapped, from_env);
    } else {
      EXPECT_EQ(mapped, c.expect) << (c.args.empty() ? "" : c.args[0]);
    }
    BlockingClient client(port);
    ASSERT_TRUE(client.send_all("poll"));
    EXPECT_EQ(client.recv_exact(4), "poll");
    client.close();
    p.Signal(SIGTERM);
    EXPECT_EQ(p.Wait(seconds(30)), 0) << p.err();
  }
}

// --list_backends: one line per backend with whether it starts here (the same answer the
// tests' own probe gives), what `auto` picks, and plugins found through $BRRR_PLUGIN_DIR too.
TEST(EchoServerPluginsTest, ListBackendsSaysWhatStartsHereAndWhatAutoPicks) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/list_env";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string crashes = dir + "/libbrrr_reactor_crashes.so";
  std::filesystem::create_symlink(testing::Runfile("tests/reactors/libbrrr_reactor_crashes.so"), crashes);
  Process p(EchoBinary(), {"--list_backends"}, {.env = {"BRRR_PLUGIN_DIR=" + dir}});
  std::optional<int> code = p.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << p.err();
  std::string best;
  for (const char* name : {"io_uring", "epoll", "poll", "select"}) {
    std::string why;
    bool starts = testing::BackendStarts(name, &why);
    std::string label = std::string(name) + std::string(10 - std::string(name).size(), ' ');
    if (starts) {
      EXPECT_NE(p.out().find(label + "starts here\n"), std::string::npos) << name << ":\n" << p.out();
      if (best.empty()) best = name;
    } else {
      EXPECT_NE(p.out().find(label + "cannot start: "), std::string::npos) << name << ":\n" << p.out();
    }
  }
  EXPECT_NE(p.out().find("crashes   cannot start: " + crashes + ": the probe crashed (SIGBUS)"), std::string::npos)
      << p.out();
  ASSERT_FALSE(best.empty());
  EXPECT_NE(p.out().find("auto      -> " + best + "\n"), std::string::npos) << p.out();
}

// Where no backend starts (each one shadowed by a file that holds another backend),
// --list_backends says so and exits 3, as the start itself would.
TEST(EchoServerPluginsTest, ListBackendsExits3WhenNoBackendStarts) {
  std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/list_none";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* name : {"io_uring", "epoll", "poll", "select"}) {
    std::filesystem::create_symlink(testing::Runfile("tests/reactors/libbrrr_reactor_crashes.so"),
                                    dir + "/libbrrr_reactor_" + name + ".so");
  }
  Process list(EchoBinary(), {"--list_backends", "--plugin_dir=" + dir});
  std::optional<int> code = list.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3) << list.err();
  for (const std::string name : {"io_uring", "epoll", "poll", "select"}) {
    std::string label = name + std::string(10 - name.size(), ' ');
    EXPECT_NE(list.out().find(label + "cannot start: " + dir + "/libbrrr_reactor_" + name +
                              ".so: the file is named for backend \"" + name + "\" but holds backend \"crashes\""),
              std::string::npos)
        << list.out();
  }
  EXPECT_NE(list.out().find("auto      -> --backend=auto: no backend starts here"), std::string::npos) << list.out();

  Process start(EchoBinary(), {"--port=0", "--plugin_dir=" + dir});
  code = start.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3) << start.err();
}

// --version says the program and brrr's version and exits 0 (it said "Debug build" and exited
// 1, the code for bad flags); a --flagfile that is a directory is refused (absl read it as an
// empty file and the server started on its defaults).
TEST(EchoServerFlagsTest, VersionAndAFlagfileThatIsADirectory) {
  Process version(EchoBinary(), {"--version"});
  EXPECT_EQ(version.Wait(seconds(30)), 0) << version.err();
  EXPECT_EQ(version.out(), "brrr-echo 0.1.0\n") << version.err();
  const std::string dir = std::getenv("TEST_TMPDIR");
  Process flagfile(EchoBinary(), {"--port=0", "--flagfile=" + dir});
  EXPECT_EQ(flagfile.Wait(seconds(30)), 1) << flagfile.out();
  EXPECT_NE(flagfile.err().find("brrr-echo: --flagfile=" + dir + ": is a directory, not a file of flags"),
            std::string::npos)
      << flagfile.err();
  EXPECT_EQ(flagfile.out().find("listening on"), std::string::npos) << flagfile.out();
  // The same with the directory as the next argument (--flagfile DIR), which absl takes too.
  Process spaced(EchoBinary(), {"--port=0", "--flagfile", dir});
  EXPECT_EQ(spaced.Wait(seconds(30)), 1) << spaced.out();
  EXPECT_NE(spaced.err().find("brrr-echo: --flagfile=" + dir + ": is a directory, not a file of flags"),
            std::string::npos)
      << spaced.err();
  EXPECT_EQ(spaced.out().find("listening on"), std::string::npos) << spaced.out();
}

// What --help, --version and --list_backends print, when it cannot be written (stdout on a full
// disk), is an error: exit 6 and why on stderr, as brrrctl does (it exited 0, as if printed).
TEST(EchoServerFlagsTest, WhatItCannotPrintIsAnError) {
  for (const char* flag : {"--help", "--version", "--list_backends"}) {
    Process p("/bin/sh", testing::StdoutOnAFullDisk(EchoBinary(), {flag}));
    std::optional<int> code = p.Wait(seconds(60));
    ASSERT_TRUE(code.has_value()) << flag;
    EXPECT_EQ(*code, 6) << flag << ": " << p.err();
    EXPECT_NE(p.err().find("brrr-echo: cannot write to standard output: No space left on device"), std::string::npos)
        << flag << ": " << p.err();
  }
}

// A flag that does not exist is a usage error beside --help or --version too (exit 1, stdout
// empty), as brrrctl's is: absl printed the help or version and exited 0. Flags that exist
// (`--port 6000`, `--nolist_backends`, names in --undefok) do not stop them.
TEST(EchoServerFlagsTest, AnUnknownFlagBesideHelpOrVersionIsAUsageError) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--version", "--bogus"}, {"--help", "--bogus=1"}, {"--nobogus", "--helpfull"}, {"--version", "--noport"}}) {
    Process p(EchoBinary(), args);
    EXPECT_EQ(p.Wait(seconds(30)), 1) << args[0] << " " << args[1] << ": " << p.err();
    EXPECT_NE(p.err().find("brrr-echo: unknown flag " + std::string(args[0] == "--nobogus" ? args[0] : args[1])),
              std::string::npos)
        << p.err();
    EXPECT_EQ(p.out(), "") << args[0] << " " << args[1];
  }
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--version", "--port", "6000"},
                                             {"--version", "--nolist_backends"},
                                             {"--undefok=zz", "--zz", "--version"}}) {
    Process p(EchoBinary(), args);
    EXPECT_EQ(p.Wait(seconds(30)), 0) << args[1] << ": " << p.err();
    EXPECT_EQ(p.out(), "brrr-echo 0.1.0\n") << args[1] << ": " << p.err();
  }
}

TEST(EchoServerFlagsTest, HelpDescribesTheServerAndExitsZero) {
  Process p(EchoBinary(), {"--help"});
  EXPECT_EQ(p.Wait(seconds(30)), 0) << p.err();
  std::string all = p.out() + p.err();
  EXPECT_NE(all.find("brrr's TCP echo server"), std::string::npos) << all;
  EXPECT_NE(all.find("--reply_prefix"), std::string::npos);
  // The help is wrapped: compare with single spaces.
  std::string flat;
  for (char c : all) {
    bool space = c == ' ' || c == '\n';
    if (!space || (!flat.empty() && flat.back() != ' ')) flat += space ? ' ' : c;
  }
  EXPECT_NE(flat.find("this prefix, as the tutorial's server answers \"Echo : ...\"; at most 4096 bytes"),
            std::string::npos)
      << "--reply_prefix's maximum: " << flat;
  EXPECT_NE(flat.find("never has more than this plus --recv_buffer_size queued"), std::string::npos)
      << "the queue bound, in --high_water's help";
  EXPECT_NE(all.find("--backend"), std::string::npos);
  // Each whole-number option's flag states its range as the server's options declare it, where
  // Validate checks it.
  const std::vector<std::pair<std::string, IntegerRange>> ranges = {
      {"loops", server::kLoopsRange},
      {"max_connections", server::kMaxConnectionsRange},
      {"high_water", server::kHighWaterRange},
      {"recv_buffer_size", server::kReceiveBufferSizeRange},
      {"recv_buffers", server::kReceiveBuffersRange},
  };
  // And each duration option's.
  const std::vector<std::pair<std::string, DurationRange>> duration_ranges = {
      {"idle_timeout", server::kIdleTimeoutRange},   {"drain_timeout", server::kDrainTimeoutRange},
      {"drain_grace", server::kDrainGraceRange},     {"stall_threshold", server::kStallThresholdRange},
      {"idle_poll", server::kIdlePollRange},
  };
  // And brrr-echo's own (server/brrr-echo/flag_ranges.h), --admin_reserved_fds's by
  // --admin_max_connections.
  const std::vector<std::pair<std::string, IntegerRange>> own_ranges = {
      {"port", echo_flags::kPortRange},
      {"admin_max_connections", echo_flags::kAdminMaxConnectionsRange},
      {"admin_max_calls", echo_flags::kAdminMaxCallsRange},
      {"metrics_max_connections", echo_flags::kMetricsMaxConnectionsRange},
  };
  const std::vector<std::pair<std::string, DurationRange>> own_duration_ranges = {
      {"admin_max_block", echo_flags::kAdminMaxBlockRange},
      {"admin_idle_timeout", echo_flags::kAdminIdleTimeoutRange},
      {"admin_unread_timeout", echo_flags::kAdminUnreadTimeoutRange},
  };
  std::vector<std::pair<std::string, std::string>> stated;
  for (const auto& [flag, range] : ranges) stated.emplace_back(flag, range.ToString());
  for (const auto& [flag, range] : duration_ranges) stated.emplace_back(flag, range.ToString());
  for (const auto& [flag, range] : own_ranges) stated.emplace_back(flag, range.ToString());
  for (const auto& [flag, range] : own_duration_ranges) stated.emplace_back(flag, range.ToString());
  stated.emplace_back("admin_reserved_fds", echo_flags::kAdminReservedFdsRange.ToString());
  EXPECT_EQ(echo_flags::kAdminReservedFdsRange.ToString(), "3 x --admin_max_connections + 8 to 1000000");
  // --low_water's by --high_water; the side listeners' ports say what 0 means.
  stated.emplace_back("low_water", server::kLowWaterRange.ToString());
  EXPECT_EQ(server::kLowWaterRange.ToString(), "0 bytes to --high_water - 1");
  stated.emplace_back("admin_port", echo_flags::kAdminPortRange.ToString());
  EXPECT_EQ(echo_flags::kAdminPortRange.ToString(), "0 to 65535 (0: no admin plane)");
  stated.emplace_back("metrics_port", echo_flags::kMetricsPortRange.ToString());
  EXPECT_EQ(echo_flags::kMetricsPortRange.ToString(), "0 to 65535 (0: no metrics port)");
  for (const auto& [flag, range] : stated) {
    size_t start = flat.find(" --" + flag + " (");
    ASSERT_NE(start, std::string::npos) << flag << ": " << flat;
    std::string help = flat.substr(start, flat.find("; default: ", start) - start);
    EXPECT_NE(help.find(range), std::string::npos) << "--" << flag << " does not say " << range << ": " << help;
  }
}

}  // namespace
}  // namespace brrr
