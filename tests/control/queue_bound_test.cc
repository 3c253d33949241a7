// The per-connection queue bound of a real brrr-echo, on every backend, without a prefix and
// with a short and the longest --reply_prefix: clients that send newline-rich data and never
// read. What the admin plane's ListSockets reports queued for them never exceeds
// --high_water + --recv_buffer_size (server/connection.h), another client keeps getting exact
// echoes meanwhile, and SIGTERM still drains. With the default flags, the README's figure:
// 272 KiB. A paused connection resumes reading at --low_water, not sooner. And what a connection
// that stopped reading holds beyond its queue is its backend's read-ahead, not its socket's fill.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/admin_probes.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

constexpr uint64_t kHighWater = 65536;
constexpr uint64_t kLowWater = 16384;
constexpr uint64_t kReceiveBuffer = 16384;
constexpr uint64_t kBound = kHighWater + kReceiveBuffer;  // EchoServerOptions::max_queued_bytes()
constexpr uint64_t kDefaultBound = 272 * 1024;            // README: "(272 KiB by default)"
constexpr int kNeverReaders = 2;
constexpr int kNeverReaderReceiveBuffer = 4096;

// Lines of 1 to 16 bytes: about one newline in eight bytes, every one of them a prefix.
std::string NewlineRichBlock() {
  std::string block;
  for (size_t n = 1; block.size() < 65536; n = n % 16 + 1) block += std::string(n - 1, 'x') + "\n";
  block.resize(65536);
  return block;
}

std::string PrefixFor(const std::string& kind) {
  if (kind == "short") return "Echo : ";
  if (kind == "longest") return std::string(4096, 'P');  // kMaxReplyPrefixBytes
  return "";
}

// Starts brrr-echo with `flags` and checks, with never-reading clients and one that reads,
// that no connection has more than `bound` bytes queued.
class NeverReadersFixture : public testing::AdminFixture {
 protected:
  void ExpectQueuedAtMost(uint64_t bound, const std::string& backend, const std::string& prefix,
                          std::vector<std::string> flags);

  // Each peer's bytes_queued and whether the server is reading it (0 and false if not listed).
  void List(const std::vector<std::string>& peers, std::vector<uint64_t>* queued, std::vector<bool>* reading) {
    admin::ListSocketsResponse list;
    grpc::Status s = stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    queued->assign(peers.size(), 0);
    reading->assign(peers.size(), false);
    for (const admin::SocketInfo& info : list.sockets()) {
      for (size_t i = 0; i < peers.size(); ++i) {
        if (info.peer() != peers[i]) continue;
        (*queued)[i] = info.bytes_queued();
        (*reading)[i] = info.in_read_set();
      }
    }
  }
};

