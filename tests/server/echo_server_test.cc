// brrr-echo, the real binary on every backend: binary-safe echo, big messages, bounded memory
// for a client that never reads, connect/close cycles without leaks, descriptor exhaustion
// without a busy loop, SIGTERM losing nothing, --reply_prefix, limits, and flag errors.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::BlockingClient;
using testing::Process;

std::string EchoBinary() { return testing::Runfile("server/brrr-echo/brrr-echo"); }

// Whether the server's RSS measures what it holds. Under ASan and TSan it also counts the
// allocator's quarantine or its own heap and shadow memory: the heap blocks that keep a paused
// connection's input (server/connection.h) add 2 to 19 MB there, against at most 1 MB in a
// plain build (measured). Plain, -c opt and UBSan builds check the memory bounds; ASan and TSan
// run the rest of those tests.
bool RssMeasuresHoldings() {
  const char* sanitizer = std::getenv("BRRR_SANITIZER");
  return sanitizer == nullptr || (std::string(sanitizer) != "asan" && std::string(sanitizer) != "tsan");
}

class EchoServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  }

  // Starts brrr-echo on this backend and a free port.
  std::unique_ptr<Process> Start(std::vector<std::string> args = {}, testing::ProcessOptions options = {}) {
    args.insert(args.begin(), {"--backend=" + GetParam(), "--port=0"});
    auto p = std::make_unique<Process>(EchoBinary(), args, options);
    port_ = p->ListeningPort();
    EXPECT_NE(port_, 0) << "stdout: " << p->out() << "\nstderr: " << p->err();
    return p;
  }

  // SIGTERM, then the exit code (bounded).
  static int Stop(Process& p) {
    p.Signal(SIGTERM);
    std::optional<int> code = p.Wait(seconds(30));
    EXPECT_TRUE(code.has_value()) << "the server did not exit after SIGTERM";
    return code.value_or(-1);
  }

  // Sends `payload` and reads the echo concurrently.
  std::string EchoOf(const std::string& payload) {
    BlockingClient c(port_);
    std::thread writer([&] {
      EXPECT_TRUE(c.send_all(payload));
      c.shutdown_write();
    });
    std::string echoed = c.recv_until_eof();
    writer.join();
    return echoed;
  }

  uint16_t port_ = 0;
};

TEST_P(EchoServerTest, SaysWhichBackendAndWhereItListens) {
  auto server = Start();
  EXPECT_NE(server->out().find("(backend " + GetParam() + ", 1 loop"), std::string::npos) << server->out();
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, EchoesRandomBinaryPayloadsWithEveryByteValue) {
  auto server = Start();
  for (uint32_t seed = 0; seed < 20; ++seed) {
    std::string payload = testing::RandomBytes(256 + seed * 997, seed);
    EXPECT_TRUE(EchoOf(payload) == payload) << "seed " << seed;
  }
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, EchoesATenMebibyteMessage) {
  auto server = Start();
  std::string payload = testing::RandomBytes(10 << 20, 99);
  std::string echoed = EchoOf(payload);
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, AClientThatNeverReadsCannotGrowTheServerAndOthersAreServed) {
  // The loop's receive-buffer pool is fixed memory that traffic touches page by page (on
  // io_uring the kernel cycles through all of it), so keep it small next to the bound below:
  // 256 x 16 KiB = 4 MiB.
  auto server = Start({"--high_water=65536", "--low_water=16384", "--recv_buffers=256"});
  BlockingClient hog(port_);
  hog.set_receive_buffer(4096);
  uint64_t rss_before = server->RssBytes();
  std::atomic<uint64_t> pushed{0};
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    // Sends until the server stops reading and every buffer on the way is full; bounded.
    std::string block(65536, 'h');
    TimePoint give_up = Clock::now() + seconds(20);
    while (!stop.load() && Clock::now() < give_up) {
      ssize_t n = ::send(hog.fd(), block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        pushed += static_cast<uint64_t>(n);
      } else {
        std::this_thread::sleep_for(milliseconds(5));
      }
    }
  });
  std::this_thread::sleep_for(milliseconds(500));
  // Someone else is served meanwhile.
  std::string payload = testing::RandomBytes(100000, 5);
  EXPECT_TRUE(EchoOf(payload) == payload);
  uint64_t rss_after = server->RssBytes();
  stop = true;
  flood.join();
  // What the hog pushed sits in kernel buffers; the server itself holds at most ~high_water.
  EXPECT_LT(pushed.load(), 64u << 20) << "the server stopped reading the hog";
  if (RssMeasuresHoldings()) {
    EXPECT_LT(rss_after, rss_before + (8u << 20)) << "server memory grew by " << (rss_after - rss_before) << " bytes";
  }
  hog.close();
  EXPECT_EQ(Stop(*server), 0);
}

