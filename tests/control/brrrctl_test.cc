// brrrctl against a real brrr-echo, both as child processes: what it prints (JSON that protobuf
// parses back into the admin API's messages, so the field names are the proto's), the figures
// it reports (the same as a direct gRPC call), and its exit codes.

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct CtlRun {
  int code = -1000;  // -1000: still running after 30 s
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CtlRun& r) {
  return os << "exit " << r.code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
}

CtlRun Brrrctl(const std::vector<std::string>& args) {
  testing::Process process(testing::Runfile("control/brrrctl/brrrctl"), args);
  std::optional<int> code = process.Wait(seconds(30));
  return {code.value_or(-1000), process.out(), process.err()};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Parses with protobuf's JSON parser, which refuses field names the message does not have.
template <typename Message>
Message FromJson(const std::string& line) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(line, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << line;
  return message;
}

std::string WriteFile(const std::string& name, const std::string& content) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

uint16_t LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

// The shared fixture (a real brrr-echo and a channel to it), plus brrrctl aimed at it.
class BrrrctlTest : public testing::AdminFixture {
 protected:
  std::string Address() const { return AdminAddress(); }

  CtlRun Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), "--target=" + Address());
    return Brrrctl(args);
  }
};

TEST_F(BrrrctlTest, InfoJsonIsTheServerInfoMessage) {
  Start({"--loops=2", "--backend=epoll"});
  // Flags before or after the command.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info", "--json"}, std::vector<std::string>{"--json", "info"}}) {
    CtlRun r = Ctl(args);
    ASSERT_EQ(r.code, 0) << r;
    std::vector<std::string> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << r;
    admin::ServerInfo info = FromJson<admin::ServerInfo>(lines[0]);
    EXPECT_EQ(info.backend(), "epoll");
    EXPECT_EQ(info.loops(), 2u);
    EXPECT_EQ(static_cast<pid_t>(info.pid()), server_->pid());
    ASSERT_EQ(info.listening_addresses_size(), 1);
    EXPECT_EQ(info.listening_addresses(0), "127.0.0.1:" + std::to_string(port_));
    EXPECT_FALSE(info.version().empty());
    // Numbers are JSON numbers, and every field of the message is there.
    EXPECT_TRUE(Contains(lines[0], "\"loops\":2,")) << lines[0];
    for (int i = 0; i < admin::ServerInfo::descriptor()->field_count(); ++i) {
      EXPECT_TRUE(Contains(lines[0], "\"" + admin::ServerInfo::descriptor()->field(i)->name() + "\":")) << lines[0];
    }
  }
  CtlRun text = Ctl({"info"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_TRUE(Contains(text.out, "backend    epoll")) << text;
  EXPECT_TRUE(Contains(text.out, "loops      2")) << text;
}

TEST_F(BrrrctlTest, StatsJsonCarriesTheFiguresOfGetStats) {
  Start({"--loops=2"});
  {
    testing::BlockingClient client(port_);
    std::string payload = testing::RandomBytes(100000, 7);
    ASSERT_TRUE(client.send_all(payload));
    ASSERT_EQ(client.recv_exact(payload.size()), payload);
  }
  // Once the connection is gone, the traffic figures stay put.
  admin::Stats direct = StatsWhen([](const admin::Stats& s) { return s.total().connections_active() == 0; });
  ASSERT_EQ(direct.total().connections_active(), 0u);
  ASSERT_EQ(direct.total().bytes_in(), 100000u);

  CtlRun r = Ctl({"stats", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r;
  admin::Stats cli = FromJson<admin::Stats>(lines[0]);
  ASSERT_EQ(cli.loops_size(), 2);
  EXPECT_EQ(cli.total().connections_accepted(), direct.total().connections_accepted());
  EXPECT_EQ(cli.total().connections_accepted(), 1u);
  EXPECT_EQ(cli.total().connections_active(), 0u);
  EXPECT_EQ(cli.total().bytes_in(), direct.total().bytes_in());
  EXPECT_EQ(cli.total().bytes_out(), direct.total().bytes_out());
  EXPECT_EQ(cli.total().messages_in(), direct.total().messages_in());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cli.loops(i).loop(), static_cast<uint32_t>(i));
    EXPECT_EQ(cli.loops(i).bytes_in(), direct.loops(i).bytes_in()) << i;
    EXPECT_EQ(cli.loops(i).connections_accepted(), direct.loops(i).connections_accepted()) << i;
  }
  EXPECT_EQ(cli.total().stall_threshold_ms(), direct.total().stall_threshold_ms());
  // 64-bit figures as numbers, zeros printed.
  EXPECT_TRUE(Contains(lines[0], "\"bytes_in\":100000,")) << lines[0];
  EXPECT_TRUE(Contains(lines[0], "\"connections_refused\":0,")) << lines[0];

  CtlRun one_loop = Ctl({"stats", "--json", "--loop=1"});
  ASSERT_EQ(one_loop.code, 0) << one_loop;
  admin::Stats only = FromJson<admin::Stats>(Lines(one_loop.out).at(0));
  ASSERT_EQ(only.loops_size(), 1);
  EXPECT_EQ(only.loops(0).loop(), 1u);
  EXPECT_EQ(only.total().bytes_in(), 100000u);

  CtlRun no_loop = Ctl({"stats", "--loop=2"});
  EXPECT_EQ(no_loop.code, 1) << no_loop;
  EXPECT_TRUE(Contains(no_loop.err, "--loop=2: no such loop")) << no_loop;

  CtlRun text = Ctl({"stats"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_TRUE(Contains(text.out, "LOOP 0")) << text;
  EXPECT_TRUE(Contains(text.out, "TOTAL")) << text;
  EXPECT_TRUE(Contains(text.out, "100000")) << text;
}

TEST_F(BrrrctlTest, HealthExitsZeroWhenServing) {
  Start();
  CtlRun r = Ctl({"health"});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, "SERVING\n");
  CtlRun json = Ctl({"health", "--json"});
  ASSERT_EQ(json.code, 0) << json;
  EXPECT_EQ(FromJson<health::HealthCheckResponse>(Lines(json.out).at(0)).status(),
            health::HealthCheckResponse::SERVING);
  EXPECT_EQ(json.out, "{\"status\":\"SERVING\"}\n");
  // An error the server answers with: exit 1, the code and the message on stderr.
  CtlRun unknown = Ctl({"health", "--service=no.such.Service"});
  EXPECT_EQ(unknown.code, 1) << unknown;
  EXPECT_TRUE(Contains(unknown.err, "brrrctl: NOT_FOUND: ")) << unknown;
  EXPECT_TRUE(Contains(unknown.err, "no.such.Service")) << unknown;
}

TEST_F(BrrrctlTest, StallThresholdsShowWithoutAnArgument) {
  Start({"--loops=2", "--stall_threshold=75ms"});
  CtlRun r = Ctl({"stall-threshold", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  admin::StallThresholds thresholds = FromJson<admin::StallThresholds>(Lines(r.out).at(0));
  ASSERT_EQ(thresholds.loops_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(thresholds.loops(i).loop(), static_cast<uint32_t>(i));
    EXPECT_EQ(thresholds.loops(i).threshold_ms(), 75.0);
  }
}

TEST(BrrrctlUsageTest, UsageErrorsExitTwoWithAClearMessage) {
  const std::string free_target = "--target=127.0.0.1:" + std::to_string(testing::PickFreePort());
  const std::string empty_token = WriteFile("empty_token", " \n");
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
      {{"inject", "sleepy", "--duration=1s"}, "inject sleepy: KIND is blocking-spin, blocking-sleep or nonblocking-sleep"},
      {{"inject", "blocking-spin", "--duration=1500us"}, "--duration=1.5ms: not a whole number of milliseconds"},
      {{"throttle", "--conn_rate=10QB"}, "--conn_rate=10QB: expected a number"},
      {{"throttle", "--pause", "--resume"}, "throttle: give --pause or --resume, not both"},
      {{"watch", "--count=-1"}, "--count=-1: expected a whole number"},
      {{"sockets", "--set=some"}, "--set=some: expected all, read, write or neither"},
      {{"cancel"}, "cancel takes 1 argument, got 0"},
      {{"close", "seven"}, "close seven: FD must be a file descriptor number"},
      {{"stall-threshold", "fast"}, "stall-threshold fast: expected a positive duration"},
      {{"--timeout=0s", "info"}, "--timeout=0: must be positive"},
      {{"--token_file=/nonexistent/token", "info"}, "--token_file=/nonexistent/token: cannot read it"},
      {{"--token_file=" + empty_token, "info"}, "--token_file=" + empty_token + ": the file is empty"},
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

TEST(BrrrctlUsageTest, HelpExitsZeroAndStatesTheContract) {
  CtlRun general = Brrrctl({"--help"});
  ASSERT_EQ(general.code, 0) << general;
  for (const std::string command : {"info", "stats", "watch", "sockets", "throttle", "inject", "injections", "cancel",
                                    "close", "drain", "health", "stalls", "stall-threshold"}) {
    EXPECT_TRUE(Contains(general.out, "\n  " + command + " ")) << command << "\n" << general.out;
  }
  EXPECT_TRUE(Contains(general.out, "Exit codes:")) << general.out;
  EXPECT_TRUE(Contains(general.out, "5  health:")) << general.out;
  EXPECT_TRUE(Contains(general.out, "DECIMAL suffix: K = 1000")) << general.out;

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"help", "inject"}, std::vector<std::string>{"inject", "--help"}}) {
    CtlRun r = Brrrctl(args);
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_TRUE(Contains(r.out, "Usage: brrrctl inject KIND --duration=DURATION")) << r;
    EXPECT_TRUE(Contains(r.out, "--interval=DURATION")) << r;
    EXPECT_TRUE(Contains(r.out, "nonblocking-sleep")) << r;
  }
  CtlRun unknown = Brrrctl({"help", "frobnicate"});
  EXPECT_EQ(unknown.code, 2) << unknown;
}

TEST(BrrrctlUsageTest, UnreachableTargetExitsThreeAtOnce) {
  const std::string target = "127.0.0.1:" + std::to_string(testing::PickFreePort());  // nothing listens
  for (const std::string command : {"info", "health", "watch"}) {
    auto start = std::chrono::steady_clock::now();
    CtlRun r = Brrrctl({"--target=" + target, "--timeout=20s", command});
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.code, 3) << command << ": " << r;
    EXPECT_TRUE(Contains(r.err, "brrrctl: cannot reach the admin plane at " + target)) << r;
    // A refused connection is known at once: brrrctl does not sit out its --timeout. (A bound
    // of half that timeout, where a refusal takes milliseconds: safe however loaded the machine.)
    EXPECT_LT(took, seconds(10)) << command;
  }
}

TEST_F(BrrrctlTest, WatchPrintsOneLinePerSample) {
  Start();
  CtlRun r = Ctl({"watch", "--count=3", "--interval=50ms", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r;
  double previous_uptime = -1;
  for (const std::string& line : lines) {
    admin::Stats stats = FromJson<admin::Stats>(line);
    EXPECT_EQ(stats.loops_size(), 1);
    EXPECT_GT(stats.uptime_seconds(), previous_uptime);
    previous_uptime = stats.uptime_seconds();
  }
  CtlRun text = Ctl({"watch", "--count=2", "--interval=50ms"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_EQ(Lines(text.out).size(), 3u) << text;  // the header and two samples
  EXPECT_TRUE(Contains(text.out, "UPTIME")) << text;
}

TEST_F(BrrrctlTest, StreamsEndCleanlyOnSigintAndSigterm) {
  Start();
  for (int sig : {SIGINT, SIGTERM}) {
    testing::Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                           {"--target=" + Address(), "watch", "--interval=50ms", "--json"});
    // A line has come, so the stream is open.
    ASSERT_TRUE(watch.WaitForOutput("\"uptime_seconds\"")) << watch.err();
    watch.Signal(sig);
    std::optional<int> code = watch.Wait(seconds(10));
    ASSERT_TRUE(code.has_value()) << strsignal(sig);
    EXPECT_EQ(*code, 0) << strsignal(sig) << ": " << watch.err();
    for (const std::string& line : Lines(watch.out())) FromJson<admin::Stats>(line);
  }
}

TEST_F(BrrrctlTest, ThrottleChangesWhatIsGivenAndShowsItAll) {
  Start();

  CtlRun set = Ctl({"throttle", "--conn_rate=10KB", "--json"});
  ASSERT_EQ(set.code, 0) << set;
  admin::Throttle after_set = FromJson<admin::Throttle>(Lines(set.out).at(0));
  EXPECT_EQ(after_set.bytes_per_second_per_connection(), 10000u);
  EXPECT_EQ(after_set.bytes_per_second_total(), 0u);

  CtlRun show = Ctl({"throttle", "--json"});
  ASSERT_EQ(show.code, 0) << show;
  EXPECT_EQ(FromJson<admin::Throttle>(Lines(show.out).at(0)).bytes_per_second_per_connection(), 10000u);
  admin::Throttle direct;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &direct).ok());
  EXPECT_EQ(direct.bytes_per_second_per_connection(), 10000u);

  CtlRun pause = Ctl({"throttle", "--pause", "--json"});
  ASSERT_EQ(pause.code, 0) << pause;
  admin::Throttle paused = FromJson<admin::Throttle>(Lines(pause.out).at(0));
  EXPECT_TRUE(paused.accepting_paused());
  EXPECT_EQ(paused.bytes_per_second_per_connection(), 10000u);  // the others stay
  CtlRun resume = Ctl({"throttle", "--resume"});
  ASSERT_EQ(resume.code, 0) << resume;
  EXPECT_TRUE(Contains(resume.out, "accepting        yes")) << resume;

  // Out of range (0, or 1,000 and up): the server says so; brrrctl exits 1.
  CtlRun low = Ctl({"throttle", "--conn_rate=5"});
  EXPECT_EQ(low.code, 1) << low;
  EXPECT_TRUE(Contains(low.err, "brrrctl: INVALID_ARGUMENT: ")) << low;
}

// --accept_rate, --total_rate and --max_connections reach the server (read back over gRPC,
// not from brrrctl's own echo), the text form shows them, and the connection limit acts.
TEST_F(BrrrctlTest, AcceptRateTotalRateAndMaxConnectionsReachTheServer) {
  Start();
  CtlRun set = Ctl({"throttle", "--accept_rate=50", "--total_rate=20KB", "--max_connections=2", "--json"});
  ASSERT_EQ(set.code, 0) << set;
  admin::Throttle direct;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &direct).ok());
  EXPECT_EQ(direct.accepts_per_second(), 50u);
  EXPECT_EQ(direct.bytes_per_second_total(), 20000u);
  EXPECT_EQ(direct.max_connections(), 2u);
  EXPECT_EQ(direct.bytes_per_second_per_connection(), 0u) << "what was not given stays";
  CtlRun show = Ctl({"throttle"});
  ASSERT_EQ(show.code, 0) << show;
  for (const char* shown : {"total_rate       20KB/s\n", "accept_rate      50/s\n", "max_connections  2\n"}) {
    EXPECT_TRUE(Contains(show.out, shown)) << show;
  }

  // Two connections at once are served; a third is accepted and closed at once.
  testing::BlockingClient a(port_);
  testing::BlockingClient b(port_);
  ASSERT_TRUE(a.send_all("a"));
  ASSERT_EQ(a.recv_exact(1), "a");
  ASSERT_TRUE(b.send_all("b"));
  ASSERT_EQ(b.recv_exact(1), "b");
  testing::BlockingClient c(port_);
  EXPECT_EQ(c.recv_until_eof(), "");
  admin::Stats stats = StatsWhen([](const admin::Stats& s) { return s.total().connections_refused() == 1; });
  EXPECT_EQ(stats.total().connections_active(), 2u);

  // Out of range: the server says what is allowed, nothing changes.
  CtlRun bad = Ctl({"throttle", "--accept_rate=2000000", "--max_connections=5"});
  EXPECT_EQ(bad.code, 1) << bad;
  EXPECT_TRUE(Contains(bad.err, "accepts_per_second=2000000 is out of range")) << bad;
  ASSERT_TRUE(stub_->GetThrottle(Context().get(), admin::GetThrottleRequest(), &direct).ok());
  EXPECT_EQ(direct.max_connections(), 2u);
}

