// brrrctl on several targets (--target=A,B,C, --targets_file) against three real brrr-echo
// processes with traffic from loopback clients: each target's answer in order, the totals as
// the sums of the targets' own figures, an unreachable target reported while the others
// answer, a server that falls silent not holding back the others' watch, actions applied to
// every target, and the usage errors of target lists.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "brrr/admin/v1/admin.pb.h"
#include "gtest/gtest.h"
#include "runtime/loop_stats.h"
#include "server/server_stats.h"
#include "tests/control/brrrctl_run.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"
#include "tests/testing/side_ports.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using google::protobuf::FieldDescriptor;
using std::chrono::seconds;
using testing::Brrrctl;
using testing::Contains;
using testing::CtlRun;
using testing::FromJson;
using testing::Lines;
using testing::WriteFile;

// Whether one line of `text` starts with `prefix` and contains `part`.
bool SomeLineHasBoth(const std::string& text, const std::string& prefix, const std::string& part) {
  for (const std::string& line : Lines(text)) {
    if (line.rfind(prefix, 0) == 0 && Contains(line, part)) return true;
  }
  return false;
}

size_t Count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// {"target":"T","result":{...}} -> T and the result's JSON; empty target if the line is not one.
std::pair<std::string, std::string> TargetResult(const std::string& line) {
  const std::string head = "{\"target\":\"";
  const std::string middle = "\",\"result\":";
  size_t m = line.find(middle);
  if (line.rfind(head, 0) != 0 || m == std::string::npos || line.back() != '}') return {};
  return {line.substr(head.size(), m - head.size()), line.substr(m + middle.size(), line.size() - m - middle.size() - 1)};
}

// The "stats" object of a total line: {"total":{...,"stats":{...},"left_out":[...]}}.
std::string TotalStatsJson(const std::string& line) {
  size_t from = line.find("\"stats\":");
  size_t to = line.find(",\"left_out\":");
  if (from == std::string::npos || to == std::string::npos) return "";
  return line.substr(from + 8, to - from - 8);
}

std::string FieldName(const FigureInfo& f) {
  if (f.unit == FigureUnit::kSeconds) return std::string(f.name) + "_seconds";
  if (f.unit == FigureUnit::kMillis) return std::string(f.name) + "_ms";
  return f.name;
}

double Value(const admin::LoopStats& s, const FieldDescriptor* f) {
  const auto* r = s.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(r->GetUInt64(s, f));
    case FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(s, f);
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(s, f) ? 1 : 0;
    default: return -1;
  }
}

class FleetTest : public ::testing::Test {
 protected:
  struct Server {
    std::unique_ptr<testing::Process> process;
    uint16_t admin_port = 0;
    uint16_t port = 0;
    std::string admin() const { return "127.0.0.1:" + std::to_string(admin_port); }
  };

  void StartServers(int n) {
    for (int i = 0; i < n; ++i) {
      Server s;
      testing::SidePorts ports;
      s.process = testing::StartOnFreeSidePorts(
          testing::Runfile("server/brrr-echo/brrr-echo"),
          [](const testing::SidePorts& p) {
            return std::vector<std::string>{"--port=0", "--loops=2", "--admin_port=" + std::to_string(p.admin)};
          },
          &ports);
      s.admin_port = ports.admin;
      s.port = s.process->ListeningPort();
      ASSERT_NE(s.port, 0) << s.process->err();
      ASSERT_TRUE(s.process->WaitForOutput("admin plane on " + s.admin()))
          << s.process->out() << s.process->err();
      servers_.push_back(std::move(s));
    }
  }

  void TearDown() override {
    for (Server& s : servers_) {
      if (!s.process->Wait(std::chrono::milliseconds(0)).has_value()) s.process->Signal(SIGTERM);
      std::optional<int> code = s.process->Wait(seconds(30));
      ASSERT_TRUE(code.has_value());
      EXPECT_EQ(*code, 0) << s.process->err();
    }
  }

  // The servers' admin addresses, comma-separated, in order.
  std::string Targets() const {
    std::string list;
    for (const Server& s : servers_) list += (list.empty() ? "" : ",") + s.admin();
    return list;
  }