// A client that sends fast and reads slowly: the server pauses it at the high-water mark and
// resumes it many times, reading it with single receives of what fits below the mark while it
// is backed up. Every byte comes back, in order, and the server's memory stays bounded.
// (How much the queue holds is measured by bench/slow_reader.py through the admin plane.)
TEST_P(EchoServerTest, ASlowReaderIsPausedAndResumedAndGetsEveryByteBack) {
  auto server = Start({"--high_water=65536", "--low_water=16384", "--recv_buffers=256"});
  BlockingClient slow(port_);
  slow.set_receive_buffer(65536);
  int big = 8 << 20;
  setsockopt(slow.fd(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  const std::string payload = testing::RandomBytes(4 << 20, 11);
  uint64_t rss_before = server->RssBytes();
  std::thread writer([&] {
    EXPECT_TRUE(slow.send_all(payload));
    slow.shutdown_write();
  });
  std::string echoed;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    // About 4 MB/s: slower than the server can echo; bounded by the payload's size.
    std::string part;
    while (echoed.size() < payload.size()) {
      part = slow.recv_exact(std::min<size_t>(16384, payload.size() - echoed.size()));
      if (part.empty()) break;
      echoed += part;
      std::this_thread::sleep_for(milliseconds(4));
    }
    done = true;
  });
  uint64_t rss_max = rss_before;
  TimePoint give_up = Clock::now() + seconds(60);
  while (!done.load() && Clock::now() < give_up) {
    rss_max = std::max(rss_max, server->RssBytes());
    std::this_thread::sleep_for(milliseconds(20));
  }
  writer.join();
  reader.join();
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload) << "the echo differs";
  // The pool (4 MiB) is mapped at start; what the queue holds beyond it is heap.
  if (RssMeasuresHoldings()) {
    EXPECT_LT(rss_max, rss_before + (3u << 20)) << "server memory grew by " << (rss_max - rss_before) << " bytes";
  }
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, TenThousandConnectCloseCyclesLeakNoDescriptor) {
  auto server = Start();
  int fds_before = server->OpenFds();
  for (int i = 0; i < 10000; ++i) {
    BlockingClient c(port_);
    // The last one too: once it is echoed, the accept loop (one loop: first in, first out)
    // has taken every earlier connection out of the backlog.
    if (i % 100 == 0 || i == 9999) {
      ASSERT_TRUE(c.send_all("x"));
      ASSERT_EQ(c.recv_exact(1), "x");
    }
  }
  // The server closes its side as it notices each close; give it a moment (bounded).
  TimePoint give_up = Clock::now() + seconds(30);
  while (server->OpenFds() != fds_before && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_EQ(server->OpenFds(), fds_before);
  EXPECT_EQ(Stop(*server), 0);
  EXPECT_NE(server->out().find("10000 connections served"), std::string::npos) << server->out();
}

TEST_P(EchoServerTest, OutOfDescriptorsItKeepsServingAndDoesNotSpin) {
  // UBSan's vptr check proves memory readable by writing it into a pipe (compiler-rt's
  // IsAccessibleMemoryRange). With no descriptor left that probe fails, and it aborts with a
  // false "object has invalid vptr"; its suppressions cannot match an object it cannot read.
  // The plain and ASan runs cover this test.
  const char* sanitizer = std::getenv("BRRR_SANITIZER");
  if (sanitizer != nullptr && std::string(sanitizer) == "ubsan") {
    GTEST_SKIP() << "UBSan's runtime needs a free descriptor for its vptr check";
  }
  testing::ProcessOptions limited;
  limited.max_open_files = 64;  // stdio, the backend and the listener take some; ~50 connections fit
  auto server = Start({}, limited);
  std::vector<std::unique_ptr<BlockingClient>> clients;
  for (int i = 0; i < 100; ++i) clients.push_back(std::make_unique<BlockingClient>(port_));
  // The first ones were accepted and are served.
  ASSERT_TRUE(clients[0]->send_all("still here"));
  EXPECT_EQ(clients[0]->recv_exact(10), "still here") << server->err();
  // At the limit with clients waiting in the backlog: the server must not busy-loop.
  std::this_thread::sleep_for(milliseconds(300));
  double cpu_before = server->CpuSeconds();
  std::this_thread::sleep_for(seconds(2));
  double cpu_used = server->CpuSeconds() - cpu_before;
  EXPECT_LT(cpu_used, 0.5) << "a busy loop would use ~2 s of CPU in these 2 s";
  EXPECT_NE(server->err().find("Too many open files"), std::string::npos) << server->err();
  // Descriptors free up: the waiting clients get served.
  for (int i = 0; i < 50; ++i) clients[i].reset();
  ASSERT_TRUE(clients[99]->send_all("served late")) << server->err();
  EXPECT_EQ(clients[99]->recv_exact(11), "served late") << server->err();
  clients.clear();
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, SigtermWithDataInFlightLosesNoByte) {
  auto server = Start({"--drain_timeout=20s"});
  BlockingClient c(port_);
  std::string payload = testing::RandomBytes(4 << 20, 8);
  std::string echoed;
  std::thread reader([&] { echoed = c.recv_until_eof(); });
  size_t half = payload.size() / 2;
  ASSERT_TRUE(c.send_all(payload.substr(0, half)));
  server->Signal(SIGTERM);
  ASSERT_TRUE(server->WaitForOutput("draining"));
  // The open connection keeps being served while the server drains.
  ASSERT_TRUE(c.send_all(payload.substr(half)));
  c.shutdown_write();
  reader.join();
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  std::optional<int> code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server->out().find("drained in"), std::string::npos) << server->out();
  EXPECT_NE(server->out().find("1 connections served"), std::string::npos) << server->out();
}