TEST_F(BrrrctlTest, InjectionIsListedAndCancelled) {
  Start();

  CtlRun inject = Ctl({"inject", "blocking-sleep", "--duration=100ms", "--json"});
  ASSERT_EQ(inject.code, 0) << inject;
  admin::Injection injection = FromJson<admin::Injection>(Lines(inject.out).at(0));
  EXPECT_GT(injection.id(), 0u);
  EXPECT_EQ(injection.kind(), admin::BLOCKING_SLEEP);
  EXPECT_EQ(injection.duration_ms(), 100u);

  CtlRun list = Ctl({"injections", "--json"});
  ASSERT_EQ(list.code, 0) << list;
  admin::ListInjectionsResponse response = FromJson<admin::ListInjectionsResponse>(Lines(list.out).at(0));
  bool found = false;
  for (const admin::Injection& i : response.injections()) found = found || i.id() == injection.id();
  EXPECT_TRUE(found) << list;
  CtlRun text = Ctl({"injections"});
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_TRUE(Contains(text.out, "blocking-sleep")) << text;

  CtlRun long_one = Ctl({"inject", "nonblocking-sleep", "--duration=10s", "--count=3", "--json"});
  ASSERT_EQ(long_one.code, 0) << long_one;
  uint64_t id = FromJson<admin::Injection>(Lines(long_one.out).at(0)).id();
  CtlRun cancel = Ctl({"cancel", std::to_string(id), "--json"});
  ASSERT_EQ(cancel.code, 0) << cancel;
  admin::Injection cancelled = FromJson<admin::Injection>(Lines(cancel.out).at(0));
  EXPECT_EQ(cancelled.id(), id);
  EXPECT_EQ(cancelled.state(), admin::Injection::CANCELLED);
  EXPECT_TRUE(Contains(cancel.out, "\"state\":\"CANCELLED\"")) << cancel;

  CtlRun unknown = Ctl({"cancel", "999999"});
  EXPECT_EQ(unknown.code, 1) << unknown;
  EXPECT_TRUE(Contains(unknown.err, "brrrctl: NOT_FOUND: ")) << unknown;
}

