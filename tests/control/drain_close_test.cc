// The drain deadline closes a connection cleanly, on every backend: a client that has not read
// its echoes, and sends more after the deadline, still gets every byte the server read, then
// an end of stream, never a reset; the server counts it as closed cleanly. A client that never
// reads its echoes is reset instead (an end of stream would claim an echo it did not get), and
// counted so. GetStats shows both counts, and the closing phase, before the server exits. What
// a client sends after its end of stream is discarded (counted) until the server closes; what is
// still unread when the linger ends makes the close a reset, counted so.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/admin_probes.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Ending;
using testing::ReadToTheEnd;

// The server's send buffer on a never-reader's connection, fixed. Left to itself the kernel
// grows it, as the client's acknowledgements come, to megabytes: on some runs enough to take
// the server's whole queue at the drain deadline, which makes the close clean (the echo did
// reach the kernel in time) where these tests need it cut. Fixed, it stays full.
constexpr int kNeverReaderServerSendBuffer = 16384;

// More than a client whose receive buffer is set to 4096 bytes, and that never reads, can get
// the server (default bounds: 272 KiB queued) and this host's TCP buffers to take, so its
// sends block until the server gives up on it. Not a fixed size: a host whose tcp_rmem
// maximum is 32 MiB took a 32 MiB payload whole, and the sends ended without the reset.
std::string MoreThanANeverReaderCanSend(uint32_t seed) {
  return testing::RandomBytes(testing::MostANeverReaderCanSend(272 * 1024, 4096) + (1 << 20), seed);
}

class DrainCloseTest : public testing::AdminFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam()); }
};

// (Two loops: the one without the client drains at once, and the deadline's line still comes,
// with the total over all loops; it was printed only once every loop had reached the deadline.)
TEST_P(DrainCloseTest, AtTheDeadlineAClientGetsEveryByteReadThenTheEndOfStream) {
  Start({"--backend=" + GetParam(), "--drain_timeout=100ms", "--loops=2"});
  testing::BlockingClient client(port_);
  // Within what the kernel's buffers and the server's queue hold, so it is all sent without
  // the client reading; the server reads it all before the drain starts.
  std::string payload = testing::RandomBytes(200 * 1000, 21);
  ASSERT_TRUE(client.send_all(payload));
  admin::Stats read = StatsWhen([&](const admin::Stats& s) { return s.total().bytes_in() == payload.size(); });
  ASSERT_EQ(read.total().bytes_in(), payload.size());

  server_->Signal(SIGTERM);
  ASSERT_TRUE(server_->WaitForOutput("drain: deadline: closing 1 open connections")) << server_->out();
  // The client reads from now on, while it sends more (the server gives the flush a second).
  Ending end;
  std::thread reader([&] { end = ReadToTheEnd(client.fd()); });
  // Sent after the deadline: the server does not read these (it may have, if they came before
  // the stop took effect in the backend; then they are echoed too), and they must not turn
  // the close into a reset.
  std::string late = testing::RandomBytes(50 * 1000, 22);
  const bool late_sent = client.send_all(late);
  reader.join();
  ASSERT_TRUE(late_sent);
  EXPECT_EQ(end.error, 0) << "an end of stream, not errno " << end.error << " (" << std::strerror(end.error) << ")";
  ASSERT_GE(end.bytes.size(), payload.size());
  EXPECT_TRUE(end.bytes.compare(0, payload.size(), payload) == 0) << "every byte the server read comes back first";
  EXPECT_TRUE((payload + late).compare(0, end.bytes.size(), end.bytes) == 0) << "and nothing but what was sent";
  client.close();

  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server_->out().find("1 closed at the drain deadline"), std::string::npos) << server_->out();
  EXPECT_NE(server_->out().find("at the deadline 1 closed cleanly, 0 with a reset"), std::string::npos)
      << server_->out();
}