TEST_P(EchoServerTest, ConnectionsStillOpenAtTheDrainDeadlineAreClosed) {
  auto server = Start({"--drain_timeout=200ms"});
  BlockingClient idle(port_);
  ASSERT_TRUE(idle.send_all("a"));
  ASSERT_EQ(idle.recv_exact(1), "a");
  std::optional<int> code;
  server->Signal(SIGTERM);
  code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server->out().find("1 closed at the drain deadline"), std::string::npos) << server->out();
  EXPECT_EQ(idle.recv_until_eof(), "") << "the client sees an orderly close";
}

TEST_P(EchoServerTest, ASecondSignalClosesEverythingAndTheSummarySaysSo) {
  auto server = Start({"--drain_timeout=60s"});
  BlockingClient a(port_);
  BlockingClient b(port_);
  ASSERT_TRUE(a.send_all("a"));
  ASSERT_EQ(a.recv_exact(1), "a");
  ASSERT_TRUE(b.send_all("b"));
  ASSERT_EQ(b.recv_exact(1), "b");
  server->Signal(SIGTERM);
  ASSERT_TRUE(server->WaitForOutput("draining"));
  server->Signal(SIGTERM);
  std::optional<int> code = server->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "a second signal must end the drain at once";
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server->out().find("closing every connection now"), std::string::npos) << server->out();
  EXPECT_NE(server->out().find("0 closed at the drain deadline, 2 closed by a second signal"), std::string::npos)
      << server->out();
  EXPECT_EQ(a.recv_until_eof(), "");
  EXPECT_EQ(b.recv_until_eof(), "");
}

