// brrr-echo with a damaged or mislabelled plugin file in its --plugin_dir, through every way in:
// --backend=NAME refuses it (exit 3) with the file and the reason, --list_backends lists it as
// "cannot start" with the reason and exits normally, and --backend=auto skips it. Before the
// ELF check and the probes in child processes, a file cut short killed brrr-echo with SIGBUS.
// Also a backend that starts on a server's first loops but not on a later one.
#include <link.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/reactors/damaged_plugins.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::DamageKind;
using testing::Process;

std::string EchoBinary() { return testing::Runfile("server/brrr-echo/brrr-echo"); }

std::string DirFor(const std::string& test, DamageKind kind) {
  return testing::FreshDir(test + "_" + std::to_string(static_cast<int>(kind)));
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The server on `port` echoes a line, then drains on SIGTERM and exits 0.
void ExpectServesThenDrains(Process& p, uint16_t port, const std::string& line) {
  testing::BlockingClient client(port);
  ASSERT_TRUE(client.send_all(line));
  EXPECT_EQ(client.recv_exact(line.size()), line);
  client.close();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(seconds(30)), 0) << p.err();
}

// The dynamic loader this program was started by (its PT_INTERP), or "".
std::string DynamicLoader() {
  std::string path;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          if (info->dlpi_phdr[i].p_type != PT_INTERP) continue;
          *static_cast<std::string*>(out) = reinterpret_cast<const char*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
          return 1;
        }
        return 1;  // the first entry is the program itself: only its header counts
      },
      &path);
  return path;
}

TEST(DamagedPluginTest, ABackendWhoseFileIsDamagedIsRefusedWithExitCode3) {
  for (DamageKind kind : testing::AllDamageKinds()) {
    SCOPED_TRACE(testing::DamageName(kind));
    std::string dir = DirFor("refused", kind);
    std::string path = dir + "/libbrrr_reactor_epoll.so";
    std::string reason = testing::WriteDamagedPlugin(kind, "epoll", path);
    Process p(EchoBinary(), {"--backend=epoll", "--plugin_dir=" + dir, "--port=0"});
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 3) << p.err();
    EXPECT_TRUE(Contains(p.err(), "brrr-echo: ")) << p.err();
    EXPECT_TRUE(Contains(p.err(), path + ": ")) << p.err();
    EXPECT_TRUE(Contains(p.err(), reason)) << p.err() << "\nlacks: " << reason;
    EXPECT_TRUE(Contains(p.err(), "Available here: ")) << p.err();
  }
}

TEST(DamagedPluginTest, ListBackendsListsADamagedFileAsCannotStart) {
  for (DamageKind kind : testing::AllDamageKinds()) {
    SCOPED_TRACE(testing::DamageName(kind));
    std::string dir = DirFor("listed", kind);
    std::string path = dir + "/libbrrr_reactor_epoll.so";
    std::string reason = testing::WriteDamagedPlugin(kind, "epoll", path);
    Process p(EchoBinary(), {"--list_backends", "--plugin_dir=" + dir});
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << p.err();
    EXPECT_TRUE(Contains(p.out(), "epoll     cannot start: " + path + ": ")) << p.out();
    EXPECT_TRUE(Contains(p.out(), reason)) << p.out() << "\nlacks: " << reason;
    EXPECT_TRUE(Contains(p.out(), "poll      starts here\n")) << p.out();
    EXPECT_TRUE(Contains(p.out(), "auto      -> ")) << p.out();
    EXPECT_FALSE(Contains(p.out(), "auto      -> epoll")) << p.out();
  }
}

TEST(DamagedPluginTest, AutoSkipsADamagedFileAndServes) {
  for (DamageKind kind : testing::AllDamageKinds()) {
    SCOPED_TRACE(testing::DamageName(kind));
    std::string dir = DirFor("auto", kind);
    // io_uring is the first `auto` tries; the real epoll comes from the runfiles.
    testing::WriteDamagedPlugin(kind, "io_uring", dir + "/libbrrr_reactor_io_uring.so");
    Process p(EchoBinary(), {"--backend=auto", "--plugin_dir=" + dir, "--port=0"});
    uint16_t port = p.ListeningPort();
    ASSERT_NE(port, 0) << p.err();
    EXPECT_TRUE(Contains(p.out(), "(backend epoll,")) << p.out();
    ExpectServesThenDrains(p, port, "still serving\n");
  }
}