TEST_F(BrrrctlTest, SocketsListAnIdleClientAndCloseClosesIt) {
  Start();
  testing::BlockingClient client(port_, false, 10000);
  ASSERT_TRUE(client.send_all("hello"));
  ASSERT_EQ(client.recv_exact(5), "hello");
  const std::string peer = "127.0.0.1:" + std::to_string(LocalPort(client.fd()));

  // The idle connection waits for bytes: it is in the read set, not in the write set.
  auto find = [&](const std::string& set) -> std::optional<admin::SocketInfo> {
    CtlRun r = Ctl({"sockets", "--set=" + set, "--json"});
    EXPECT_EQ(r.code, 0) << r;
    if (r.code != 0) return std::nullopt;
    admin::ListSocketsResponse response = FromJson<admin::ListSocketsResponse>(Lines(r.out).at(0));
    for (const admin::SocketInfo& s : response.sockets()) {
      if (s.peer() == peer) return s;
    }
    return std::nullopt;
  };
  std::optional<admin::SocketInfo> idle = find("read");
  ASSERT_TRUE(idle.has_value()) << peer;
  EXPECT_EQ(idle->kind(), "connection");
  EXPECT_TRUE(idle->in_read_set());
  EXPECT_EQ(idle->bytes_in(), 5u);
  EXPECT_FALSE(find("write").has_value());

  CtlRun close = Ctl({"close", std::to_string(idle->fd()), "--json"});
  ASSERT_EQ(close.code, 0) << close;
  admin::CloseConnectionResponse closed = FromJson<admin::CloseConnectionResponse>(Lines(close.out).at(0));
  EXPECT_EQ(closed.closed().fd(), idle->fd());
  EXPECT_EQ(closed.closed().peer(), peer);
  EXPECT_EQ(client.recv_until_eof(), "");  // the server closed it
}