  // Sends `bytes` bytes to server i and reads its echo back; returns what was sent.
  uint64_t Echo(size_t i, size_t bytes, uint32_t seed) {
    testing::BlockingClient client(servers_[i].port);
    std::string payload = testing::RandomBytes(bytes, seed);
    EXPECT_TRUE(client.send_all(payload));
    EXPECT_EQ(client.recv_exact(payload.size()), payload);
    return payload.size();
  }

  std::vector<Server> servers_;
};

TEST_F(FleetTest, StatsShowsEachTargetThenTheSumOfTheirFigures) {
  StartServers(3);
  std::vector<uint64_t> sent(3, 0);
  for (size_t i = 0; i < 3; ++i) {
    for (int c = 0; c <= static_cast<int>(i); ++c) sent[i] += Echo(i, 10000 * (i + 1) + 7 * c, 31 * i + c);
  }

  CtlRun r = Brrrctl({"--target=" + Targets(), "stats", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r;
  std::vector<admin::Stats> per_target;
  for (size_t i = 0; i < 3; ++i) {
    auto [target, json] = TargetResult(lines[i]);
    EXPECT_EQ(target, servers_[i].admin()) << lines[i];  // in the order given
    per_target.push_back(FromJson<admin::Stats>(json));
    EXPECT_EQ(per_target[i].loops_size(), 2);
    EXPECT_EQ(per_target[i].total().bytes_in(), sent[i]) << "target " << i;
    EXPECT_EQ(per_target[i].total().connections_accepted(), i + 1) << "target " << i;
  }
  ASSERT_TRUE(Contains(lines[3], "{\"total\":{\"targets\":3,\"answering\":3,\"loops\":6,\"draining\":0,")) << lines[3];
  const admin::LoopStats total = FromJson<admin::LoopStats>(TotalStatsJson(lines[3]));
  EXPECT_EQ(total.bytes_in(), sent[0] + sent[1] + sent[2]);
  EXPECT_EQ(total.connections_accepted(), 6u);

  // Every figure of the lists: the total is the sum (Counter, Gauge) or the largest (Max) of
  // the targets' own totals, read in the same call.
  auto check = [&](const FigureInfo& f) {
    const FieldDescriptor* field = admin::LoopStats::descriptor()->FindFieldByName(FieldName(f));
    ASSERT_NE(field, nullptr) << f.name;
    double sum = 0, largest = 0;
    for (const admin::Stats& s : per_target) {
      sum += Value(s.total(), field);
      largest = std::max(largest, Value(s.total(), field));
    }
    switch (f.kind) {
      case FigureKind::kCounter:
      case FigureKind::kGauge:
        EXPECT_EQ(Value(total, field), f.unit == FigureUnit::kFlag ? (sum > 0 ? 1 : 0) : sum) << f.name;
        break;
      case FigureKind::kMax:
        EXPECT_EQ(Value(total, field), largest) << f.name;
        break;
      case FigureKind::kSetting:
        EXPECT_EQ(Value(total, field), Value(per_target[0].total(), field)) << f.name;  // all the same here
        break;
    }
  };
  for (const FigureInfo& f : kLoopFigures) check(f);
  for (const FigureInfo& f : server::kEchoFigures) check(f);
  // Percentiles cannot be added: null, and named.
  EXPECT_TRUE(Contains(lines[3], "\"p99_us\":null")) << lines[3];
  EXPECT_TRUE(Contains(lines[3], "\"left_out\":[")) << lines[3];
  EXPECT_TRUE(Contains(lines[3], "\"timer_lateness.p99_us\"")) << lines[3];

  // Text: a header per target in order, then the total.
  CtlRun text = Brrrctl({"--target=" + Targets(), "stats"});
  ASSERT_EQ(text.code, 0) << text;
  size_t at = 0;
  for (const Server& s : servers_) {
    size_t header = text.out.find("== " + s.admin() + " ==\n", at);
    ASSERT_NE(header, std::string::npos) << s.admin() << "\n" << text;
    at = header + 1;
  }
  size_t total_at = text.out.find("== total: 3 of 3 targets answering ==\n", at);
  ASSERT_NE(total_at, std::string::npos) << text;
  const std::string total_text = text.out.substr(total_at);
  bool found = false;
  for (const std::string& line : Lines(total_text)) {
    if (line.rfind("bytes_in ", 0) == 0) {
      found = true;
      EXPECT_EQ(line.substr(line.find_last_of(' ') + 1), std::to_string(sent[0] + sent[1] + sent[2])) << line;
    }
    if (line.rfind("timer_lateness.p99_us ", 0) == 0) {
      EXPECT_EQ(line.back(), '-') << line;
    }
  }
  EXPECT_TRUE(found) << total_text;
  EXPECT_TRUE(Contains(total_text, "-: no total: percentiles of several servers cannot be added")) << total_text;

  EXPECT_FALSE(Contains(total_text, "not the same in every loop")) << total_text;

  // One loop of one server with its own stall threshold: that server's total has no one value
  // (0, as admin.proto has it), so the fleet's has none either, though the other servers agree:
  // 0 too, in JSON (it was null) and text (it was "-") alike, with the line that says why.
  CtlRun one_loop = Brrrctl({"--target=" + servers_[0].admin(), "stall-threshold", "50ms", "--loop=0"});
  ASSERT_EQ(one_loop.code, 0) << one_loop;
  CtlRun after = Brrrctl({"--target=" + Targets(), "stats", "--json"});
  ASSERT_EQ(after.code, 0) << after;
  std::vector<std::string> after_lines = Lines(after.out);
  ASSERT_EQ(after_lines.size(), 4u) << after;
  EXPECT_DOUBLE_EQ(FromJson<admin::Stats>(TargetResult(after_lines[0]).second).total().stall_threshold_ms(), 0.0)
      << after_lines[0];
  EXPECT_TRUE(Contains(after_lines[3], "\"stall_threshold_ms\":0,")) << after_lines[3];
  EXPECT_FALSE(Contains(after_lines[3], "\"stall_threshold_ms\"]") ||
               Contains(after_lines[3], "\"stall_threshold_ms\","))
      << "not left out: " << after_lines[3];
  CtlRun after_text = Brrrctl({"--target=" + Targets(), "stats"});
  ASSERT_EQ(after_text.code, 0) << after_text;
  const std::string note =
      "0 in stall_threshold_ms: not the same in every loop (a setting's total is the value all share, else 0)\n";
  EXPECT_EQ(Count(after_text.out, note), 2u) << after_text;  // under the first server's table, and the fleet's
  const std::string fleet_text = after_text.out.substr(after_text.out.find("== total: "));
  bool row_seen = false;
  for (const std::string& line : Lines(fleet_text)) {
    if (line.rfind("stall_threshold_ms ", 0) != 0) continue;
    row_seen = true;
    EXPECT_EQ(line.substr(line.find_last_of(' ') + 1), "0") << line;
  }
  EXPECT_TRUE(row_seen) << fleet_text;
  EXPECT_TRUE(Contains(fleet_text, note)) << fleet_text;
}

TEST_F(FleetTest, AnUnreachableTargetIsReportedAndTheOthersAnswer) {
  StartServers(2);
  const std::string closed = "127.0.0.1:" + std::to_string(testing::PickFreePort());  // nothing listens
  const std::string targets = servers_[0].admin() + "," + closed + "," + servers_[1].admin();

  CtlRun r = Brrrctl({"--target=" + targets, "--timeout=20s", "info"});
  EXPECT_EQ(r.code, 3) << r;
  const std::string header = "== " + closed + " ==\nerror (exit 3): cannot reach the admin plane at " + closed;
  EXPECT_TRUE(Contains(r.out, header)) << r;
  EXPECT_LT(r.out.find("== " + servers_[0].admin() + " =="), r.out.find(header)) << r;
  EXPECT_LT(r.out.find(header), r.out.find("== " + servers_[1].admin() + " ==")) << r;
  EXPECT_EQ(Count(r.out, "pid "), 2u) << r;  // both servers' info
  EXPECT_TRUE(Contains(r.out, "== total: 2 of 3 targets answering ==\nloops      4\nlistening  127.0.0.1:")) << r;
  EXPECT_TRUE(Contains(r.err, "brrrctl: 1 of 3 targets not ok: " + closed + " (exit 3)")) << r;

  CtlRun json = Brrrctl({"--target=" + targets, "--timeout=20s", "--json", "sockets"});
  EXPECT_EQ(json.code, 3) << json;
  std::vector<std::string> lines = Lines(json.out);
  ASSERT_EQ(lines.size(), 4u) << json;
  EXPECT_EQ(TargetResult(lines[0]).first, servers_[0].admin());
  EXPECT_TRUE(Contains(lines[1], "{\"target\":\"" + closed + "\",\"error\":{\"exit_code\":3,\"message\":\"cannot reach"))
      << lines[1];
  EXPECT_EQ(TargetResult(lines[2]).first, servers_[1].admin());
  for (size_t i : {0, 2}) EXPECT_GE(FromJson<admin::ListSocketsResponse>(TargetResult(lines[i]).second).matched(), 2u);
  EXPECT_TRUE(Contains(lines[3], "{\"total\":{\"targets\":3,\"answering\":2,\"sockets\":")) << lines[3];

  // watch: a line per answering target per sample and a total per sample; the error once.
  CtlRun watch = Brrrctl({"--target=" + targets, "--timeout=20s", "--json", "watch", "--count=2", "--interval=50ms"});
  EXPECT_EQ(watch.code, 3) << watch;
  EXPECT_EQ(Count(watch.out, "{\"target\":\"" + servers_[0].admin() + "\",\"result\":{"), 2u) << watch;
  EXPECT_EQ(Count(watch.out, "{\"target\":\"" + servers_[1].admin() + "\",\"result\":{"), 2u) << watch;
  EXPECT_EQ(Count(watch.out, "{\"target\":\"" + closed + "\",\"error\":{\"exit_code\":3,"), 1u) << watch;
  EXPECT_EQ(Count(watch.out, "{\"total\":{\"targets\":3,\"answering\":2,"), 2u) << watch;
}

// A TCP listener on 127.0.0.1 that nobody accepts from: the kernel completes the handshake, and
// then nothing ever answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Targets that connect but never answer are waited for at once: the run takes one --timeout,
// not one per target (three in a row would take 9 s), and each is reported unreachable.
TEST(FleetUsageTest, SilentTargetsCostOneTimeoutNotOneEach) {
  constexpr int kTimeoutSeconds = 3;
  SilentListener a, b, c;
  const std::string targets = a.address() + "," + b.address() + "," + c.address();
  const auto start = std::chrono::steady_clock::now();
  CtlRun r = Brrrctl({"--target=" + targets, "--timeout=" + std::to_string(kTimeoutSeconds) + "s", "info"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.code, 3) << r;
  for (const SilentListener* l : {&a, &b, &c}) {
    EXPECT_TRUE(Contains(r.out, "== " + l->address() + " ==\nerror (exit 3): cannot reach the admin plane at " +
                                    l->address()))
        << r;
  }
  EXPECT_TRUE(Contains(r.err, "brrrctl: 3 of 3 targets not ok: ")) << r;
  // One after another the three would take three timeouts at the least: anything less shows
  // they were asked at once, with two timeouts of slack for a loaded machine.
  EXPECT_LT(took, seconds(3 * kTimeoutSeconds)) << r;
}

TEST_F(FleetTest, WatchPrintsALinePerTargetAndATotalPerSample) {
  StartServers(3);
  CtlRun r = Brrrctl({"--target=" + Targets(), "watch", "--count=3", "--interval=50ms"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u + 3 * 4) << r;  // the header, then 3 targets and the total, 3 times
  EXPECT_TRUE(Contains(lines[0], "TARGET")) << r;
  for (size_t tick = 0; tick < 3; ++tick) {
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(Contains(lines[1 + tick * 4 + i], servers_[i].admin())) << r;
    EXPECT_TRUE(Contains(lines[4 + tick * 4], " total ")) << r;
  }
}

// The words of a line of text output.
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

// watch's text total line is the sum of the targets' lines: CONNS, ACCEPTED, STALLS and READY
// add up, and the rates are "-" on the first tick (no target has an earlier sample to compare
// with), not a sum of nothing shown as 0, and figures on the next.
TEST_F(FleetTest, WatchTotalLineAddsUpTheTargetsLines) {
  StartServers(2);
  // Open echo connections, each served once so it is accepted: 1 on server 0, 2 on server 1.
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  for (size_t i : {0, 1, 1}) {
    clients.push_back(std::make_unique<testing::BlockingClient>(servers_[i].port));
    const std::string payload = testing::RandomBytes(100, static_cast<uint32_t>(clients.size()));
    ASSERT_TRUE(clients.back()->send_all(payload));
    ASSERT_EQ(clients.back()->recv_exact(payload.size()), payload);
  }
  CtlRun r = Brrrctl({"--target=" + Targets(), "watch", "--count=2", "--interval=50ms"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u + 2 * 3) << r;  // the header, then 2 targets and the total, twice
  // Words of a target line: UPTIME TARGET LOOP CONNS ACCEPTED IN/S OUT/S TASKS/S STALLS READY
  // LAG; of the total line the same without UPTIME, and "-" for LAG.
  for (size_t tick = 0; tick < 2; ++tick) {
    std::vector<std::string> a = Words(lines[1 + tick * 3]);
    std::vector<std::string> b = Words(lines[2 + tick * 3]);
    std::vector<std::string> total = Words(lines[3 + tick * 3]);
    ASSERT_EQ(a.size(), 11u) << r;
    ASSERT_EQ(b.size(), 11u) << r;
    ASSERT_EQ(total.size(), 10u) << r;
    EXPECT_EQ(a[1], servers_[0].admin()) << r;
    EXPECT_EQ(b[1], servers_[1].admin()) << r;
    EXPECT_EQ(total[0], "total") << r;
    EXPECT_EQ(a[3], "1") << r;
    EXPECT_EQ(b[3], "2") << r;
    EXPECT_EQ(a[4], "1") << r;
    EXPECT_EQ(b[4], "2") << r;
    auto sum = [&](size_t word) { return std::to_string(std::stoull(a[word]) + std::stoull(b[word])); };
    EXPECT_EQ(total[2], "3") << "CONNS\n" << r;
    EXPECT_EQ(total[3], "3") << "ACCEPTED\n" << r;
    EXPECT_EQ(total[7], sum(8)) << "STALLS\n" << r;
    EXPECT_EQ(total[8], sum(9)) << "READY\n" << r;
    for (size_t rate : {5, 6, 7}) {  // IN/S OUT/S TASKS/S of a target line; one less in the total's
      if (tick == 0) {
        EXPECT_EQ(a[rate], "-") << r;
        EXPECT_EQ(b[rate], "-") << r;
        EXPECT_EQ(total[rate - 1], "-") << "no rate to add on the first tick\n" << r;
      } else {
        EXPECT_NE(a[rate], "-") << r;
        EXPECT_NE(b[rate], "-") << r;
        EXPECT_NE(total[rate - 1], "-") << r;
      }
    }
  }
}

// A server that stops (SIGSTOP: its watch stream stays open and sends nothing) does not hold
// back the others' samples: after the silent wait (two intervals, at least 2 s) the ticks go
// on with its line "-", and its samples join them again once it is back.
TEST_F(FleetTest, WatchGoesOnWithoutATargetThatFallsSilent) {
  StartServers(2);
  const std::string live = servers_[0].admin();
  const std::string silent = servers_[1].admin();
  testing::Process watch(testing::Runfile("control/brrrctl/brrrctl"),
                         {"--target=" + Targets(), "watch", "--interval=100ms"});
  ASSERT_TRUE(watch.WaitForOutput(" total ")) << watch.err();

  // Continued however the test ends: TearDown's SIGTERM would wait on a stopped process.
  testing::Stopped frozen(*servers_[1].process);
  // Lines since `from`: how many are samples of `target` (its uptime first), and how many "-".
  auto count = [&](size_t from, const std::string& target) {
    std::pair<int, int> samples_and_dashes{0, 0};
    for (const std::string& line : Lines(watch.out().substr(from))) {
      std::vector<std::string> words = Words(line);
      if (words.size() < 2 || words[1] != target) continue;
      ++(words[0] == "-" ? samples_and_dashes.second : samples_and_dashes.first);
    }
    return samples_and_dashes;
  };
  // Where the first "-" of `target` since `from` begins, if there is one yet.
  auto first_dash = [&](size_t from, const std::string& target) -> std::optional<size_t> {
    const std::string out = watch.out();
    for (size_t at = from; at < out.size();) {
      size_t end = out.find('\n', at);
      if (end == std::string::npos) return std::nullopt;  // a line still being written
      std::vector<std::string> words = Words(out.substr(at, end - at));
      if (words.size() >= 2 && words[0] == "-" && words[1] == target) return at;
      at = end + 1;
    }
    return std::nullopt;
  };
  // Bounded: 20 s, where the silent wait and ten samples take about 3 s. Counted from the
  // stopped server's first "-": samples printed before it (a tick in flight, or lines the
  // test had not read yet when it stopped the server) may still be the server's.
  const size_t stopped_at = watch.out().size();
  auto deadline = std::chrono::steady_clock::now() + seconds(20);
  std::optional<size_t> dash_at;
  while (!(dash_at = first_dash(stopped_at, silent)).has_value() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(dash_at.has_value()) << "the silent target never said \"-\"\n" << watch.out();
  while (count(*dash_at, live).first < 10 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(count(*dash_at, live).first, 10) << "the live target's samples were held back\n" << watch.out();
  // Every later tick says "-" for the stopped server.
  EXPECT_EQ(count(*dash_at, silent).first, 0) << watch.out();
  EXPECT_GE(count(*dash_at, silent).second, 9) << watch.out();

  frozen.Resume();
  const size_t continued_at = watch.out().size();
  deadline = std::chrono::steady_clock::now() + seconds(20);
  while (count(continued_at, silent).first < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(count(continued_at, silent).first, 3) << "the server's samples did not come back\n" << watch.out();

  watch.Signal(SIGINT);
  std::optional<int> code = watch.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << watch.out();
  EXPECT_EQ(*code, 0) << watch.err();
}

// Every target's stream ends on one SIGINT/SIGTERM, and brrrctl exits 0 as with one target.
TEST_F(FleetTest, StreamsOfEveryTargetEndOnOneSignal) {
  StartServers(3);
  CtlRun inject = Brrrctl({"--target=" + Targets(), "inject", "blocking-spin", "--duration=150ms", "--loop=0"});
  ASSERT_EQ(inject.code, 0) << inject;
  struct Case {
    std::vector<std::string> args;
    int sig;
  };
  for (const Case& c : {Case{{"watch", "--interval=50ms"}, SIGINT}, Case{{"stalls", "--include_recent"}, SIGTERM}}) {
    std::vector<std::string> args = c.args;
    args.insert(args.begin(), "--target=" + Targets());
    testing::Process stream(testing::Runfile("control/brrrctl/brrrctl"), args);
    // Every target's stream is open: watch prints a total once each target has sent a sample;
    // stalls prints each target's recent stall.
    for (const Server& s : servers_) {
      ASSERT_TRUE(stream.WaitForOutput(c.args[0] == "watch" ? " total " : "[" + s.admin() + "]")) << stream.err();
    }
    // A target's first stall may be another (a loop's start-up on a loaded machine): each
    // target's stream shows the spin, recent or as it ends, before the signal (bounded: 30 s).
    auto spin_of_every_target_shown = [&] {
      for (const Server& s : servers_) {
        if (!SomeLineHasBoth(stream.out(), "[" + s.admin() + "]", "inject:blocking_spin")) return false;
      }
      return true;
    };
    for (int i = 0; i < 600 && c.args[0] == "stalls" && !spin_of_every_target_shown(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stream.Signal(c.sig);
    std::optional<int> code = stream.Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << c.args[0] << ": a stream went on after the signal\n" << stream.out();
    EXPECT_EQ(*code, 0) << c.args[0] << ": " << stream.err();
    if (c.args[0] == "stalls") {
      for (const Server& s : servers_) {
        EXPECT_TRUE(Contains(stream.out(), "[" + s.admin() + "]      ")) << stream.out();
        EXPECT_TRUE(SomeLineHasBoth(stream.out(), "[" + s.admin() + "]", "inject:blocking_spin")) << stream.out();
      }
    }
  }
}

TEST_F(FleetTest, ThrottleAppliesToEveryTarget) {
  StartServers(3);
  CtlRun set = Brrrctl({"--target=" + Targets(), "throttle", "--conn_rate=10KB", "--max_connections=777"});
  ASSERT_EQ(set.code, 0) << set;
  EXPECT_EQ(Count(set.out, "conn_rate        10KB/s\n"), 3u) << set;
  EXPECT_FALSE(Contains(set.out, "== total")) << set;  // an action: each result, no total

  CtlRun read = Brrrctl({"--target=" + Targets(), "--json", "throttle"});
  ASSERT_EQ(read.code, 0) << read;
  std::vector<std::string> lines = Lines(read.out);
  ASSERT_EQ(lines.size(), 3u) << read;
  for (size_t i = 0; i < 3; ++i) {
    auto [target, json] = TargetResult(lines[i]);
    EXPECT_EQ(target, servers_[i].admin());
    admin::Throttle throttle = FromJson<admin::Throttle>(json);
    EXPECT_EQ(throttle.bytes_per_second_per_connection(), 10000u) << target;
    EXPECT_EQ(throttle.max_connections(), 777u) << target;
  }
}

// A drain cannot be taken back: on several targets brrrctl drains them only with --yes, and
// without it refuses before any call, so that every server still serves.
TEST_F(FleetTest, DrainOnSeveralTargetsWantsYesAndThenDrainsEveryOne) {
  StartServers(2);
  CtlRun refused = Brrrctl({"--target=" + Targets(), "drain"});
  EXPECT_EQ(refused.code, 2) << refused;
  EXPECT_TRUE(Contains(refused.err, "2 targets given")) << refused;
  EXPECT_TRUE(Contains(refused.err, "pass --yes to drain them all; none was drained")) << refused;
  for (size_t i = 0; i < servers_.size(); ++i) {
    CtlRun health = Brrrctl({"--target=" + servers_[i].admin(), "health"});
    EXPECT_EQ(health.code, 0) << servers_[i].admin() << " is draining after a refused drain\n" << health;
    Echo(i, 100, 7);
  }

  CtlRun drained = Brrrctl({"--target=" + Targets(), "drain", "--yes"});
  ASSERT_EQ(drained.code, 0) << drained;
  EXPECT_EQ(Count(drained.out, "draining: 0 connections open"), 2u) << drained;
  for (const Server& s : servers_) {
    std::optional<int> code = s.process->Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << s.admin() << " did not exit after its drain";
    EXPECT_EQ(*code, 0) << s.process->err();
  }
}

TEST_F(FleetTest, TargetsFileSkipsCommentsAndKeepsItsOrder) {
  StartServers(3);
  const std::string file = WriteFile("fleet.txt", "# the fleet, last one first\n" + servers_[2].admin() +
                                                      "   # canary\n\n  " + servers_[0].admin() + "\n#" +
                                                      servers_[1].admin() + "\n");
  CtlRun r = Brrrctl({"--targets_file=" + file, "--json", "info"});
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r;
  for (auto [line, server] : {std::pair<size_t, size_t>{0, 2}, {1, 0}}) {
    auto [target, json] = TargetResult(lines[line]);
    EXPECT_EQ(target, servers_[server].admin());
    EXPECT_EQ(static_cast<pid_t>(FromJson<admin::ServerInfo>(json).pid()), servers_[server].process->pid());
  }
  EXPECT_TRUE(Contains(lines[2], "{\"total\":{\"targets\":2,\"answering\":2,\"loops\":4,")) << lines[2];

  // One address in the file: exactly the output of --target with it.
  const std::string one = WriteFile("one.txt", servers_[1].admin() + "\n");
  CtlRun from_file = Brrrctl({"--targets_file=" + one, "throttle"});
  CtlRun from_flag = Brrrctl({"--target=" + servers_[1].admin(), "throttle"});
  EXPECT_EQ(from_file.code, 0) << from_file;
  EXPECT_EQ(from_file.out, from_flag.out);
  EXPECT_FALSE(Contains(from_file.out, "==")) << from_file;

  // A UTF-8 byte-order mark (Windows editors write one) is not part of the first address, which
  // went to DNS with it and failed (exit 3).
  const std::string bom = WriteFile("bom.txt", "\xEF\xBB\xBF" + servers_[1].admin() + "\r\n");
  CtlRun from_bom = Brrrctl({"--targets_file=" + bom, "throttle"});
  EXPECT_EQ(from_bom.code, 0) << from_bom;
  EXPECT_EQ(from_bom.out, from_flag.out);
}

TEST(FleetUsageTest, BadTargetListsAreUsageErrorsBeforeAnyCall) {
  const std::string a = "127.0.0.1:" + std::to_string(testing::PickFreePort());
  const std::string b = "127.0.0.1:" + std::to_string(testing::PickFreePort());
  const std::string bad_line = WriteFile("bad.txt", "# fleet\n" + a + "\n\n" + "127.0.0.1\n");
  const std::string twice = WriteFile("twice.txt", a + "\n" + b + "\n" + a + "  # again\n");
  const std::string comments = WriteFile("comments.txt", "# nothing here\n\n   # at all\n");
  const std::string nul = WriteFile("nul.txt", a + std::string(1, '\0') + "garbage\n");
  std::string fleet_of_1025;
  for (int port = 1; port <= 1025; ++port) fleet_of_1025 += "127.0.0.1:" + std::to_string(port) + "\n";
  const std::string too_many = WriteFile("too_many.txt", fleet_of_1025);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--target=" + a + ",", "info"}, "--target=" + a + ",: address 2: an empty address"},
      {{"--target=" + a + "," + a, "info"}, "--target=" + a + "," + a + ": address 2: " + a + " is address 1 already"},
      {{"--target=" + a + ",127.0.0.1", "info"}, "--target=" + a + ",127.0.0.1: address 2: \"127.0.0.1\": no port"},
      {{"--targets_file=/nonexistent/fleet.txt", "info"}, "--targets_file=/nonexistent/fleet.txt: cannot read it"},
      {{"--targets_file=" + comments, "info"}, "--targets_file=" + comments + ": no address in it"},
      {{"--targets_file=" + bad_line, "info"}, "--targets_file=" + bad_line + " line 4: \"127.0.0.1\": no port"},
      {{"--targets_file=" + twice, "info"}, "--targets_file=" + twice + " line 3: " + a + " is on line 1 already"},
      // The whole address, escaped: the message was cut at the NUL.
      {{"--targets_file=" + nul, "info"},
       "--targets_file=" + nul + " line 1: \"" + a + "\\x00garbage\": a space, quote or control character in it"},
      // Each target is called at once, on a thread of its own: their number is bounded.
      {{"--targets_file=" + too_many, "info"},
       "--targets_file=" + too_many + " line 1025: more than 1024 targets (brrrctl calls them all at once, a thread "
       "each)"},
      {{"--target=" + a, "--targets_file=" + twice, "info"}, "give --target or --targets_file, not both"},
      // A command's own usage error, said once (not once per target).
      {{"--target=" + a + "," + b, "inject", "blocking-sleep"}, "inject needs --duration"},
      // What names one server's connection or injection is for one target only.
      {{"--target=" + a + "," + b, "close", "12"}, "close takes one target; 2 given"},
      {{"--target=" + a + "," + b, "cancel", "1"}, "cancel takes one target; 2 given"},
  };
  for (const Case& c : cases) {
    CtlRun r = Brrrctl(c.args);
    EXPECT_EQ(r.code, 2) << r;
    EXPECT_EQ(Count(r.err, "brrrctl: " + c.message), 1u) << r;
    EXPECT_TRUE(Contains(r.err, "brrrctl help ")) << r;
    EXPECT_EQ(r.out, "") << r;
  }
}

TEST(FleetUsageTest, HelpDescribesSeveralTargets) {
  CtlRun help = Brrrctl({"--help"});
  ASSERT_EQ(help.code, 0) << help;
  for (const char* part : {"--targets_file=PATH", "Several targets", "{\"target\":\"HOST:PORT\",\"result\":",
                           "{\"target\":\"HOST:PORT\",\"error\":{\"exit_code\":3", "{\"total\":{\"targets\":3",
                           "0 ok, 5 not serving,\n1 server error, 4 unauthenticated, 3 unreachable",
                           "An address given twice, in either,\n                             is a usage error (exit 2)"}) {
    EXPECT_TRUE(Contains(help.out, part)) << part << "\n" << help.out;
  }
}

}  // namespace
}  // namespace brrr
