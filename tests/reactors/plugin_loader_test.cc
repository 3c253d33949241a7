// The plugin loader: every built backend loads by name and by path; every way a plugin can be
// wrong gives an error that names the file, the reason and the backends that are available;
// a damaged or mislabelled file is refused, never fatal, whether loaded, probed or skipped by
// `auto`; probes run in child processes, so a plugin that crashes or hangs is only reported.
#include "runtime/plugin_loader.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/reactor.h"
#include "tests/reactors/damaged_plugins.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

std::string Runfiles(const std::string& path) {
  const char* root = std::getenv("TEST_SRCDIR");
  return std::string(root != nullptr ? root : ".") + "/brrr/" + path;
}

std::string TestPlugin(const std::string& name) {
  return Runfiles("tests/reactors/libbrrr_reactor_" + name + ".so");
}

// A well-formed test plugin named after a real backend (tests/reactors/stand_ins).
std::string StandIn(const std::string& name) {
  return Runfiles("tests/reactors/stand_ins/libbrrr_reactor_" + name + ".so");
}

// A well-formed test plugin that claims to be io_uring, the first `auto` tries, and whose
// create() dies of SIGBUS (tests/reactors/stand_ins/crashing).
std::string CrashingIoUring() { return Runfiles("tests/reactors/stand_ins/crashing/libbrrr_reactor_io_uring.so"); }

// A fresh directory under the test's temporary directory.
std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name;
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

bool Contains(absl::string_view haystack, absl::string_view needle) {
  return haystack.find(needle) != absl::string_view::npos;
}

