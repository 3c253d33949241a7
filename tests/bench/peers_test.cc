// The benchmark's peer echo servers (bench/peers: libuv, libevent, Boost.Asio, liburing), each
// run as its own process: every byte comes back as sent under brrr-bench's loads (which check
// every byte) and when more is in flight than the peer buffers, a client that sends and never
// reads does not make the peer queue without bound, every connection's descriptor is released
// however it ends (EOF, reset, still open at SIGTERM), and SIGTERM ends the peer with exit code
// 0 (under --config=asan, LeakSanitizer checks that nothing was left unfreed). A peer that fails
// here would make bench/echo.sh's comparison dishonest. Loopback only; every load is bounded in
// time and bytes.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/bench/bench_report.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::BenchBinary;
using testing::BlockingClient;
using testing::JsonNumber;
using testing::Process;
using testing::ProcessOptions;



// Room for 1,000 connections on each side.
ProcessOptions ManyFds() {
  ProcessOptions options;
  options.max_open_files = 4096;
  return options;
}

// The parameter: a peer's binary, and after a '+' one setting of its environment (an experiment
// mode that bench/README.md measures, held to the same promises).
class PeerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& param = GetParam();
    size_t plus = param.find('+');
    ProcessOptions options = ManyFds();
    if (plus != std::string::npos) options.env.push_back(param.substr(plus + 1));
    peer_ = std::make_unique<Process>(testing::Runfile("bench/peers/" + param.substr(0, plus)),
                                      std::vector<std::string>{"0"}, options);
    port_ = peer_->ListeningPort();
    ASSERT_NE(port_, 0) << peer_->out() << peer_->err();
  }

  // Waits (bounded) until the peer has `fds` descriptors open; returns the last count seen.
  int WaitForOpenFds(int fds) {
    int now = peer_->OpenFds();
    for (int i = 0; i < 3000 && now != fds; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      now = peer_->OpenFds();
    }
    return now;
  }

  // Runs brrr-bench against the peer for 1 s with `load`'s flags: it ends with exit code 0 and
  // "ok", every byte checked and none wrong, and some messages echoed.
  void ExpectEveryByteBack(const std::vector<std::string>& load) {
    std::vector<std::string> args = {"--port=" + std::to_string(port_), "--duration=1s", "--progress=false"};
    args.insert(args.end(), load.begin(), load.end());
    Process bench(BenchBinary(), args, ManyFds());
    std::optional<int> code = bench.Wait(seconds(120));
    ASSERT_TRUE(code.has_value()) << load[0];
    EXPECT_EQ(*code, 0) << load[0] << " " << load[1] << " " << load[2] << ": " << bench.out() << bench.err();
    EXPECT_NE(bench.out().find("\"ok\":true"), std::string::npos) << bench.out();
    EXPECT_EQ(JsonNumber(bench.out(), "mismatches"), 0) << bench.out();
    EXPECT_GT(JsonNumber(bench.out(), "messages"), 0) << bench.out();
  }

  // SIGTERM: the peer frees everything and exits 0.
  void ExpectCleanExit() {
    peer_->Signal(SIGTERM);
    std::optional<int> code = peer_->Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << "still running 30 s after SIGTERM";
    EXPECT_EQ(*code, 0) << peer_->err();
  }

  std::unique_ptr<Process> peer_;
  uint16_t port_ = 0;
};

TEST_P(PeerTest, EchoesEveryByteUnderEachBenchmarkLoad) {
  const std::vector<std::vector<std::string>> loads = {
      {"--connections=64", "--size=64", "--depth=1"},       // ping-pong
      {"--connections=64", "--size=64", "--depth=16"},      // pipelined x16
      // Many connections; they connect during the warm-up (measuring starts after it, connected
      // or not: a sanitizer build on a busy machine took over 1 s to connect 1,000).
      {"--connections=1000", "--size=64", "--depth=1", "--warmup=3s"},
      {"--connections=4", "--size=65536", "--depth=1"},     // big messages
  };
  for (const std::vector<std::string>& load : loads) ExpectEveryByteBack(load);
  ExpectCleanExit();
}