void NeverReadersFixture::ExpectQueuedAtMost(uint64_t bound, const std::string& backend, const std::string& prefix,
                                             std::vector<std::string> flags) {
  flags.push_back("--backend=" + backend);
  flags.push_back("--drain_timeout=1s");
  if (!prefix.empty()) flags.push_back("--reply_prefix=" + prefix);
  Start(flags);
  ASSERT_NE(server_, nullptr);

  // The never-reading clients: a small receive buffer, sends that do not block, bounded in
  // bytes and time; they stop early if the bound is broken (the old server's queue could grow
  // by hundreds of MB). The bytes: what this kernel's buffers and a server that stops reading
  // can take from one of them (tests/testing/net.h), so reaching it means the server went on.
  const size_t max_sent_per_client = testing::MostANeverReaderCanSend(bound, kNeverReaderReceiveBuffer);
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<testing::BlockingClient>> stuck;
  std::vector<std::string> peers;
  std::vector<std::atomic<size_t>> sent(kNeverReaders);
  for (int i = 0; i < kNeverReaders; ++i) {
    stuck.push_back(std::make_unique<testing::BlockingClient>(port_));
    stuck.back()->set_receive_buffer(kNeverReaderReceiveBuffer);
    fcntl(stuck.back()->fd(), F_SETFL, fcntl(stuck.back()->fd(), F_GETFL) | O_NONBLOCK);
    peers.push_back(testing::LocalAddress(stuck.back()->fd()));
  }
  const std::string block = NewlineRichBlock();
  std::vector<std::thread> senders;
  for (int i = 0; i < kNeverReaders; ++i) {
    senders.emplace_back([&, i] {
      SteadyClock::time_point give_up = SteadyClock::now() + seconds(30);
      while (!stop.load() && sent[i].load() < max_sent_per_client && SteadyClock::now() < give_up) {
        ssize_t n = ::send(stuck[i]->fd(), block.data(), block.size(), MSG_NOSIGNAL);
        if (n > 0) {
          sent[i] += static_cast<size_t>(n);
        } else {
          std::this_thread::sleep_for(milliseconds(2));
        }
      }
    });
  }

  // Someone else keeps getting exact echoes meanwhile.
  testing::BlockingClient good(port_, false, 10000);
  std::atomic<int> echoes{0};
  std::atomic<bool> echo_failed{false};
  std::thread echoer([&] {
    for (int i = 0; !stop.load() && !echo_failed.load(); ++i) {
      std::string line = "line " + std::to_string(i) + "\n";
      std::string want = prefix + line;
      if (!good.send_all(line) || good.recv_exact(want.size()) != want) {
        echo_failed = true;
      } else {
        ++echoes;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
  });

  // Poll ListSockets until the figures stop changing (the senders blocked: the server stopped
  // reading them) for 1 s; bounded: 45 s. Every figure is checked against the bound.
  std::vector<uint64_t> largest(kNeverReaders, 0);
  std::vector<uint64_t> queued;
  std::vector<bool> reading;
  std::vector<uint64_t> last;
  size_t last_sent = 0;
  int unchanged = 0;
  SteadyClock::time_point give_up = SteadyClock::now() + seconds(45);
  while (unchanged < 100 && SteadyClock::now() < give_up) {
    List(peers, &queued, &reading);
    size_t sent_now = 0;
    for (int i = 0; i < kNeverReaders; ++i) {
      largest[i] = std::max(largest[i], queued[i]);
      sent_now += sent[i].load();
    }
    if (*std::max_element(queued.begin(), queued.end()) > bound) break;  // failed: stop loading it
    unchanged = queued == last && sent_now == last_sent ? unchanged + 1 : 0;
    last = queued;
    last_sent = sent_now;
    std::this_thread::sleep_for(milliseconds(10));
  }
  stop = true;
  for (std::thread& t : senders) t.join();
  echoer.join();

  uint64_t most = *std::max_element(largest.begin(), largest.end());
  std::printf("%s, prefix of %zu bytes: most queued on a never-reading connection %llu bytes (bound %llu)\n",
              backend.c_str(), prefix.size(), static_cast<unsigned long long>(most),
              static_cast<unsigned long long>(bound));
  RecordProperty("most_queued", std::to_string(most));
  for (int i = 0; i < kNeverReaders; ++i) {
    EXPECT_LE(largest[i], bound) << "never-reading client " << i << " sent " << sent[i].load() << " bytes";
    EXPECT_LT(sent[i].load(), max_sent_per_client) << "the server kept reading a client that never reads";
    EXPECT_FALSE(reading[i]) << "never-reading client " << i << " is still in the read set";
  }
  EXPECT_EQ(unchanged, 100) << "the queued figures did not settle within 45 s";
  EXPECT_FALSE(echo_failed.load()) << "the other client's echo went wrong after " << echoes.load() << " echoes";
  EXPECT_GT(echoes.load(), 0);
  std::string last_line = "last\n";
  ASSERT_TRUE(good.send_all(last_line));
  EXPECT_EQ(good.recv_exact(prefix.size() + last_line.size()), prefix + last_line);
  good.close();

  // SIGTERM drains: the never-reading connections are closed at the deadline (1 s) or, since
  // they cannot flush, a second later; the server exits 0 (bounded wait).
  server_->Signal(SIGTERM);
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "the server did not exit within 30 s of SIGTERM";
  EXPECT_EQ(*code, 0) << server_->err();
  EXPECT_NE(server_->out().find("drained in"), std::string::npos) << server_->out();
  EXPECT_NE(server_->out().find(std::to_string(kNeverReaders) + " closed at the drain deadline"), std::string::npos)
      << server_->out();
}

// Parameters: the backend, and the prefix (PrefixFor).
class BackendAndPrefixFixture : public NeverReadersFixture,
                                public ::testing::WithParamInterface<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    std::string why;
    if (!testing::BackendStarts(std::get<0>(GetParam()), &why)) GTEST_SKIP() << why;
  }
};