TEST_F(BrrrctlTest, StallsAreReportedOverTheThreshold) {
  Start({"--loops=2"});

  CtlRun set = Ctl({"stall-threshold", "50ms", "--json"});
  ASSERT_EQ(set.code, 0) << set;
  admin::StallThresholds after = FromJson<admin::StallThresholds>(Lines(set.out).at(0));
  ASSERT_EQ(after.loops_size(), 2);
  for (const auto& t : after.loops()) EXPECT_EQ(t.threshold_ms(), 50.0);
  CtlRun show = Ctl({"stall-threshold", "--json", "--loop=1"});
  ASSERT_EQ(show.code, 0) << show;
  admin::StallThresholds shown = FromJson<admin::StallThresholds>(Lines(show.out).at(0));
  ASSERT_EQ(shown.loops_size(), 1);
  EXPECT_EQ(shown.loops(0).threshold_ms(), 50.0);

  CtlRun inject = Ctl({"inject", "blocking-sleep", "--duration=100ms", "--loop=0"});
  ASSERT_EQ(inject.code, 0) << inject;
  // Once the injection has run and the loop has moved on, its stall is among the recent ones
  // the stream sends first. On a loaded machine another task may have stalled past 50 ms too,
  // so all the recent ones are asked for and the injected one is looked for among them.
  admin::Stats stalled = StatsWhen([](const admin::Stats& s) {
    return s.loops(0).stalls() >= 1 && s.injections_size() == 0 && s.loops(0).current_task() != "inject:blocking_sleep";
  });
  uint64_t count = stalled.loops(0).stalls();
  ASSERT_GE(count, 1u);
  CtlRun stalls = Ctl({"stalls", "--include_recent", "--loop=0", "--count=" + std::to_string(count), "--json"});
  ASSERT_EQ(stalls.code, 0) << stalls;
  std::vector<std::string> lines = Lines(stalls.out);
  ASSERT_EQ(lines.size(), count) << stalls;
  bool found = false;
  for (const std::string& line : lines) {
    admin::Stall stall = FromJson<admin::Stall>(line);
    EXPECT_EQ(stall.loop(), 0u);
    EXPECT_GE(stall.duration_ms(), 50.0) << "only tasks past the threshold are stalls";
    if (stall.task() == "inject:blocking_sleep") {
      found = true;
      EXPECT_GE(stall.duration_ms(), 100.0) << "the injection's own length: a lower bound";
    }
  }
  EXPECT_TRUE(found) << stalls;
}

