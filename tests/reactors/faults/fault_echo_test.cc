// brrr-echo on the fault-injection copies of select, poll and epoll (fault_shim.c: EINTR,
// spurious EAGAIN, short transfers, duplicated events in a good share of its system calls):
// every byte still comes back, in order, whether clients run side by side, read slowly (so the
// server pauses and resumes them), want a prefix per line, or are mid-stream when SIGTERM
// comes; and the plugin's own count shows the faults really happened.
#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/drain_traffic.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::BlockingClient;
using testing::Process;

class FaultEchoTest : public ::testing::TestWithParam<std::string> {
 protected:
  // The backend's name, from its plugin's path (.../faults/NAME/libbrrr_reactor_NAME.so).
  std::string Name() const {
    std::string dir = GetParam().substr(0, GetParam().rfind('/'));
    return dir.substr(dir.rfind('/') + 1);
  }
  std::string Dir() const { return GetParam().substr(0, GetParam().rfind('/')); }

  std::unique_ptr<Process> Start(std::vector<std::string> args) {
    args.insert(args.begin(), {"--backend=" + Name(), "--plugin_dir=" + Dir(), "--port=0"});
    auto p = std::make_unique<Process>(testing::Runfile("server/brrr-echo/brrr-echo"), args);
    port_ = p->ListeningPort();
    EXPECT_NE(port_, 0) << p->err();
    return p;
  }

  // SIGTERM, the exit code, and the faults the plugin says it injected (EINTR, EAGAIN, short
  // transfers, duplicated events). With `each_kind`, every kind this backend is given must
  // have happened: for the run of eight clients side by side, where each kind is expected
  // tens of times over (none at all would be vanishingly unlikely); the other runs only have to
  // have been through the shim.
  void StopAndCheckFaults(Process& p, bool each_kind = true) {
    p.Signal(SIGTERM);
    std::optional<int> code = p.Wait(seconds(60));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0) << p.err();
    std::smatch m;
    std::string err = p.err();
    ASSERT_TRUE(std::regex_search(err, m,
                                  std::regex("brrr faults \\(" + Name() +
                                             "\\): (\\d+) EINTR, (\\d+) EAGAIN, (\\d+) short transfers, (\\d+) "
                                             "duplicated events")))
        << err;
    std::printf("%s\n", m[0].str().c_str());
    if (!each_kind) return;
    EXPECT_GT(std::stoull(m[1]), 0u) << m[0];
    EXPECT_GT(std::stoull(m[3]), 0u) << m[0];
    if (Name() == "epoll") {
      EXPECT_GT(std::stoull(m[4]), 0u) << m[0];
    } else {
      EXPECT_GT(std::stoull(m[2]), 0u) << m[0];
    }
  }

  // Sends `payload` on a new connection while reading the echo; returns what came back.
  std::string EchoOf(const std::string& payload) {
    BlockingClient c(port_, false, 60000);
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

TEST_P(FaultEchoTest, ClientsSideBySideGetEveryByteBack) {
  auto server = Start({"--loops=2"});
  constexpr int kClients = 8;
  std::vector<std::string> echoed(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] { echoed[i] = EchoOf(testing::RandomBytes((1 << 20) + 997 * i, 40 + i)); });
  }
  for (std::thread& c : clients) c.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(echoed[i] == testing::RandomBytes((1 << 20) + 997 * i, 40 + i)) << "client " << i;
  }
  for (uint32_t size : {1u, 255u, 4096u, 65537u}) {
    std::string payload = testing::RandomBytes(size, size);
    EXPECT_TRUE(EchoOf(payload) == payload) << size;
  }
  StopAndCheckFaults(*server);
}

// A slow reader: the server stops reading it at --high_water and resumes at --low_water, many
// times over, through short sends and spurious wake-ups.
TEST_P(FaultEchoTest, ASlowReaderIsPausedAndResumedAndGetsEveryByteBack) {
  auto server = Start({"--high_water=65536", "--low_water=16384"});
  BlockingClient slow(port_, false, 60000);
  slow.set_receive_buffer(16384);
  const std::string payload = testing::RandomBytes(2 << 20, 12);
  std::thread writer([&] {
    EXPECT_TRUE(slow.send_all(payload));
    slow.shutdown_write();
  });
  std::string echoed;
  while (echoed.size() < payload.size()) {
    std::string part = slow.recv_exact(std::min<size_t>(8192, payload.size() - echoed.size()));
    if (part.empty()) break;
    echoed += part;
    std::this_thread::sleep_for(milliseconds(1));  // pacing, so the server backs up: no assertion waits on it
  }
  writer.join();
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  StopAndCheckFaults(*server, /*each_kind=*/false);
}

TEST_P(FaultEchoTest, EveryLineGetsItsPrefix) {
  auto server = Start({"--reply_prefix=Echo : "});
  std::string in;
  std::string expected;
  std::string bytes = testing::RandomBytes(200000, 13);
  for (size_t at = 0; at < bytes.size();) {
    size_t length = 1 + static_cast<uint8_t>(bytes[at]) % 200;
    std::string line = bytes.substr(at, length);
    for (char& c : line) c = c == '\n' ? ' ' : c;
    in += line + "\n";
    expected += "Echo : " + line + "\n";
    at += length;
  }
  EXPECT_TRUE(EchoOf(in) == expected);
  StopAndCheckFaults(*server, /*each_kind=*/false);
}

TEST_P(FaultEchoTest, SigtermWithDataInFlightLosesNoByte) {
  auto server = Start({"--loops=2", "--drain_timeout=60s"});
  BlockingClient c(port_, false, 60000);
  std::string payload = testing::RandomBytes(4 << 20, 14);
  // 2 MiB fit in the kernel's buffers of a connection nobody has accepted: the helper has the
  // connection accepted before the signal.
  std::string echoed = testing::EchoAcrossASigterm(*server, c, payload);
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  std::optional<int> code = server->Wait(seconds(60));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << server->err();
  EXPECT_NE(server->err().find("brrr faults (" + Name() + "): "), std::string::npos) << server->err();
}

INSTANTIATE_TEST_SUITE_P(Faults, FaultEchoTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