// A plugin whose create() dies of SIGBUS: its probe's child dies, the listing goes on.
TEST(DamagedPluginTest, ListBackendsReportsAPluginThatCrashes) {
  std::string dir = testing::FreshDir("crashes");
  std::string path = dir + "/libbrrr_reactor_crashes.so";
  ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/libbrrr_reactor_crashes.so").c_str(), path.c_str()), 0);
  Process p(EchoBinary(), {"--list_backends", "--plugin_dir=" + dir});
  std::optional<int> code = p.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << p.err();
  EXPECT_TRUE(Contains(p.out(), "crashes   cannot start: " + path + ": the probe crashed (SIGBUS)")) << p.out();
  EXPECT_TRUE(Contains(p.out(), "epoll     starts here\n")) << p.out();
}

// A well-formed plugin whose create() dies of SIGBUS, given by name or in `auto`'s way: it is
// tried in a child process before it is loaded into the server, so the server refuses it with
// the reason (exit 3) or, for `auto`, serves on the next backend. Before, the server died of it.
TEST(DamagedPluginTest, ABackendThatCrashesAsItStartsIsRefusedAndAutoServesOnTheNext) {
  std::string dir = testing::FreshDir("crashes_start");
  std::string crashes = dir + "/libbrrr_reactor_crashes.so";
  ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/libbrrr_reactor_crashes.so").c_str(), crashes.c_str()), 0);
  std::string io_uring = dir + "/libbrrr_reactor_io_uring.so";
  ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/stand_ins/crashing/libbrrr_reactor_io_uring.so").c_str(),
                      io_uring.c_str()),
            0);

  for (const std::string& backend : {std::string("crashes"), std::string("io_uring")}) {
    SCOPED_TRACE(backend);
    Process p(EchoBinary(), {"--backend=" + backend, "--plugin_dir=" + dir, "--port=0"});
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 3) << p.err();
    EXPECT_TRUE(Contains(p.err(), dir + "/libbrrr_reactor_" + backend + ".so: the probe crashed (SIGBUS)")) << p.err();
  }

  // io_uring is the first `auto` tries; the real epoll comes from the runfiles. Every loop runs
  // the first loop's pick, and the server says what it passed over.
  Process p(EchoBinary(), {"--backend=auto", "--plugin_dir=" + dir, "--port=0", "--loops=2"});
  uint16_t port = p.ListeningPort();
  ASSERT_NE(port, 0) << p.err();
  EXPECT_TRUE(Contains(p.out(), "(backend epoll, 2 loops,")) << p.out();
  ASSERT_TRUE(p.WaitForOutput("--backend=auto passed over ", seconds(10))) << p.out();
  EXPECT_TRUE(Contains(p.out(), "brrr-echo: --backend=auto passed over " + io_uring +
                                    ": the probe crashed (SIGBUS) while loading and starting the plugin in a "
                                    "child process\n"))
      << p.out();
  ExpectServesThenDrains(p, port, "served\n");
  // Once it has exited, all it printed is in: one line passed over.
  EXPECT_EQ(p.out().find("passed over"), p.out().rfind("passed over")) << "only io_uring comes before epoll\n"
                                                                        << p.out();
}

// A plugin whose create() calls exit(0): before the trial, brrr-echo ended with status 0 before
// it listened, as if it had been asked to stop; now it is refused with the reason (exit 3).
TEST(DamagedPluginTest, ABackendThatExitsAsItStartsIsRefusedWithExitCode3) {
  std::string dir = testing::FreshDir("exits_start");
  std::string exits = dir + "/libbrrr_reactor_exits.so";
  ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/libbrrr_reactor_exits.so").c_str(), exits.c_str()), 0);
  Process p(EchoBinary(), {"--backend=exits", "--plugin_dir=" + dir, "--port=0"});
  std::optional<int> code = p.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3) << p.err();
  EXPECT_TRUE(Contains(p.err(), exits + ": the plugin ended the probe process (exit status 0)")) << p.err();
  EXPECT_FALSE(Contains(p.out(), "listening")) << p.out();
}