using QueueBoundTest = BackendAndPrefixFixture;

TEST_P(QueueBoundTest, NeverReadingClientsQueueAtMostTheBoundOthersAreServedAndSigtermDrains) {
  ExpectQueuedAtMost(kBound, std::get<0>(GetParam()), PrefixFor(std::get<1>(GetParam())),
                     {"--high_water=" + std::to_string(kHighWater), "--low_water=" + std::to_string(kLowWater),
                      "--recv_buffer_size=" + std::to_string(kReceiveBuffer), "--recv_buffers=256"});
}

using DefaultQueueBoundTest = BackendAndPrefixFixture;

// The README's figure for the default --high_water and --recv_buffer_size.
TEST_P(DefaultQueueBoundTest, NeverReadingClientsQueueAtMost272KiB) {
  ExpectQueuedAtMost(kDefaultBound, std::get<0>(GetParam()), PrefixFor(std::get<1>(GetParam())), {});
}

// Where a paused connection resumes reading: once what is queued for it is down to --low_water,
// not sooner. A client sends without reading until the server stops reading it (out of the
// read set, its bytes_in still); then it reads its echo in 16 KiB steps, and after each the
// test notes what the server has queued for it, until the server reads again. The last figure before that is near
// --low_water (the 16 KiB step, what the kernel's buffers take, and a late look above it); a server that resumed as
// soon as the queue fell below --high_water shows nothing below it. The gap between the marks (1 MiB and 256 KiB)
// dwarfs the kernel's buffers, which the test fixes small. Every byte read is checked.
class ResumePointTest : public testing::AdminFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    if (!testing::BackendStarts(GetParam(), &why)) GTEST_SKIP() << why;
  }

  struct Figures {
    bool listed = false;
    int fd = -1;  // the server's descriptor for the connection
    uint64_t queued = 0;
    uint64_t bytes_in = 0;
    bool reading = false;
    uint64_t bytes_out = 0;
  };
  Figures Look(const std::string& peer) { return LookAll({peer})[0]; }
  // Each peer's figures, from one ListSockets call.
  std::vector<Figures> LookAll(const std::vector<std::string>& peers) {
    admin::ListSocketsResponse list;
    grpc::Status s = stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<Figures> all;
    for (const std::string& peer : peers) {
      const admin::SocketInfo* info = testing::FindPeer(list, peer);
      all.push_back(info == nullptr ? Figures{}
                                    : Figures{true, info->fd(), info->bytes_queued(), info->bytes_in(),
                                              info->in_read_set(), info->bytes_out()});
    }
    return all;
  }
  // Look(peer) once the server lists the connection (accepted): up to 30 s.
  Figures LookOnceListed(const std::string& peer) {
    Figures figures = Look(peer);
    for (int i = 0; i < 3000 && !figures.listed; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
      figures = Look(peer);
    }
    return figures;
  }
  // The stream's byte at `offset`: every byte read is checked against it.
  static char ByteAt(uint64_t offset) { return static_cast<char>((offset * 131 + 7) % 251); }
};