TEST_P(PeerTest, EchoesEveryByteWhenLargeMessagesOutrunItsBuffers) {
  // 200 connections with four 64 KiB messages each in flight: 50 MiB, more than a peer holds
  // (liburing_echo's pool is 16 MiB, so its receives run out of buffers and must be armed again
  // as buffers come back); every byte still comes back, on every connection.
  ExpectEveryByteBack({"--connections=200", "--size=65536", "--depth=4", "--warmup=2s"});
  ExpectCleanExit();
}

TEST_P(PeerTest, AClientThatNeverReadsIsHeldBackByFlowControl) {
  // Sends 64 KiB blocks without reading (a 4 KiB receive buffer) until the sends stop going
  // through for 2 s or `limit` bytes have gone. A peer that stops reading past its high-water
  // mark blocks the client before the limit: the limit is past what this host's socket buffers
  // hold (tcp_rmem's maximum is 32 MiB on some) and what a peer may read ahead of its stop
  // (liburing_echo's whole pool, 16 MiB). One that keeps reading and queueing the echo takes
  // it all into its own memory.
  const size_t limit = std::max<size_t>(64 << 20, testing::MostANeverReaderCanSend(16 << 20, 4096));
  uint64_t rss_before = peer_->RssBytes();
  BlockingClient client(port_);
  client.set_receive_buffer(4096);
  std::string block = testing::RandomBytes(64 << 10, 15);
  size_t sent = 0;
  while (sent < limit) {
    ssize_t n = ::send(client.fd(), block.data(), block.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << "send: " << errno;
    pollfd p = {client.fd(), POLLOUT, 0};
    if (::poll(&p, 1, 2000) == 0) break;  // held back
  }
  uint64_t rss_after = peer_->RssBytes();
  EXPECT_LT(sent, limit) << "the peer took " << limit << " bytes from a client that never reads";
  EXPECT_LT(rss_after, rss_before + (16 << 20)) << "RSS " << rss_before << " -> " << rss_after << " after " << sent
                                                  << " bytes sent";
  // What came back so far is the start of what was sent.
  std::string echoed = client.recv_exact(4096);
  ASSERT_EQ(echoed.size(), 4096u);
  EXPECT_EQ(echoed, block.substr(0, 4096));
  client.set_linger_zero();
  client.close();
  ExpectCleanExit();
}

TEST_P(PeerTest, EveryConnectionIsReleasedHoweverItEnds) {
  int fds_before = peer_->OpenFds();
  std::string message = testing::RandomBytes(1000, 7);
  {
    // Ends with EOF after an echo: the peer finishes its side too.
    BlockingClient polite(port_);
    ASSERT_TRUE(polite.send_all(message));
    ASSERT_EQ(polite.recv_exact(message.size()), message);
    polite.shutdown_write();
    EXPECT_EQ(polite.recv_until_eof(), "");
  }
  {
    // Ends with EOF while its echo is still unread, and (64 KiB, in several reads) still being
    // sent: the echo still comes back whole first.
    BlockingClient hasty(port_);
    std::string block = testing::RandomBytes(64 << 10, 9);
    ASSERT_TRUE(hasty.send_all(block));
    hasty.shutdown_write();
    EXPECT_EQ(hasty.recv_until_eof(), block);
  }
  for (int i = 0; i < 8; ++i) {
    // Ends with a reset while data is in flight both ways.
    BlockingClient rude(port_);
    ASSERT_TRUE(rude.send_all(testing::RandomBytes(64 << 10, i)));
    rude.set_linger_zero();
    rude.close();
  }
  EXPECT_EQ(WaitForOpenFds(fds_before), fds_before);
  // Still open at SIGTERM, one with an echo waiting to be read: freed at exit all the same.
  BlockingClient idle(port_);
  BlockingClient unread(port_);
  ASSERT_TRUE(unread.send_all(message));
  EXPECT_EQ(WaitForOpenFds(fds_before + 2), fds_before + 2);
  ExpectCleanExit();
}

INSTANTIATE_TEST_SUITE_P(Peers, PeerTest,
                         ::testing::Values("libuv_echo", "libevent_echo", "libevent_echo+ECHO_BATCH_SENDS=1",
                                           "asio_echo", "liburing_echo",
                                           "liburing_echo+LIBURING_ECHO_BUNDLES=0"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace brrr