// brrr-echo started through the dynamic loader (ld.so brrr-echo): /proc/self/exe is then the
// loader, which runs a probe's plugin file as a program and dies of SIGSEGV. That says nothing
// about the plugin: the listing says "cannot probe" instead of "crashed", and the server loads
// its backend untried and serves (before, every backend was refused as crashing).
TEST(DamagedPluginTest, AServerStartedThroughTheDynamicLoaderCannotProbeButServes) {
  if (testing::UnderSanitizer("tsan")) GTEST_SKIP() << "TSan does not run a program mapped by an explicit ld.so";
  std::string loader = DynamicLoader();
  ASSERT_FALSE(loader.empty());
  std::string plugins = "--plugin_dir=" + testing::Runfile("reactors");

  Process list(loader, {EchoBinary(), "--list_backends", plugins});
  std::optional<int> code = list.Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_TRUE(Contains(list.out(), "epoll     cannot start: ")) << list.out();
  // How the loader's child ends is the loader's business (SIGSEGV; under ASan its runtime
  // aborts first): nothing in it blames the plugin.
  EXPECT_TRUE(Contains(list.out(), "libbrrr_reactor_epoll.so: cannot probe: the probe process ")) << list.out();
  EXPECT_FALSE(Contains(list.out(), "crashed")) << list.out();

  Process p(loader, {EchoBinary(), "--backend=epoll", plugins, "--port=0"});
  uint16_t port = p.ListeningPort();
  ASSERT_NE(port, 0) << p.err();
  EXPECT_TRUE(Contains(p.out(), "(backend epoll,")) << p.out();
  ExpectServesThenDrains(p, port, "served\n");
}

// A plugin whose create() never returns: refused when its trial in a child process times out
// (PluginLoader::kProbeTimeout), where the server used to hang before it listened.
TEST(DamagedPluginTest, ABackendThatHangsAsItStartsIsRefusedAtTheProbeTimeout) {
  std::string dir = testing::FreshDir("hangs_start");
  std::string hangs = dir + "/libbrrr_reactor_hangs.so";
  ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/stand_ins/libbrrr_reactor_hangs.so").c_str(), hangs.c_str()), 0);
  Process p(EchoBinary(), {"--backend=hangs", "--plugin_dir=" + dir, "--port=0"});
  std::optional<int> code = p.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "still starting after 60 s";
  EXPECT_EQ(*code, 3) << p.err();
  EXPECT_TRUE(Contains(p.err(), hangs + ": the probe did not answer within 10 s")) << p.err();
}

// io_uring that sets up two rings per process and no more (tests/reactors/faults/ring_limit_shim.c,
// as a kernel that charges rings refuses one past the user's RLIMIT_MEMLOCK): loops 0 and 1 start on
// it, loop 2 cannot. Named, the server says which loop could not (exit 3). With `auto` it
// serves on epoll, every loop of it, and says why it passed over io_uring; before, the other
// loops took loop 0's pick by name and `auto` ended with exit 3 while epoll started.
TEST(AutoBackendTest, ABackendThatALaterLoopCannotStartIsPassedOverForEveryLoop) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS("io_uring");
  std::string dir = testing::FreshDir("ring_limit");
  std::string io_uring = dir + "/libbrrr_reactor_io_uring.so";
  ASSERT_EQ(::symlink(testing::Runfile("tests/reactors/faults/ring_limit/libbrrr_reactor_io_uring.so").c_str(),
                      io_uring.c_str()),
            0);
  testing::ProcessOptions two_rings;
  two_rings.env = {"BRRR_FAULT_RINGS=2"};
  const std::string refused = "backend \"io_uring\" (" + io_uring + ") cannot start here: io_uring_queue_init: ";

  Process named(EchoBinary(), {"--backend=io_uring", "--plugin_dir=" + dir, "--port=0", "--loops=4"}, two_rings);
  std::optional<int> code = named.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 3) << named.err();
  EXPECT_TRUE(Contains(named.err(), "brrr-echo: loop 2 (loops 0 to 1 started): " + refused)) << named.err();

  Process p(EchoBinary(), {"--backend=auto", "--plugin_dir=" + dir, "--port=0", "--loops=4"}, two_rings);
  uint16_t port = p.ListeningPort();
  ASSERT_NE(port, 0) << p.err();
  EXPECT_TRUE(Contains(p.out(), "(backend epoll, 4 loops,")) << p.out();
  ASSERT_TRUE(p.WaitForOutput("--backend=auto passed over ", seconds(10))) << p.out();
  EXPECT_TRUE(Contains(p.out(),
                       "brrr-echo: --backend=auto passed over io_uring (it started on loops 0 to 1, not on "
                       "loop 2): " +
                           refused))
      << p.out();
  ExpectServesThenDrains(p, port, "served\n");
  EXPECT_EQ(p.out().find("passed over"), p.out().rfind("passed over")) << p.out();  // all of it, once exited
}

}  // namespace
}  // namespace brrr