TEST_P(ResumePointTest, APausedConnectionResumesOnceItsQueueIsDownToLowWater) {
  constexpr uint64_t kHigh = 1 << 20;
  constexpr uint64_t kLow = 256 << 10;
  constexpr size_t kStep = 16384;
  // The kernel's buffers between the server's queue and this test, at most about 2 x 16 KiB
  // and 2 x 64 KiB: a few steps, far less than the marks' gap.
  constexpr int kServerSendBuffer = 16384;
  constexpr int kClientReceiveBuffer = 65536;
  Start({"--backend=" + GetParam(), "--high_water=" + std::to_string(kHigh), "--low_water=" + std::to_string(kLow),
         "--drain_timeout=1s"});
  ASSERT_NE(server_, nullptr);
  testing::BlockingClient client(port_);
  client.set_receive_buffer(kClientReceiveBuffer);
  const std::string peer = testing::LocalAddress(client.fd());
  Figures accepted = LookOnceListed(peer);
  ASSERT_TRUE(accepted.listed) << "the server did not list the connection within 30 s";
  // Left to itself the kernel grows the server's send buffer to megabytes, which would hold
  // most of the echo out of the server's sight.
  ASSERT_EQ(testing::SetSocketOptionOf(server_->pid(), accepted.fd, SOL_SOCKET, SO_SNDBUF, kServerSendBuffer), "");

  // The sender: non-blocking sends of the pattern, bounded in bytes and time.
  const size_t most = testing::MostANeverReaderCanSend(kHigh + kStep, kClientReceiveBuffer) + (4 << 20);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread sender([&] {
    std::string block(65536, '\0');
    SteadyClock::time_point give_up = SteadyClock::now() + seconds(60);
    while (!stop.load() && sent.load() < most && SteadyClock::now() < give_up) {
      uint64_t at = sent.load();
      for (size_t i = 0; i < block.size(); ++i) block[i] = ByteAt(at + i);
      ssize_t n = ::send(client.fd(), block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<uint64_t>(n);
      } else {
        std::this_thread::sleep_for(milliseconds(2));
      }
    }
  });
  struct StopSender {
    std::atomic<bool>& stop;
    std::thread& sender;
    ~StopSender() {
      stop = true;
      sender.join();
    }
  } stop_sender{stop, sender};

  // Paused: out of the read set, and its figures still for 200 ms (bounded: 30 s).
  Figures paused;
  int still = 0;
  for (SteadyClock::time_point give_up = SteadyClock::now() + seconds(30);
       still < 20 && SteadyClock::now() < give_up;) {
    Figures now = Look(peer);
    still =
        now.listed && !now.reading && now.bytes_in == paused.bytes_in && now.queued == paused.queued ? still + 1 : 0;
    paused = now;
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(still, 20) << "the server did not stop reading the client within 30 s: " << paused.queued
                       << " bytes queued, " << paused.bytes_in << " read, reading " << paused.reading;
  EXPECT_GE(paused.queued, kHigh / 2) << "paused far below --high_water";
  ASSERT_GT(sent.load(), paused.bytes_in) << "nothing left unread for the server to resume on";

  // Read the echo a step at a time until the server reads again (bounded: what it has read,
  // and 60 s).
  uint64_t received = 0;
  uint64_t lowest_paused = paused.queued;
  Figures last = paused;
  bool resumed = false;
  for (SteadyClock::time_point give_up = SteadyClock::now() + seconds(60);
       !resumed && received < paused.bytes_in && SteadyClock::now() < give_up;) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kStep, paused.bytes_in - received));
    std::string got = client.recv_exact(want);
    ASSERT_EQ(got.size(), want) << "the echo stopped after " << received << " bytes";
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], ByteAt(received + i)) << "echo byte " << received + i;
    }
    received += got.size();
    std::this_thread::sleep_for(milliseconds(2));
    last = Look(peer);
    resumed = last.reading || last.bytes_in > paused.bytes_in;
    if (!resumed) lowest_paused = std::min(lowest_paused, last.queued);
  }
  std::printf("%s: paused at %llu bytes queued; the last look before it read again: %llu queued (--low_water %llu)\n",
              GetParam().c_str(), static_cast<unsigned long long>(paused.queued),
              static_cast<unsigned long long>(lowest_paused), static_cast<unsigned long long>(kLow));
  ASSERT_TRUE(resumed) << "the server never read again; " << last.queued << " bytes still queued after " << received
                       << " were read";
  EXPECT_LE(lowest_paused, kLow + (kHigh - kLow) / 2) << "reading resumed with the queue still far above --low_water";
  EXPECT_GT(lowest_paused, kLow) << "a paused connection's queue went down to --low_water without it resuming";
}

