// A close that does not wait for the echo (the admin plane's CloseConnection, a second stop
// signal, --idle_timeout) on a connection whose echo the server has read but not all sent is a
// reset, never an end of stream: a client reads an end of stream as "the echo is complete"
// (README, "What a client can count on"). It was an end of stream after the echo was cut short
// by the bytes queued in the server (a chaos run of random clients found it, on every backend).
// A connection with nothing left to send still ends with an end of stream. Every backend.
#include <signal.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/control/admin_probes.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using testing::FindPeer;
using testing::LocalAddress;

enum class Closer { kCloseConnection, kSecondSignal, kIdleTimeout };

std::string CloserName(Closer closer) {
  switch (closer) {
    case Closer::kCloseConnection:
      return "CloseConnection";
    case Closer::kSecondSignal:
      return "SecondSignal";
    case Closer::kIdleTimeout:
      return "IdleTimeout";
  }
  return "?";
}

class ForcedCloseTest : public testing::AdminFixture,
                        public ::testing::WithParamInterface<std::tuple<std::string, Closer>> {
 protected:
  void SetUp() override { BRRR_SKIP_UNLESS_BACKEND_STARTS(std::get<0>(GetParam())); }

  void StartServer() {
    std::vector<std::string> flags = {"--backend=" + std::get<0>(GetParam()), "--drain_grace=0", "--drain_timeout=60s"};
    if (std::get<1>(GetParam()) == Closer::kIdleTimeout) flags.push_back("--idle_timeout=1s");
    Start(flags);
  }

  // Closes the connection that ListSockets listed as `listed` the way the test says (the idle
  // timeout: waits until it has closed both clients).
  void ForceTheClose(const admin::SocketInfo& listed) {
    switch (std::get<1>(GetParam())) {
      case Closer::kCloseConnection: {
        admin::CloseConnectionRequest close;
        close.set_fd(listed.fd());
        close.set_peer(listed.peer());
        admin::CloseConnectionResponse closed;
        grpc::Status st = stub_->CloseConnection(Context().get(), close, &closed);
        ASSERT_TRUE(st.ok()) << st.error_message();
        return;
      }
      case Closer::kSecondSignal:
        server_->Signal(SIGTERM);
        ASSERT_TRUE(server_->WaitForOutput("draining")) << server_->out();
        server_->Signal(SIGTERM);
        return;
      case Closer::kIdleTimeout:
        // It reads nothing until both clients are closed as idle (1 s of nothing taken).
        StatsWhen([](const admin::Stats& s) { return s.total().connections_closed_idle() == 2; });
        return;
    }
  }
};

TEST_P(ForcedCloseTest, ACutEchoEndsWithAResetAndAWholeOneWithAnEndOfStream) {
  StartServer();
  // A client that reads nothing (with a small window) and sends until the server holds echo
  // bytes it cannot send, having read all it was sent: its receive queue is empty, so a close
  // without the reset would end the stream (unread input would make the kernel reset it).
  testing::BlockingClient cut(port_, /*ipv6=*/false, /*timeout_ms=*/30000, /*receive_buffer=*/4096);
  const std::string chunk(65536, 'x');
  uint64_t sent = 0;
  admin::ListSocketsResponse sockets;
  std::optional<admin::SocketInfo> listed;
  for (int round = 0; round < 600 && !listed.has_value(); ++round) {
    const ssize_t n = ::send(cut.fd(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<uint64_t>(n);
    std::this_thread::sleep_for(milliseconds(10));
    ASSERT_TRUE(stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &sockets).ok());
    const admin::SocketInfo* s = FindPeer(sockets, LocalAddress(cut.fd()));
    if (s != nullptr && s->bytes_queued() > 0 && s->bytes_in() == sent) listed = *s;
  }
  ASSERT_TRUE(listed.has_value())
      << "the server never held echo bytes for a client that reads nothing, having read all it sent";
  // Another client, whose echo is all sent: an end of stream is its due.
  testing::BlockingClient whole(port_);
  const std::string hello = "hello";
  ASSERT_TRUE(whole.send_all(hello));
  ASSERT_EQ(whole.recv_exact(hello.size()), hello);
  if (std::get<1>(GetParam()) == Closer::kCloseConnection) {
    ASSERT_TRUE(stub_->ListSockets(Context().get(), admin::ListSocketsRequest(), &sockets).ok());
    const admin::SocketInfo* w = FindPeer(sockets, LocalAddress(whole.fd()));
    ASSERT_NE(w, nullptr);
    admin::CloseConnectionRequest close;
    close.set_fd(w->fd());
    close.set_peer(w->peer());
    admin::CloseConnectionResponse closed;
    ASSERT_TRUE(stub_->CloseConnection(Context().get(), close, &closed).ok());
  }
  ForceTheClose(*listed);
  const testing::Ending cut_end = testing::ReadToTheEnd(cut.fd());
  EXPECT_NE(cut_end.error, EAGAIN) << "still open after 30 s, " << cut_end.bytes.size() << " bytes back";
  // An end of stream only after the whole echo (the server may have sent its queue meanwhile).
  EXPECT_TRUE(cut_end.error == ECONNRESET || (cut_end.error == 0 && cut_end.bytes.size() == sent))
      << "an end of stream after " << cut_end.bytes.size() << " bytes of " << sent
      << ": echo bytes the server had read were dropped (error " << cut_end.error << ")";
  const testing::Ending whole_end = testing::ReadToTheEnd(whole.fd());
  EXPECT_NE(whole_end.error, EAGAIN);
  EXPECT_NE(whole_end.error, ECONNRESET) << "its echo was whole: an end of stream says so";
  EXPECT_EQ(whole_end.bytes.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(BackendsAndClosers, ForcedCloseTest,
                         ::testing::Combine(::testing::ValuesIn(testing::AllBackends()),
                                            ::testing::Values(Closer::kCloseConnection, Closer::kSecondSignal,
                                                              Closer::kIdleTimeout)),
                         [](const ::testing::TestParamInfo<std::tuple<std::string, Closer>>& info) {
                           return std::get<0>(info.param) + "_" + CloserName(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace brrr