TEST_P(EchoServerTest, ReplyPrefixAnswersEachLine) {
  auto server = Start({"--reply_prefix=Echo : "});
  std::string binary_line("bin\x00\xff\xfe", 6);
  EXPECT_EQ(EchoOf("hello\nworld\n"), "Echo : hello\nEcho : world\n");
  EXPECT_EQ(EchoOf(binary_line + "\n"), "Echo : " + binary_line + "\n") << "not UTF-8: still answered";
  EXPECT_EQ(EchoOf("no newline at the end"), "Echo : no newline at the end");
  // A line split across sends gets one prefix.
  {
    BlockingClient c(port_);
    ASSERT_TRUE(c.send_all("spl"));
    std::this_thread::sleep_for(milliseconds(20));
    ASSERT_TRUE(c.send_all("it\nnext\n"));
    c.shutdown_write();
    EXPECT_EQ(c.recv_until_eof(), "Echo : split\nEcho : next\n");
  }
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, MaxConnectionsRefusesCleanly) {
  auto server = Start({"--max_connections=2"});
  BlockingClient a(port_);
  BlockingClient b(port_);
  ASSERT_TRUE(a.send_all("a"));
  ASSERT_EQ(a.recv_exact(1), "a");
  ASSERT_TRUE(b.send_all("b"));
  ASSERT_EQ(b.recv_exact(1), "b");
  BlockingClient refused(port_);
  EXPECT_EQ(refused.recv_until_eof(), "") << "the third is closed at once";
  a.close();
  // A slot frees up: new connections are served again (bounded retries).
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    BlockingClient c(port_);
    c.send_all("c");
    served = c.recv_exact(1) == "c";
    if (!served) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(served);
  b.close();
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, IdleConnectionsAreClosed) {
  auto server = Start({"--idle_timeout=100ms"});
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all("x"));
  ASSERT_EQ(c.recv_exact(1), "x");
  EXPECT_EQ(c.recv_until_eof(), "") << "closed by the server after 100 ms of silence";
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, SeveralLoopsShareThePort) {
  auto server = Start({"--loops=3"});
  EXPECT_NE(server->out().find("3 loops"), std::string::npos) << server->out();
  for (int i = 0; i < 30; ++i) {
    std::string payload = testing::RandomBytes(1000, static_cast<uint32_t>(i));
    EXPECT_TRUE(EchoOf(payload) == payload);
  }
  EXPECT_EQ(Stop(*server), 0);
}

TEST_P(EchoServerTest, IPv6) {
  auto server = std::make_unique<Process>(
      EchoBinary(), std::vector<std::string>{"--backend=" + GetParam(), "--port=0", "--host=::1"});
  uint16_t port = server->ListeningPort();
  if (port == 0 && (server->err().find("Address family not supported") != std::string::npos ||
                    server->err().find("Cannot assign requested address") != std::string::npos)) {
    BRRR_SKIP_OR_FAIL("ipv6", "no IPv6 loopback here: " + server->err());
  }
  ASSERT_NE(port, 0) << server->err();
  EXPECT_NE(server->out().find("listening on [::1]:"), std::string::npos) << server->out();
  BlockingClient c(port, /*ipv6=*/true);
  ASSERT_TRUE(c.send_all("six"));
  EXPECT_EQ(c.recv_exact(3), "six");
  c.close();
  EXPECT_EQ(Stop(*server), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, EchoServerTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

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
      {{"--high_water=100", "--low_water=200"}, 2, "--low_water (200) must be below --high_water (100)"},
      {{"--host=not-an-address"}, 2, "is not an IPv4 or IPv6 address"},
      {{"--backend=kqueue"}, 3, "backend \"kqueue\" not found"},
      {{"--idle_timeout=banana"}, 1, "idle_timeout"},
      {{"--reply_prefix=" + std::string(4097, 'P')},
       2,
       "--reply_prefix is 4097 bytes long: it may be at most 4096 bytes"},
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

TEST(EchoServerFlagsTest, HelpDescribesTheServer) {
  Process p(EchoBinary(), {"--help"});
  p.Wait(seconds(30));
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
}

}  // namespace
}  // namespace brrr