size_t Occurrences(absl::string_view haystack, absl::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != absl::string_view::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

TEST(PluginLoaderTest, EveryBuiltBackendLoadsByName) {
  PluginLoader loader = PluginLoader::Default();
  for (const std::string& name : testing::AllBackends()) {
    auto plugin = loader.Load(name);
    ASSERT_TRUE(plugin.ok()) << name << ": " << plugin.status();
    EXPECT_EQ((*plugin)->name(), name);
    EXPECT_TRUE(std::string_view((*plugin)->path()).ends_with("/libbrrr_reactor_" + name + ".so"));
    EXPECT_FALSE((*plugin)->description().empty());
  }
}

// An owner may hold a Reactor by value (EventLoop does): moving it hands the backend over, and
// the emptied Reactor's destruction leaves the backend alone.
TEST(PluginLoaderTest, AMovedReactorKeepsItsBackendAndTheEmptiedOneDestroysNothing) {
  PluginLoader loader = PluginLoader::Default();
  for (const std::string& name : testing::AllBackends()) {
    auto reactor = loader.CreateReactor(name);
    ASSERT_TRUE(reactor.ok()) << name << ": " << reactor.status();
    Reactor moved(std::move(**reactor));
    reactor->reset();  // the emptied one
    EXPECT_EQ(moved.name(), name);
    moved.wake();
    std::array<Completion, 4> out;
    auto n = moved.wait(out, 5'000'000'000);
    ASSERT_TRUE(n.ok()) << name << ": " << n.status();
    EXPECT_EQ(*n, 0) << name;
  }
}

TEST(PluginLoaderTest, LoadsByPath) {
  auto plugin = PluginLoader({}).Load(Runfiles("reactors/libbrrr_reactor_poll.so"));
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  EXPECT_EQ((*plugin)->name(), "poll");
}

TEST(PluginLoaderTest, AMissingBackendNamesTheFileTheDirectoriesAndWhatIsAvailable) {
  PluginLoader loader({Runfiles("reactors")});
  auto plugin = loader.Load("kqueue");
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kNotFound);
  absl::string_view m = plugin.status().message();
  EXPECT_TRUE(Contains(m, "libbrrr_reactor_kqueue.so")) << m;
  EXPECT_TRUE(Contains(m, Runfiles("reactors"))) << m;
  EXPECT_TRUE(Contains(m, "Available here: ")) << m;
  EXPECT_TRUE(Contains(m, "epoll")) << m;
  EXPECT_TRUE(Contains(m, "select")) << m;
}

TEST(PluginLoaderTest, AWrongAbiVersionIsRefused) {
  PluginLoader loader({Runfiles("reactors")});
  std::string path = TestPlugin("wrongabi");
  auto plugin = loader.Load(path);
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::string_view m = plugin.status().message();
  EXPECT_TRUE(Contains(m, path)) << m;
  EXPECT_TRUE(Contains(m, "plugin ABI version 1001, but this runtime speaks version 1")) << m;
  EXPECT_TRUE(Contains(m, "rebuild the plugin")) << m;
  EXPECT_TRUE(Contains(m, "Available here: ")) << m;
}

TEST(PluginLoaderTest, AMissingEntryPointIsRefused) {
  std::string path = TestPlugin("noentry");
  auto plugin = PluginLoader({}).Load(path);
  ASSERT_FALSE(plugin.ok());
  absl::string_view m = plugin.status().message();
  EXPECT_TRUE(Contains(m, path)) << m;
  EXPECT_TRUE(Contains(m, "not a brrr reactor plugin: it does not export brrr_reactor_entry()")) << m;
}

TEST(PluginLoaderTest, ATableTooSmallIsRefused) {
  auto plugin = PluginLoader({}).Load(TestPlugin("shorttable"));
  ASSERT_FALSE(plugin.ok());
  EXPECT_TRUE(Contains(plugin.status().message(), "plugin table is 16 bytes")) << plugin.status();
}

// The runtime calls every required function without looking: a table that leaves one empty
// would crash the loop at its first use (release_fd: the first socket closed), so it is refused
// as it loads.
TEST(PluginLoaderTest, ATableThatLeavesARequiredFunctionEmptyIsRefused) {
  std::string path = TestPlugin("norelease");
  auto plugin = PluginLoader({}).Load(path);
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::string_view m = plugin.status().message();
  EXPECT_TRUE(Contains(m, path)) << m;
  EXPECT_TRUE(Contains(m, "plugin \"norelease\" leaves a required function empty")) << m;
}

TEST(PluginLoaderTest, AFileThatIsNotASharedObjectIsRefused) {
  std::string dir = TempDir("garbage");
  std::string path = dir + "/libbrrr_reactor_garbage.so";
  std::ofstream(path) << "this is not an ELF file\n";
  auto plugin = PluginLoader({dir}).Load("garbage");
  ASSERT_FALSE(plugin.ok());
  absl::string_view m = plugin.status().message();
  EXPECT_TRUE(Contains(m, path + ": cannot load plugin: ")) << m;
}

TEST(PluginLoaderTest, ABackendTheKernelRefusesSaysWhy) {
  PluginLoader loader({Runfiles("reactors")});
  auto plugin = loader.Load(TestPlugin("refuses"));
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  auto reactor = Reactor::Create(*plugin);
  ASSERT_FALSE(reactor.ok());
  EXPECT_EQ(reactor.status().code(), absl::StatusCode::kUnavailable);
  absl::string_view m = reactor.status().message();
  EXPECT_TRUE(Contains(m, "backend \"refuses\"")) << m;
  EXPECT_TRUE(Contains(m, "cannot start here: test_setup: Operation not permitted")) << m;
  auto via_loader = loader.CreateReactor(TestPlugin("refuses"));
  ASSERT_FALSE(via_loader.ok());
  EXPECT_TRUE(Contains(via_loader.status().message(), "Available here: ")) << via_loader.status();
}

// A plugin that claims more completions than the room it was given: an error naming it, not a
// count that would have the loop read past the room.
TEST(PluginLoaderTest, AWaitThatClaimsMoreCompletionsThanItsRoomIsAnError) {
  auto plugin = PluginLoader({}).Load(TestPlugin("overflows"));
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  auto reactor = Reactor::Create(*plugin);
  ASSERT_TRUE(reactor.ok()) << reactor.status();
  std::vector<Completion> room(4);
  absl::StatusOr<int> n = (*reactor)->wait(room, 0);
  ASSERT_FALSE(n.ok()) << "a count of " << *n << " for a room of 4";
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(Contains(n.status().message(), "backend \"overflows\": wait returned 5 completions where 4 fit"))
      << n.status();
}

// A seccomp filter that makes io_uring_setup(2) fail with EPERM, as a container runtime's
// default profile does. Everything else is allowed. Returns whether it is installed.
bool ForbidIoUringSetup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// The real io_uring plugin in a process whose seccomp policy refuses io_uring: a clear
// reason, and `auto` falls back to epoll. Runs in a child: a filter cannot be removed.
TEST(PluginLoaderTest, IoUringRefusedBySeccompSaysWhyAndAutoFallsBack) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string report;
    if (!ForbidIoUringSetup()) {
      report = "could not install the seccomp filter";
    } else {
      PluginLoader loader({Runfiles("reactors")});
      auto refused = loader.CreateReactor("io_uring");
      auto fallback = loader.CreateReactor("auto");
      report = (refused.ok() ? std::string("io_uring started") : std::string(refused.status().message())) +
               "\n" + (fallback.ok() ? (*fallback)->name() : std::string(fallback.status().message()));
    }
    ssize_t written = ::write(pipe_fds[1], report.data(), report.size());
    ::_exit(written == static_cast<ssize_t>(report.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) report.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << report;
  size_t newline = report.find('\n');
  ASSERT_NE(newline, std::string::npos) << report;
  std::string refused = report.substr(0, newline);
  EXPECT_TRUE(Contains(refused, "libbrrr_reactor_io_uring.so")) << refused;
  EXPECT_TRUE(Contains(refused, "io_uring_queue_init: Operation not permitted")) << refused;
  EXPECT_EQ(Occurrences(refused, "io_uring_queue_init: Operation not permitted"), 1u)
      << "the reason told once, not again among what is not usable: " << refused;
  EXPECT_TRUE(Contains(refused, "seccomp")) << refused;
  EXPECT_TRUE(Contains(refused, "Available here: epoll")) << refused;
  EXPECT_EQ(report.substr(newline + 1), "epoll");
}

// `auto` tries io_uring, epoll, poll, select in turn and takes the first that starts.
TEST(PluginLoaderTest, AutoSkipsBackendsThatCannotStartAndSaysSo) {
  std::string dir = TempDir("auto");
  ::unlink((dir + "/libbrrr_reactor_io_uring.so").c_str());
  ::unlink((dir + "/libbrrr_reactor_epoll.so").c_str());
  // "io_uring" here is a plugin the kernel refuses; "epoll" is the real one.
  ASSERT_EQ(::symlink(StandIn("io_uring").c_str(), (dir + "/libbrrr_reactor_io_uring.so").c_str()), 0);
  ASSERT_EQ(::symlink(Runfiles("reactors/libbrrr_reactor_epoll.so").c_str(),
                      (dir + "/libbrrr_reactor_epoll.so").c_str()),
            0);
  PluginLoader loader({dir});
  auto reactor = loader.CreateReactor("auto");
  ASSERT_TRUE(reactor.ok()) << reactor.status();
  EXPECT_EQ((*reactor)->name(), "epoll");
  std::string summary = loader.AvailabilitySummary();
  EXPECT_TRUE(Contains(summary, "Available here: epoll")) << summary;
  EXPECT_TRUE(Contains(summary, "io_uring: backend \"io_uring\"")) << summary;
  EXPECT_TRUE(Contains(summary, "cannot start here: test_setup: Operation not permitted")) << summary;
}

// A plugin that would crash this process as it starts is tried in a child process first: an
// error naming the crash, and this process carries on (before, it died of the SIGBUS).
TEST(PluginLoaderTest, CreatingABackendThatCrashesAsItStartsIsAnErrorNotACrash) {
  PluginLoader loader({Runfiles("tests/reactors")});
  for (const std::string& backend : {std::string("crashes"), TestPlugin("crashes")}) {
    SCOPED_TRACE(backend);
    auto reactor = loader.CreateReactor(backend);
    ASSERT_FALSE(reactor.ok());
    EXPECT_EQ(reactor.status().code(), absl::StatusCode::kUnavailable);
    absl::string_view m = reactor.status().message();
    EXPECT_TRUE(Contains(m, TestPlugin("crashes") + ": the probe crashed (SIGBUS) while loading and starting the "
                                                    "plugin in a child process")) << m;
    EXPECT_TRUE(Contains(m, "Available here: ")) << m;
  }
}

// A plugin whose create() calls exit(0) would end this process, with a success status: tried
// in a child process, it is refused with what it printed last, and this process carries on.
TEST(PluginLoaderTest, CreatingABackendThatExitsAsItStartsIsAnErrorNotAnExit) {
  auto reactor = PluginLoader({Runfiles("tests/reactors")}).CreateReactor("exits");
  ASSERT_FALSE(reactor.ok());
  EXPECT_EQ(reactor.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(reactor.status().message(),
                       TestPlugin("exits") + ": the plugin ended the probe process (exit status 0) while it was "
                                             "loaded and started in a child process, without an answer: test "
                                             "plugin: exiting from create()"))
      << reactor.status();
}

TEST(PluginLoaderTest, AutoSkipsABackendThatCrashesAsItStarts) {
  std::string dir = testing::FreshDir("auto_crashing");
  ASSERT_EQ(::symlink(CrashingIoUring().c_str(), (dir + "/libbrrr_reactor_io_uring.so").c_str()), 0);
  ASSERT_EQ(::symlink(Runfiles("reactors/libbrrr_reactor_epoll.so").c_str(), (dir + "/libbrrr_reactor_epoll.so").c_str()),
            0);
  std::vector<std::string> passed_over;
  auto reactor = PluginLoader({dir}).CreateReactor("auto", {}, &passed_over);
  ASSERT_TRUE(reactor.ok()) << reactor.status();
  EXPECT_EQ((*reactor)->name(), "epoll");
  // It says what it passed over, and why.
  ASSERT_EQ(passed_over.size(), 1u);
  EXPECT_TRUE(Contains(passed_over[0], dir + "/libbrrr_reactor_io_uring.so: the probe crashed (SIGBUS)"))
      << passed_over[0];

  // With nothing else to try, the error names the crash.
  std::string alone = testing::FreshDir("auto_crashing_alone");
  ASSERT_EQ(::symlink(CrashingIoUring().c_str(), (alone + "/libbrrr_reactor_io_uring.so").c_str()), 0);
  auto none = PluginLoader({alone}).CreateReactor("auto");
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(Contains(none.status().message(), "--backend=auto: no backend starts here")) << none.status();
  EXPECT_TRUE(Contains(none.status().message(), alone + "/libbrrr_reactor_io_uring.so: the probe crashed (SIGBUS)"))
      << none.status();
}

TEST(PluginLoaderTest, AutoWithNothingThatStartsListsEveryReason) {
  std::string dir = TempDir("nothing");
  ::unlink((dir + "/libbrrr_reactor_poll.so").c_str());
  ASSERT_EQ(::symlink(StandIn("poll").c_str(), (dir + "/libbrrr_reactor_poll.so").c_str()), 0);
  auto reactor = PluginLoader({dir}).CreateReactor("auto");
  ASSERT_FALSE(reactor.ok());
  EXPECT_EQ(reactor.status().code(), absl::StatusCode::kUnavailable);
  absl::string_view m = reactor.status().message();
  EXPECT_TRUE(Contains(m, "--backend=auto: no backend starts here")) << m;
  EXPECT_TRUE(Contains(m, "Operation not permitted")) << m;
}

TEST(PluginLoaderTest, ProbeListsEveryPluginAndWhetherItStarts) {
  PluginLoader loader({Runfiles("reactors"), Runfiles("tests/reactors")});
  std::vector<BackendProbe> probes = loader.Probe();
  std::map<std::string, BackendProbe> by_name;
  for (const BackendProbe& p : probes) by_name[p.name] = p;
  for (const std::string& name : testing::AllBackends()) {
    ASSERT_TRUE(by_name.count(name)) << name;
    std::string why;
    EXPECT_EQ(by_name[name].status.ok(), testing::BackendStarts(name, &why)) << name;
  }
  EXPECT_FALSE(by_name["wrongabi"].status.ok());
  EXPECT_FALSE(by_name["refuses"].status.ok());
  EXPECT_FALSE(by_name["noentry"].status.ok());
  // Its probe died of SIGBUS in a child process; this one carries on.
  EXPECT_TRUE(Contains(by_name["crashes"].status.message(),
                       TestPlugin("crashes") + ": the probe crashed (SIGBUS)"))
      << by_name["crashes"].status;
  // Best first, as auto would try them.
  EXPECT_EQ(probes.front().name, testing::AllBackends().size() == 4 ? "io_uring" : "epoll");
}

// A directory of its own for each kind of damage: this process's dynamic loader remembers every
// path it has loaded (and libc, loaded through a link, stays loaded), see plugin_file.h.
std::string DirFor(const std::string& test, testing::DamageKind kind) {
  return testing::FreshDir(test + "_" + std::to_string(static_cast<int>(kind)));
}

// Each kind of damaged file under epoll's name, loaded by name, by path and started: refused
// with the file and the reason (before the ELF check, the cut files killed this process with
// SIGBUS inside dlopen).
TEST(PluginLoaderTest, EveryKindOfDamagedFileIsRefusedWithTheFileAndTheReason) {
  for (testing::DamageKind kind : testing::AllDamageKinds()) {
    SCOPED_TRACE(testing::DamageName(kind));
    std::string dir = DirFor("damaged", kind);
    std::string path = dir + "/libbrrr_reactor_epoll.so";
    std::string reason = testing::WriteDamagedPlugin(kind, "epoll", path);
    PluginLoader loader({dir, Runfiles("reactors")});
    ASSERT_FALSE(reason.empty());
    for (const std::string& name_or_path : {std::string("epoll"), path}) {
      auto plugin = loader.Load(name_or_path);
      ASSERT_FALSE(plugin.ok()) << name_or_path;
      EXPECT_EQ(plugin.status().code(), absl::StatusCode::kFailedPrecondition);
      absl::string_view m = plugin.status().message();
      EXPECT_TRUE(Contains(m, path + ": ")) << m;
      EXPECT_TRUE(Contains(m, reason)) << m << "\nlacks: " << reason;
      EXPECT_EQ(Occurrences(m, path + ": "), 1u) << "the file's failure told once: " << m;
      EXPECT_TRUE(Contains(m, "Available here: ")) << m;
    }
    auto reactor = PluginLoader({dir}).CreateReactor("epoll");
    ASSERT_FALSE(reactor.ok());
    EXPECT_TRUE(Contains(reactor.status().message(), reason)) << reactor.status();
    EXPECT_EQ(Occurrences(reactor.status().message(), path + ": "), 1u) << reactor.status();
  }
}

TEST(PluginLoaderTest, ProbeListsADamagedFileAsCannotStartWithTheReason) {
  std::string dir = testing::FreshDir("probe_damaged");
  std::string path = dir + "/libbrrr_reactor_epoll.so";
  for (testing::DamageKind kind : testing::AllDamageKinds()) {
    SCOPED_TRACE(testing::DamageName(kind));
    std::string reason = testing::WriteDamagedPlugin(kind, "epoll", path);
    std::map<std::string, BackendProbe> by_name;
    for (const BackendProbe& p : PluginLoader({dir, Runfiles("reactors")}).Probe()) by_name[p.name] = p;
    ASSERT_TRUE(by_name.count("epoll"));
    EXPECT_EQ(by_name["epoll"].path, path);
    EXPECT_TRUE(Contains(by_name["epoll"].status.message(), path + ": ")) << by_name["epoll"].status;
    EXPECT_TRUE(Contains(by_name["epoll"].status.message(), reason)) << by_name["epoll"].status;
    EXPECT_TRUE(by_name["poll"].status.ok()) << by_name["poll"].status;
  }
}

// The damaged file is io_uring's, the first `auto` tries: it is skipped for the real epoll.
TEST(PluginLoaderTest, AutoSkipsADamagedFile) {
  for (testing::DamageKind kind : testing::AllDamageKinds()) {
    SCOPED_TRACE(testing::DamageName(kind));
    std::string dir = DirFor("auto_damaged", kind);
    std::string path = dir + "/libbrrr_reactor_io_uring.so";
    ASSERT_EQ(::symlink(testing::RealPlugin("epoll").c_str(), (dir + "/libbrrr_reactor_epoll.so").c_str()), 0);
    std::string reason = testing::WriteDamagedPlugin(kind, "io_uring", path);
    PluginLoader loader({dir});
    auto reactor = loader.CreateReactor("auto");
    ASSERT_TRUE(reactor.ok()) << reactor.status();
    EXPECT_EQ((*reactor)->name(), "epoll");
    auto choice = loader.AutoChoice();
    ASSERT_TRUE(choice.ok()) << choice.status();
    EXPECT_EQ(*choice, "epoll");
    std::string summary = loader.AvailabilitySummary();
    EXPECT_TRUE(Contains(summary, "Available here: epoll (not usable: io_uring: " + path + ": ")) << summary;
    EXPECT_TRUE(Contains(summary, reason)) << summary;
  }
}

TEST(PluginLoaderTest, ARenamedPluginIsRefusedAndSaysWhereItBelongs) {
  std::string dir = testing::FreshDir("renamed");
  std::string path = dir + "/libbrrr_reactor_epoll.so";
  testing::WriteDamagedPlugin(testing::DamageKind::kRenamedPlugin, "epoll", path);
  auto plugin = PluginLoader({dir}).Load("epoll");
  ASSERT_FALSE(plugin.ok());
  EXPECT_TRUE(Contains(plugin.status().message(),
                       path + ": the file is named for backend \"epoll\" but holds backend \"io_uring\": a plugin "
                              "file must be named after the backend it holds (libbrrr_reactor_io_uring.so)"))
      << plugin.status();
}

TEST(PluginLoaderTest, APluginGivenAsAPathMustBeNamedAfterItsBackend) {
  std::string dir = testing::FreshDir("unnamed");
  std::string path = dir + "/my_poll.so";
  ASSERT_EQ(::symlink(testing::RealPlugin("poll").c_str(), path.c_str()), 0);
  auto plugin = PluginLoader({}).Load(path);
  ASSERT_FALSE(plugin.ok());
  EXPECT_TRUE(Contains(plugin.status().message(), path + ": not a plugin file name: a backend NAME lives in "
                                                         "libbrrr_reactor_NAME.so"))
      << plugin.status();
}

TEST(PluginLoaderTest, AProbeThatCrashesIsReportedAndThisProcessCarriesOn) {
  BackendProbe p = ProbePluginFile(TestPlugin("crashes"), PluginLoader::kProbeTimeout);
  EXPECT_EQ(p.name, "crashes");
  EXPECT_EQ(p.status.message(), TestPlugin("crashes") +
                                    ": the probe crashed (SIGBUS) while loading and starting the plugin in a "
                                    "child process");
}

TEST(PluginLoaderTest, AProbeThatThePluginEndsIsFatalAndSaysWhatItPrinted) {
  BackendProbe p = ProbePluginFile(TestPlugin("exits"), PluginLoader::kProbeTimeout);
  EXPECT_TRUE(p.fatal);
  EXPECT_FALSE(p.answered);
  EXPECT_EQ(p.status.message(), TestPlugin("exits") +
                                    ": the plugin ended the probe process (exit status 0) while it was loaded and "
                                    "started in a child process, without an answer: test plugin: exiting from "
                                    "create()");
  // A crash and a plugin that refuses, for contrast: the crash is fatal, the refusal an answer.
  BackendProbe crash = ProbePluginFile(TestPlugin("crashes"), PluginLoader::kProbeTimeout);
  EXPECT_TRUE(crash.fatal);
  BackendProbe refusal = ProbePluginFile(TestPlugin("refuses"), PluginLoader::kProbeTimeout);
  EXPECT_FALSE(refusal.fatal);
  EXPECT_TRUE(refusal.answered);
}

TEST(PluginLoaderTest, AProbeThatNeverAnswersIsKilledAtItsTimeout) {
  BackendProbe p = ProbePluginFile(StandIn("hangs"), std::chrono::milliseconds(500));
  EXPECT_EQ(p.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Contains(p.status.message(), StandIn("hangs") + ": the probe did not answer within 500 ms"))
      << p.status;
}

TEST(PluginLoaderTest, AProbeAnswersLikeALoadInThisProcess) {
  for (const std::string& path : {testing::RealPlugin("poll"), TestPlugin("wrongabi"), TestPlugin("refuses")}) {
    BackendProbe there = ProbePluginFile(path, PluginLoader::kProbeTimeout);
    BackendProbe here = ProbePluginFileHere(path);
    EXPECT_EQ(there.status, here.status) << path;
    EXPECT_EQ(there.description, here.description) << path;
    EXPECT_EQ(there.capabilities, here.capabilities) << path;
  }
}

// A loader probes once; its copies share the answers. (The file is damaged after the first
// probe: the cached answer still says it starts.)
TEST(PluginLoaderTest, ProbeAnswersAreCachedPerLoader) {
  std::string dir = testing::FreshDir("cached");
  std::string path = dir + "/libbrrr_reactor_poll.so";
  ASSERT_EQ(::symlink(testing::RealPlugin("poll").c_str(), path.c_str()), 0);
  PluginLoader loader({dir});
  ASSERT_EQ(loader.Probe().size(), 1u);
  EXPECT_TRUE(loader.Probe()[0].status.ok()) << loader.Probe()[0].status;
  PluginLoader copy = loader;
  testing::WriteDamagedPlugin(testing::DamageKind::kCutAt8000Bytes, "poll", path);
  EXPECT_TRUE(loader.Probe()[0].status.ok());
  EXPECT_TRUE(copy.Probe()[0].status.ok());
  EXPECT_TRUE(Contains(loader.AvailabilitySummary(), "Available here: poll"));
  // A new loader looks again.
  EXPECT_TRUE(Contains(PluginLoader({dir}).Probe()[0].status.message(), "cut short")) << PluginLoader({dir}).Probe()[0].status;
}

TEST(PluginLoaderTest, AutoChoiceSaysWhyNothingStarts) {
  std::string dir = testing::FreshDir("auto_choice_none");
  testing::WriteDamagedPlugin(testing::DamageKind::kRandomBytes, "epoll", dir + "/libbrrr_reactor_epoll.so");
  auto choice = PluginLoader({dir}).AutoChoice();
  ASSERT_FALSE(choice.ok());
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(choice.status().message(), "--backend=auto: no backend starts here (tried io_uring, epoll, "
                                                  "poll, select in " + dir + "): " + dir +
                                                  "/libbrrr_reactor_epoll.so: cannot load plugin: not an ELF file"))
      << choice.status();
}