// While a loop is blocked, `stalls --in_progress` shows the stall as it lasts, with the
// stack the loop's watchdog sampled: the injected run's own function is in it. The block
// would last 30 s; it is cancelled once the command has shown it.
TEST_F(BrrrctlTest, StallsShowWhereALoopIsStuckWhileItIs) {
  Start({"--admin_max_block=60s", "--stall_threshold=50ms"});
  CtlRun inject = Ctl({"inject", "blocking-spin", "--duration=30s", "--json"});
  ASSERT_EQ(inject.code, 0) << inject;
  admin::Injection injection = FromJson<admin::Injection>(Lines(inject.out).at(0));
  CtlRun stalls = Ctl({"stalls", "--in_progress", "--count=1", "--frames=40"});
  CtlRun cancel = Ctl({"cancel", std::to_string(injection.id())});
  EXPECT_EQ(cancel.code, 0) << cancel;
  ASSERT_EQ(stalls.code, 0) << stalls;
  std::vector<std::string> lines = Lines(stalls.out);
  ASSERT_GE(lines.size(), 4u) << stalls;
  EXPECT_TRUE(Contains(lines[0], "DURATION_MS  TASK")) << stalls;
  EXPECT_TRUE(Contains(lines[1], "inject:blocking_spin (still running)")) << stalls;
  EXPECT_TRUE(Contains(lines[2], "stack at ")) << stalls;
  EXPECT_TRUE(Contains(lines[3], "#0 ")) << stalls;
  EXPECT_TRUE(Contains(stalls.out, "InjectedBlockingSpin")) << stalls;
}