// Echoes still in the server's own queue at the deadline (more than the kernel's buffers
// hold, for a client that had stopped reading) go out once the client reads, and then the end
// of stream: the last send finishing shuts the write side, not the flush's reset a second on.
TEST_P(DrainCloseTest, AtTheDeadlineEchoesStillQueuedGoOutThenTheEndOfStream) {
  Start({"--backend=" + GetParam(), "--drain_timeout=100ms", "--high_water=67108864", "--low_water=1024"});
  testing::BlockingClient client(port_);
  // 8 MiB: the server reads it all (its queue holds 64 MiB), and most of the echo waits in its
  // queue, past what the kernel's buffers of a connection whose client does not read hold
  // (checked: less went out than came in).
  std::string payload = testing::RandomBytes(8 << 20, 23);
  ASSERT_TRUE(client.send_all(payload));
  admin::Stats read = StatsWhen([&](const admin::Stats& s) { return s.total().bytes_in() == payload.size(); });
  ASSERT_EQ(read.total().bytes_in(), payload.size());
  ASSERT_LT(read.total().bytes_out(), payload.size()) << "the echo was not waiting in the server";

  server_->Signal(SIGTERM);
  ASSERT_TRUE(server_->WaitForOutput("drain: deadline: closing 1 open connections")) << server_->out();
  // Reads from now on: well within the flush's second on loopback.
  Ending end = ReadToTheEnd(client.fd());
  EXPECT_EQ(end.error, 0) << "an end of stream, not errno " << end.error << " (" << std::strerror(end.error) << ")";
  EXPECT_EQ(end.bytes.size(), payload.size());
  EXPECT_TRUE(end.bytes == payload) << "every byte the server read comes back";
  client.close();
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server_->out().find("at the deadline 1 closed cleanly, 0 with a reset"), std::string::npos)
      << server_->out();
}