// A path that is not a regular file says what it is, and a FIFO is never opened (its open would
// wait for a writer). Before, each of these said "no such plugin file".
TEST(PluginLoaderTest, APathThatIsNotAFileSaysWhatItIs) {
  std::string dir = testing::FreshDir("not_files");
  std::string fifo = dir + "/libbrrr_reactor_fifo.so";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string loop = dir + "/libbrrr_reactor_loop.so";
  ASSERT_EQ(::symlink(loop.c_str(), loop.c_str()), 0);
  struct Case {
    std::string path;
    absl::StatusCode code;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {dir, absl::StatusCode::kInvalidArgument, dir + ": not a plugin file: it is a directory. Available here: "},
           {fifo, absl::StatusCode::kInvalidArgument, fifo + ": not a plugin file: it is a FIFO. Available here: "},
           {"/dev/zero", absl::StatusCode::kInvalidArgument,
            "/dev/zero: not a plugin file: it is a character device. Available here: "},
           {loop, absl::ErrnoToStatusCode(ELOOP),
            loop + ": cannot use it as a plugin file: Too many levels of symbolic links. Available here: "},
           {dir + "/libbrrr_reactor_none.so", absl::StatusCode::kNotFound,
            dir + "/libbrrr_reactor_none.so: no such plugin file. Available here: "},
       }) {
    SCOPED_TRACE(c.path);
    auto plugin = PluginLoader({Runfiles("reactors")}).Load(c.path);
    ASSERT_FALSE(plugin.ok());
    EXPECT_EQ(plugin.status().code(), c.code) << plugin.status();
    EXPECT_TRUE(absl::StartsWith(plugin.status().message(), c.message)) << plugin.status();
  }
}

TEST(PluginLoaderTest, NamesMustBeNamesOrPaths) {
  auto plugin = PluginLoader::Default().Load("Epoll!");
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(plugin.status().message(), "is not a backend name")) << plugin.status();
}

}  // namespace
}  // namespace brrr