TEST_F(BrrrctlTest, DrainMakesTheServerExitZero) {
  Start({"--drain_timeout=30s"});
  testing::BlockingClient client(port_, false, 10000);  // keeps the drain going until it leaves
  ASSERT_TRUE(client.send_all("x"));
  ASSERT_EQ(client.recv_exact(1), "x");
  CtlRun drain = Ctl({"drain", "--json"});
  ASSERT_EQ(drain.code, 0) << drain;
  admin::DrainResponse response = FromJson<admin::DrainResponse>(Lines(drain.out).at(0));
  EXPECT_EQ(response.connections_open(), 1u);
  EXPECT_FALSE(response.already_draining());

  // Draining: health says NOT_SERVING, and brrrctl exits 5.
  CtlRun health = Ctl({"health"});
  EXPECT_EQ(health.code, 5) << health;
  EXPECT_EQ(health.out, "NOT_SERVING\n");

  client.close();
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "the server did not exit after the drain";
  EXPECT_EQ(*code, 0) << server_->err();
}

TEST_F(BrrrctlTest, TokenIsSentFromTokenFile) {
  const std::string token_path = WriteFile("admin_token", "  s3cret-token \n");
  const std::string wrong_path = WriteFile("wrong_token", "not-it\n");
  admin_port_ = testing::PickFreePort();
  server_ = std::make_unique<testing::Process>(
      testing::Runfile("server/brrr-echo/brrr-echo"),
      std::vector<std::string>{"--port=0", "--admin_port=" + std::to_string(admin_port_),
                               "--admin_token_file=" + token_path});
  auto give_up = std::chrono::steady_clock::now() + seconds(30);
  while (!server_->WaitForOutput("admin plane on ", milliseconds(50))) {
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "brrr-echo did not start: " << server_->err();
    if (std::optional<int> code = server_->Wait(milliseconds(0)); code.has_value()) {
      std::string err = server_->err();
      server_.reset();
      FAIL() << "brrr-echo exited " << *code << ": " << err;
    }
  }
  CtlRun none = Ctl({"info"});
  EXPECT_EQ(none.code, 4) << none;
  EXPECT_TRUE(Contains(none.err, "brrrctl: UNAUTHENTICATED")) << none;
  EXPECT_TRUE(Contains(none.err, "--token_file")) << none;
  CtlRun wrong = Ctl({"--token_file=" + wrong_path, "info"});
  EXPECT_EQ(wrong.code, 4) << wrong;
  CtlRun right = Ctl({"--token_file=" + token_path, "info", "--json"});
  EXPECT_EQ(right.code, 0) << right;
  EXPECT_EQ(FromJson<admin::ServerInfo>(Lines(right.out).at(0)).pid(), static_cast<uint32_t>(server_->pid()));
  CtlRun health = Ctl({"--token_file=" + token_path, "health"});
  EXPECT_EQ(health.code, 0) << health;
}

}  // namespace
}  // namespace brrr