// What a connection holds beyond its queue once it stops reading: its backend's read-ahead
// (server/connection.h), not whatever its socket held. The server is stopped while the clients
// fill the server's sockets (each one's receive buffer set to 4 MiB, which the kernel doubles,
// its send buffer to 16 KiB); resumed, it reads each until its queue reaches --high_water and
// stops. What it read that is neither queued nor sent on is held: for a connection at most three
// passes of RC_BATCH receive buffers on select, poll and epoll, and on io_uring from Linux 6.17,
// whose bundle receives end after 16 buffers, at most as many. (Before 6.17 one io_uring pass
// takes what the socket holds: megabytes here.)
class ReadAheadTest : public ResumePointTest {
 protected:
  static constexpr uint64_t kReceiveBufferSize = 16384;                // the default --recv_buffer_size
  static constexpr uint64_t kReadAhead = 3 * 16 * kReceiveBufferSize;  // 3 x RC_BATCH buffers: 768 KiB

  // `count` connections, each filled while the server is stopped, then read by it at once.
  void ExpectEachToHoldAtMostTheReadAhead(int count) {
    constexpr int kServerReceiveBuffer = 4 << 20;
    if (GetParam() == "io_uring" && !testing::IoUringFeatureExpected("BRRR_IO_URING_BUNDLES", 6, 17)) {
      GTEST_SKIP() << "io_uring caps a receive pass only for bundles from Linux 6.17 (server/connection.h)";
    }
    Start({"--backend=" + GetParam(), "--drain_timeout=1s"});
    ASSERT_NE(server_, nullptr);
    std::vector<std::unique_ptr<testing::BlockingClient>> clients;
    std::vector<std::string> peers;
    for (int i = 0; i < count; ++i) {
      clients.push_back(std::make_unique<testing::BlockingClient>(port_));
      testing::BlockingClient& client = *clients.back();
      client.set_receive_buffer(4096);
      peers.push_back(testing::LocalAddress(client.fd()));
      ASSERT_TRUE(client.send_all("hi"));
      ASSERT_EQ(client.recv_exact(2), "hi");
      Figures accepted = LookOnceListed(peers.back());
      ASSERT_TRUE(accepted.listed) << "the server did not list connection " << i << " within 30 s";
      ASSERT_EQ(testing::SetSocketOptionOf(server_->pid(), accepted.fd, SOL_SOCKET, SO_RCVBUF, kServerReceiveBuffer),
                "");
      // Left to itself the kernel grows the server's send buffer to megabytes, which would take
      // the echo of most of what the socket held before the queue reached the mark.
      ASSERT_EQ(testing::SetSocketOptionOf(server_->pid(), accepted.fd, SOL_SOCKET, SO_SNDBUF, 16384), "");
    }

    // Stopped, the server's sockets take what the clients send until their buffers are full (no
    // progress for 200 ms; bounded: 64 MiB a connection and 30 s).
    std::vector<uint64_t> sent(count, 0);
    {
      testing::Stopped frozen(*server_);
      const std::string block(65536, 'r');
      SteadyClock::time_point last_progress = SteadyClock::now();
      for (SteadyClock::time_point give_up = SteadyClock::now() + seconds(30);
           SteadyClock::now() - last_progress < milliseconds(200) && SteadyClock::now() < give_up;) {
        bool progress = false;
        for (int i = 0; i < count; ++i) {
          if (sent[i] >= (64u << 20)) continue;
          ssize_t n = ::send(clients[i]->fd(), block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n > 0) {
            sent[i] += static_cast<uint64_t>(n);
            progress = true;
          }
        }
        if (progress) {
          last_progress = SteadyClock::now();
        } else {
          std::this_thread::sleep_for(milliseconds(1));
        }
      }
    }
    for (int i = 0; i < count; ++i) {
      ASSERT_GT(sent[i], 2 * kReadAhead) << "the server's socket " << i
                                         << " took too little to tell a read-ahead from the rest";
    }

    // Resumed: it reads each until its queue reaches the mark, then stops; their figures still
    // for 500 ms (bounded: 60 s).
    std::vector<Figures> paused(count);
    int still = 0;
    for (SteadyClock::time_point give_up = SteadyClock::now() + seconds(60);
         still < 50 && SteadyClock::now() < give_up;) {
      std::vector<Figures> now = LookAll(peers);
      bool all_still = true;
      for (int i = 0; i < count; ++i) {
        all_still = all_still && now[i].listed && !now[i].reading && now[i].bytes_in == paused[i].bytes_in &&
                    now[i].bytes_out == paused[i].bytes_out;
      }
      still = all_still ? still + 1 : 0;
      paused = std::move(now);
      std::this_thread::sleep_for(milliseconds(10));
    }
    ASSERT_EQ(still, 50) << "the server did not stop reading every client within 60 s";
    uint64_t most_held = 0;
    for (int i = 0; i < count; ++i) {
      const uint64_t held = paused[i].bytes_in - paused[i].bytes_out - paused[i].queued;
      most_held = std::max(most_held, held);
      EXPECT_LE(held, kReadAhead) << "connection " << i << " held beyond the read-ahead; " << sent[i]
                                  << " bytes were in its socket";
      EXPECT_GT(sent[i], paused[i].bytes_in) << "it read everything: nothing tells a stop from the end of the data";
    }
    std::printf("%s, %d connection(s): most held %llu (read-ahead bound %llu)\n", GetParam().c_str(), count,
                static_cast<unsigned long long>(most_held), static_cast<unsigned long long>(kReadAhead));
  }
};