// After the end of stream the server reads and discards what still comes, for at most
// kDrainLinger (1 s), then closes: a client that takes its end of stream and keeps sending
// has its bytes discarded (counted), and its sends end in a reset once the server has closed.
TEST_P(DrainCloseTest, WhatAClientSendsAfterItsEndOfStreamIsDiscardedThenTheConnectionEnds) {
  Start({"--backend=" + GetParam(), "--drain_timeout=100ms"});
  testing::BlockingClient client(port_);
  std::string payload = testing::RandomBytes(100 * 1000, 25);
  ASSERT_TRUE(client.send_all(payload));
  admin::Stats read = StatsWhen([&](const admin::Stats& s) { return s.total().bytes_in() == payload.size(); });
  ASSERT_EQ(read.total().bytes_in(), payload.size());
  const auto terminated_at = std::chrono::steady_clock::now();
  server_->Signal(SIGTERM);
  Ending end = ReadToTheEnd(client.fd());
  const auto end_read_at = std::chrono::steady_clock::now();
  EXPECT_EQ(end.error, 0) << "an end of stream, not errno " << end.error;
  EXPECT_TRUE(end.bytes == payload) << "every byte the server read, then the end of stream";

  // Keep sending (bounded: 10 s), past the linger, until the server's close stops it.
  const std::string more(16 * 1024, 'm');
  int send_error = 0;
  uint64_t sent_after_end = 0;
  std::optional<std::chrono::steady_clock::duration> first_send_after;  // from reading the end
  auto give_up = std::chrono::steady_clock::now() + seconds(10);
  while (send_error == 0 && std::chrono::steady_clock::now() < give_up) {
    ssize_t n = ::send(client.fd(), more.data(), more.size(), MSG_NOSIGNAL);
    if (n > 0 && !first_send_after.has_value()) first_send_after = std::chrono::steady_clock::now() - end_read_at;
    if (n > 0) sent_after_end += static_cast<uint64_t>(n);
    if (n < 0 && errno != EINTR) send_error = errno;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto ended_after = std::chrono::steady_clock::now() - terminated_at;
  EXPECT_TRUE(send_error == ECONNRESET || send_error == EPIPE)
      << "the sends end once the server has closed (errno " << send_error << "), after " << sent_after_end << " bytes";
  // Not before the linger's second: it began as the server sent the end of stream, at the drain
  // deadline (100 ms after SIGTERM), however late this thread read it.
  EXPECT_GE(ended_after, seconds(1)) << "the server closed before its 1 s linger had passed";
  client.close();
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  // "at the deadline C closed cleanly, R with a reset, D bytes discarded after the end of stream":
  // one connection, closed one way or the other (a reset if bytes were still unread at the
  // close), and some of what came after its end of stream discarded.
  const std::string out = server_->out();
  unsigned long long clean = 0, reset = 0, discarded = 0;
  size_t at = out.find("at the deadline ");
  ASSERT_NE(at, std::string::npos) << out;
  ASSERT_EQ(std::sscanf(out.c_str() + at, "at the deadline %llu closed cleanly, %llu with a reset, %llu bytes discarded",
                        &clean, &reset, &discarded),
            3)
      << out;
  EXPECT_EQ(clean + reset, 1u) << out;
  // Some is discarded if the first send came well within the linger (a thread that lost its
  // core for a second on a loaded machine comes after it; the server's close is then clean).
  if (first_send_after.has_value() && *first_send_after < milliseconds(500)) {
    EXPECT_GT(discarded, 0u) << out;
  }
  EXPECT_LE(discarded, sent_after_end) << out;
  std::printf("%llu of the %llu bytes sent after the end of stream discarded; closed %s\n", discarded,
              static_cast<unsigned long long>(sent_after_end), reset == 1 ? "with a reset" : "cleanly");
}

// A client that keeps sending past the linger: what it sent is still unread in the server's
// socket when the linger ends, so the close is a reset (close() would send one anyway) and is
// counted so. The server is stopped (SIGSTOP) once it is seen lingering (discarding) until
// well past the linger's second, while the client fills the server's receive buffer
// (fixed at 1 MiB), so the bytes are there when the linger ends whatever the machine's timing;
// the server's receive buffers are few and small (16 of 4 KiB), so the wait after the stop
// cannot read them all before the linger's timer runs.
TEST_P(DrainCloseTest, BytesStillUnreadWhenTheLingerEndsMakeItAResetCountedSo) {
  Start({"--backend=" + GetParam(), "--drain_timeout=100ms", "--recv_buffers=16", "--recv_buffer_size=4096"});
  testing::BlockingClient client(port_);
  std::string payload = testing::RandomBytes(100 * 1000, 26);
  ASSERT_TRUE(client.send_all(payload));
  StatsWhen([&](const admin::Stats& s) { return s.total().bytes_in() == payload.size(); });
  ASSERT_EQ(SetServerSocketOption(client, SOL_SOCKET, SO_RCVBUF, 1 << 20), "");
  server_->Signal(SIGTERM);
  const auto terminated_at = std::chrono::steady_clock::now();
  Ending end = ReadToTheEnd(client.fd());
  ASSERT_EQ(end.error, 0) << "an end of stream, not errno " << end.error;
  ASSERT_TRUE(end.bytes == payload);
  // The linger is running once the server discards: it arms the linger's timer as it starts
  // the discarding receive, whose first bytes come in a later turn of its loop. (The end of
  // stream alone does not say so: the server sends it just before.)
  ASSERT_TRUE(client.send_all("d"));
  StatsWhen([](const admin::Stats& s) { return s.total().bytes_discarded() >= 1; });
  const auto lingering_at = std::chrono::steady_clock::now();

  // Stopped for good before the client sends more: a server still running reads it all at
  // once, and nothing is left unread when its linger ends.
  testing::Stopped frozen(*server_);
  // The linger began no sooner than the drain's deadline, 100 ms after SIGTERM, so it is still
  // running if the stop came within 1.1 s of SIGTERM; on a machine too loaded for that the
  // test cannot tell.
  if (std::chrono::steady_clock::now() - terminated_at >= milliseconds(1100)) {
    GTEST_SKIP() << "the server was stopped more than 1.1 s after SIGTERM: its linger may have ended";
  }
  // Fill what the kernel takes (bounded: 8 MiB, and 1 s).
  const std::string more(64 * 1024, 'm');
  uint64_t pushed = 0;
  for (auto give_up = std::chrono::steady_clock::now() + seconds(1);
       pushed < (8u << 20) && std::chrono::steady_clock::now() < give_up;) {
    ssize_t n = ::send(client.fd(), more.data(), more.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      pushed += static_cast<uint64_t>(n);
    } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
      FAIL() << "send: " << std::strerror(errno);
    } else {
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  ASSERT_GT(pushed, 16u * 4096) << "more than the server's receive buffers hold, sent during the linger";
  // Well past the linger's second, which began before the discarding was seen.
  std::this_thread::sleep_until(lingering_at + milliseconds(1500));
  frozen.Resume();

  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server_->out().find("at the deadline 0 closed cleanly, 1 with a reset"), std::string::npos)
      << server_->out() << "\n(" << pushed << " bytes sent during the linger)";
  // The reset comes to a client that sends nothing more. (After a clean close none would: it
  // would wait in CLOSE_WAIT, and only a send of its own would draw one.) Not at once: the
  // server may exit before its socket is closed (net.h, AwaitReset).
  const int reset = testing::AwaitReset(client.fd(), seconds(10));
  EXPECT_TRUE(reset == EPIPE || reset == ECONNRESET)
      << "the close with bytes unread is a reset: " << (reset == 0 ? "none within 10 s" : std::strerror(reset));
}

TEST_P(DrainCloseTest, AClientThatNeverReadsIsResetAndCountedSo) {
  Start({"--backend=" + GetParam(), "--drain_timeout=100ms"});
  testing::BlockingClient client(port_);
  client.set_receive_buffer(4096);
  ASSERT_EQ(SetServerSocketOption(client, SOL_SOCKET, SO_SNDBUF, kNeverReaderServerSendBuffer), "");
  // More than the kernel's buffers and the server's queue hold: the writer blocks until the
  // server gives up on the connection.
  std::string payload = MoreThanANeverReaderCanSend(23);
  int send_error = 0;  // how the writer's sends ended
  std::thread writer([&] {
    for (size_t off = 0; off < payload.size();) {
      ssize_t n = ::send(client.fd(), payload.data() + off, payload.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        send_error = errno;
        return;
      }
      off += static_cast<size_t>(n);
    }
  });
  StatsWhen([](const admin::Stats& s) { return s.total().reads_paused() > 0; });

  server_->Signal(SIGTERM);
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  writer.join();
  EXPECT_NE(server_->out().find("at the deadline 0 closed cleanly, 1 with a reset"), std::string::npos)
      << server_->out();
  // The reset is reported once, to whichever call comes first: the blocked send, or the read.
  Ending end = ReadToTheEnd(client.fd());
  EXPECT_TRUE(send_error == ECONNRESET || send_error == EPIPE || end.error == ECONNRESET)
      << "a cut echo ends with a reset, not an end of stream: send errno " << send_error << ", recv errno "
      << end.error;
  EXPECT_LT(end.bytes.size(), payload.size());
  EXPECT_TRUE(payload.compare(0, end.bytes.size(), end.bytes) == 0);
}

// The server exits as soon as every loop has drained, so the figures are read while a second
// loop, blocked by an injection, holds the exit back. On the loop that drains, two clients read
// until the end of stream and close, and one never reads: 2 clean closes and 1 reset, which a
// swap of the two figures would not give.
TEST_P(DrainCloseTest, GetStatsCountsCleanClosesAndResetsApartWhileClosing) {
  Start({"--backend=" + GetParam(), "--loops=2", "--drain_timeout=100ms", "--admin_max_block=20s"});
  // Five accepted clients (each echoed once): three of them share a loop.
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  std::vector<std::string> peers;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<testing::BlockingClient>(port_));
    ASSERT_TRUE(clients.back()->send_all("hi"));
    ASSERT_EQ(clients.back()->recv_exact(2), "hi");
    peers.push_back(testing::LocalAddress(clients.back()->fd()));
  }
  admin::ListSocketsResponse list;
  grpc::Status listed = stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &list);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  std::vector<uint32_t> loop_of;
  for (const std::string& peer : peers) {
    const admin::SocketInfo* socket = testing::FindPeer(list, peer);
    ASSERT_NE(socket, nullptr) << peer << " is not listed: " << list.ShortDebugString();
    loop_of.push_back(socket->loop());
  }
  const uint32_t drains = std::count(loop_of.begin(), loop_of.end(), 0u) >= 3 ? 0 : 1;
  const uint32_t held = 1 - drains;
  std::vector<std::unique_ptr<testing::BlockingClient>> kept;
  for (size_t i = 0; i < clients.size(); ++i) {
    if (loop_of[i] == drains && kept.size() < 3) {
      kept.push_back(std::move(clients[i]));
    } else {
      clients[i]->close();
    }
  }
  ASSERT_EQ(StatsWhen([](const admin::Stats& s) { return s.total().connections_active() == 3; })
                .total()
                .connections_active(),
            3u);
  testing::BlockingClient& never_reads = *kept[2];

  never_reads.set_receive_buffer(4096);
  ASSERT_EQ(SetServerSocketOption(never_reads, SOL_SOCKET, SO_SNDBUF, kNeverReaderServerSendBuffer), "");
  std::string payload = MoreThanANeverReaderCanSend(24);
  int send_error = 0;  // how the writer's sends ended
  std::thread writer([&] {  // blocks until the server gives up on the connection
    for (size_t off = 0; off < payload.size();) {
      ssize_t n = ::send(never_reads.fd(), payload.data() + off, payload.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        send_error = errno;
        return;
      }
      off += static_cast<size_t>(n);
    }
  });
  StatsWhen([&](const admin::Stats& s) { return s.loops(drains).reads_paused() > 0; });
  Ending reader_ends[2];
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    readers.emplace_back([&, i] {
      reader_ends[i] = ReadToTheEnd(kept[i]->fd());
      kept[i]->close();
    });
  }

  const admin::Injection blocking = BlockLoop(held, 20'000);
  EXPECT_EQ(Stats().drain_phase(), admin::DRAIN_PHASE_SERVING);

  admin::DrainResponse drained;
  ASSERT_TRUE(stub_->Drain(Context().get(), admin::DrainRequest(), &drained).ok());
  admin::Stats closing = StatsWhen([](const admin::Stats& s) {
    return s.total().connections_closed_drain_clean() + s.total().connections_closed_drain_reset() >= 3;
  });
  EXPECT_EQ(closing.drain_phase(), admin::DRAIN_PHASE_CLOSING);
  admin::ServerInfo info;
  EXPECT_TRUE(stub_->GetServerInfo(Context().get(), admin::GetServerInfoRequest(), &info).ok());
  EXPECT_EQ(info.drain_phase(), admin::DRAIN_PHASE_CLOSING);
  EXPECT_EQ(closing.total().connections_closed_drain_clean(), 2u) << closing.total().ShortDebugString();
  EXPECT_EQ(closing.total().connections_closed_drain_reset(), 1u) << closing.total().ShortDebugString();
  EXPECT_EQ(closing.total().connections_closed_drain(), 3u);
  EXPECT_EQ(closing.loops(drains).connections_closed_drain_clean(), 2u)
      << "loop " << drains << " drains: " << closing.ShortDebugString();
  EXPECT_EQ(closing.loops(drains).connections_closed_drain_reset(), 1u)
      << "loop " << drains << " drains: " << closing.ShortDebugString();
  for (int i = 0; i < 2; ++i) {
    readers[i].join();
    EXPECT_EQ(reader_ends[i].error, 0) << "a reading client gets an end of stream, not errno " << reader_ends[i].error;
  }
  // The reset reaches the client that never reads while the other loop still holds the process
  // (its block runs 20 s): the drained loop stops only once the reset socket has closed.
  writer.join();
  EXPECT_TRUE(send_error == ECONNRESET || send_error == EPIPE)
      << "the blocked send ends with the reset, not errno " << send_error << " (" << std::strerror(send_error) << ")";
  admin::Stats after_reset = Stats();
  ASSERT_EQ(after_reset.injections_size(), 1) << "the server has gone: the reset came only at its exit";
  EXPECT_EQ(after_reset.injections(0).runs_finished(), 0u) << "the reset came only when the blocked loop ended";

  admin::CancelInjectionRequest cancel;
  cancel.set_id(blocking.id());
  admin::Injection cancelled;
  grpc::Status ended = stub_->CancelInjection(Context().get(), cancel, &cancelled);
  EXPECT_TRUE(ended.ok()) << ended.error_message();
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server_->out().find("at the deadline 2 closed cleanly, 1 with a reset"), std::string::npos)
      << server_->out();
}

INSTANTIATE_TEST_SUITE_P(Backends, DrainCloseTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