TEST_P(ReadAheadTest, AConnectionThatStoppedReadingHoldsItsBackendsReadAheadNotWhatItsSocketHeld) {
  ExpectEachToHoldAtMostTheReadAhead(1);
}

// Many at once: the completions of some wait in the backend for the loop's next turns, and
// until the loop has seen them it cannot stop their reading. (The readiness backends' again list
// reads on only once the loop has taken every completion: without that, epoll holds 256 KiB
// here, within the bound; 120 clients that keep sending, bench/never_reader.py, drove it to
// about 1 MB.)
TEST_P(ReadAheadTest, ManyConnectionsThatStoppedReadingAtOnceEachHoldAtMostTheReadAhead) {
  ExpectEachToHoldAtMostTheReadAhead(24);
}

INSTANTIATE_TEST_SUITE_P(Backends, ReadAheadTest, ::testing::ValuesIn(testing::AllBackends()), testing::BackendName());

INSTANTIATE_TEST_SUITE_P(Backends, ResumePointTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

std::string BackendAndPrefixName(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(BackendsAndPrefixes, QueueBoundTest,
                         ::testing::Combine(::testing::ValuesIn(testing::AllBackends()),
                                            ::testing::Values("plain", "short", "longest")),
                         BackendAndPrefixName);

INSTANTIATE_TEST_SUITE_P(BackendsAndPrefixes, DefaultQueueBoundTest,
                         ::testing::Combine(::testing::ValuesIn(testing::AllBackends()),
                                            ::testing::Values("plain", "longest")),
                         BackendAndPrefixName);

}  // namespace
}  // namespace brrr
