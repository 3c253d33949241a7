// The hand-over protocol (server/listener_handover.h) over a socketpair, and its two sides
// (server/handover_listener.h, server/take_over.h) over a real UNIX socket, in one process:
// listening sockets arrive and are the same sockets, a wrong version or address is refused,
// one hand-over at a time, and the old side lets go only after the new one has taken them.
#include "server/listener_handover.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/line_output.h"
#include "server/handover_listener.h"
#include "server/take_over.h"
#include "tests/testing/sanitizer.h"

namespace brrr::server {
namespace {

int64_t Soon() { return MonotonicNanos() + std::chrono::nanoseconds(std::chrono::seconds(10)).count(); }

// A listening TCP socket on 127.0.0.1 (port 0: a free one), SO_REUSEPORT so siblings can join.
UniqueFd ListenOn(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  return fd;
}

SocketAddress LocalOf(const UniqueFd& fd) { return *SocketAddress::LocalOf(fd.get()); }

ino_t Inode(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

// Two echo listeners on one port, and a metrics listener.
ListenerSet TwoLoopsAndMetrics() {
  ListenerSet set;
  set.pid = ::getpid();
  set.echo_fds.push_back(ListenOn(0));
  set.echo = LocalOf(set.echo_fds[0]);
  set.echo_fds.push_back(ListenOn(set.echo.port()));
  UniqueFd metrics = ListenOn(0);
  SocketAddress at = LocalOf(metrics);
  set.metrics = HandedListener{at, std::move(metrics)};
  return set;
}

// Connects to the UNIX socket at `path` as user and group `id`, from a thread of its own that
// takes that identity with the raw system calls (which, unlike glibc's wrappers, change the
// calling thread's credentials only), so that the connection's SO_PEERCRED is that user's and
// the rest of the process stays root. The connect's errno on failure (0 and a valid descriptor
// on success); -1 if the thread could not become that user. Needs root.
struct ConnectedAs {
  int error = -1;
  UniqueFd conn{-1};
};
ConnectedAs ConnectAs(uid_t id, const std::string& path) {
  ConnectedAs result;
  std::thread([&] {
    if (::syscall(SYS_setresgid, id, id, id) != 0 || ::syscall(SYS_setresuid, id, id, id) != 0) return;
    result.conn = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    result.error = ::connect(result.conn.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
    if (result.error != 0) result.conn.reset();
  }).join();
  return result;
}

struct Pair {
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0); }
  ~Pair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  int old_side() const { return fds[0]; }
  int new_side() const { return fds[1]; }
  int fds[2];
};

TEST(ListenerHandoverTest, TheListenersArriveAndAreTheSameSockets) {
  ListenerSet sent = TwoLoopsAndMetrics();
  Pair pair;
  ASSERT_TRUE(SendOffer(pair.old_side(), sent).ok());
  absl::StatusOr<ListenerSet> got = ReceiveOffer(pair.new_side(), Soon());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->pid, ::getpid());
  EXPECT_EQ(got->echo.ToString(), sent.echo.ToString());
  ASSERT_EQ(got->echo_fds.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_NE(got->echo_fds[i].get(), sent.echo_fds[i].get());
    EXPECT_EQ(Inode(got->echo_fds[i].get()), Inode(sent.echo_fds[i].get())) << "not the same socket";
  }
  ASSERT_TRUE(got->metrics.has_value());
  EXPECT_EQ(got->metrics->address.ToString(), sent.metrics->address.ToString());
  EXPECT_EQ(Inode(got->metrics->fd.get()), Inode(sent.metrics->fd.get()));
  EXPECT_FALSE(got->admin.has_value());

  // A client queued on the sender's socket is accepted from the received one.
  sent.metrics->fd.reset();
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), got->metrics->address.data(), got->metrics->address.size()), 0);
  pollfd p{.fd = got->metrics->fd.get(), .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1);
  UniqueFd accepted(::accept4(got->metrics->fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(accepted.valid()) << std::strerror(errno);
}

TEST(ListenerHandoverTest, AnotherVersionIsRefused) {
  Pair pair;
  ASSERT_TRUE(SendFrame(pair.old_side(), HandoverFrameType::kOffer, "pid=1\nloops=1\necho=127.0.0.1:1\n", -1,
                        /*version=*/kHandoverProtocolVersion + 1)
                  .ok());
  absl::StatusOr<ListenerSet> got = ReceiveOffer(pair.new_side(), Soon());
  ASSERT_TRUE(absl::IsFailedPrecondition(got.status())) << got.status();
  EXPECT_NE(got.status().message().find(absl::StrCat("version ", kHandoverProtocolVersion + 1)), std::string::npos)
      << got.status();
}

// An offer of no echo listeners (loops=0) is malformed: the new process refuses it rather than
// take over with no listener to serve echo on.
TEST(ListenerHandoverTest, AnOfferOfNoEchoListenersIsRefusedAsMalformed) {
  Pair pair;
  ASSERT_TRUE(SendFrame(pair.old_side(), HandoverFrameType::kOffer, "pid=1\nloops=0\necho=127.0.0.1:1\n").ok());
  absl::StatusOr<ListenerSet> got = ReceiveOffer(pair.new_side(), Soon());
  ASSERT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("a malformed offer"), std::string::npos) << got.status();
}

TEST(ListenerHandoverTest, AListenerOnAnotherAddressIsRefused) {
  ListenerSet sent = TwoLoopsAndMetrics();
  // The offer names another port than the sockets are bound to.
  UniqueFd elsewhere = ListenOn(0);
  sent.echo = LocalOf(elsewhere);
  Pair pair;
  ASSERT_TRUE(SendOffer(pair.old_side(), sent).ok());
  absl::StatusOr<ListenerSet> got = ReceiveOffer(pair.new_side(), Soon());
  ASSERT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("address mismatch"), std::string::npos) << got.status();
  EXPECT_NE(got.status().message().find("echo listener 0"), std::string::npos) << got.status();
}

TEST(ListenerHandoverTest, ASocketThatDoesNotListenIsRefused) {
  UniqueFd listener = ListenOn(0);
  SocketAddress at = LocalOf(listener);
  UniqueFd bound(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(bound.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_TRUE(CheckListener(listener.get(), at, "echo listener 0").ok());
  absl::Status s = CheckListener(bound.get(), LocalOf(bound), "echo listener 0");
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("not listening"), std::string::npos) << s;
  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  s = CheckListener(udp.get(), at, "metrics listener");
  EXPECT_NE(s.message().find("not a TCP socket"), std::string::npos) << s;
}

TEST(ListenerHandoverTest, ARefusalCarriesItsReason) {
  Pair pair;
  ASSERT_TRUE(SendFrame(pair.old_side(), HandoverFrameType::kRefuse, "already handing over to pid 7").ok());
  absl::StatusOr<ListenerSet> got = ReceiveOffer(pair.new_side(), Soon());
  ASSERT_TRUE(absl::IsFailedPrecondition(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("already handing over to pid 7"), std::string::npos) << got.status();
}

TEST(ListenerHandoverTest, NotTheProtocolIsRefused) {
  Pair pair;
  ASSERT_EQ(::write(pair.old_side(), "GET / HTTP/1.1\r\n", 16), 16);
  absl::StatusOr<HandoverFrame> got = ReadFrame(pair.new_side(), Soon());
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
}

// A payload of exactly the most a frame carries is sent and read back; one byte more is not sent.
TEST(ListenerHandoverTest, AFrameOfTheMostBytesArrivesWhole) {
  Pair pair;
  const std::string payload(kMaxHandoverPayload, 'p');
  std::thread writer([&] { EXPECT_TRUE(SendFrame(pair.old_side(), HandoverFrameType::kRefuse, payload).ok()); });
  absl::StatusOr<HandoverFrame> got = ReadFrame(pair.new_side(), Soon());
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->type, HandoverFrameType::kRefuse);
  EXPECT_TRUE(got->payload == payload);
  EXPECT_TRUE(absl::IsInvalidArgument(SendFrame(pair.old_side(), HandoverFrameType::kRefuse, payload + "p")));
}

// A frame carries one descriptor at most: one that carries two is refused (and neither is
// kept), whatever its header says.
TEST(ListenerHandoverTest, AFrameWithTwoDescriptorsIsRefused) {
  Pair pair;
  UniqueFd first = ListenOn(0);
  UniqueFd second = ListenOn(0);
  // The header by hand (SendFrame sends one descriptor): magic, version, type, length.
  std::string frame = "BRHO";
  frame += {0, static_cast<char>(kHandoverProtocolVersion), 0, static_cast<char>(HandoverFrameType::kListener)};
  frame += {0, 0, 0, 4};
  frame += "echo";
  iovec iov{.iov_base = frame.data(), .iov_len = frame.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(2 * sizeof(int));
  const int fds[2] = {first.get(), second.get()};
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  ASSERT_EQ(::sendmsg(pair.old_side(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
  absl::StatusOr<HandoverFrame> got = ReadFrame(pair.new_side(), Soon());
  ASSERT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("more than one descriptor"), std::string::npos) << got.status();
}

// ---- The two sides over a UNIX socket at a path. ----

class HandoverSidesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/brrr-handover-XXXXXX";  // short: a UNIX socket path has 107 bytes at most
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/echo.sock";
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  // Callbacks that offer duplicates of `set_`'s sockets and count releases.
  HandoverCallbacks Callbacks() {
    HandoverCallbacks cb;
    cb.collect = [this]() -> absl::StatusOr<ListenerSet> {
      ListenerSet copy;
      copy.echo = set_.echo;
      for (const UniqueFd& fd : set_.echo_fds) copy.echo_fds.emplace_back(::dup(fd.get()));
      return copy;
    };
    cb.released = [this](pid_t pid) {
      released_pid_.store(pid);
      released_.fetch_add(1);
    };
    return cb;
  }

  // A raw connection to the hand-over socket (-1 on failure), for a new side that speaks
  // the protocol by hand.
  UniqueFd ConnectRaw() const {
    UniqueFd conn(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    if (::connect(conn.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
    return conn;
  }

  // The old side calls `released` just after it sends RELEASED: wait for it (bounded).
  bool WaitReleased(int count) {
    for (int i = 0; i < 10'000 && released_.load() < count; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return released_.load() == count;
  }

  std::string dir_;
  std::string path_;
  ListenerSet set_ = TwoLoopsAndMetrics();
  std::atomic<int> released_{0};
  std::atomic<pid_t> released_pid_{0};
};

TEST_F(HandoverSidesTest, TheOldSideLetsGoOnlyAfterTheNewOneHasTakenThem) {
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto taking = TakeOver::Connect(path_);
  ASSERT_TRUE(taking.ok()) << taking.status();
  EXPECT_EQ((*taking)->listeners().pid, ::getpid());
  ASSERT_EQ((*taking)->listeners().echo_fds.size(), 2u);
  EXPECT_EQ(Inode((*taking)->listeners().echo_fds[1].get()), Inode(set_.echo_fds[1].get()));
  EXPECT_EQ(released_.load(), 0) << "released before the new side said it took them";
  ASSERT_TRUE((*taking)->Commit().ok());
  EXPECT_TRUE(WaitReleased(1));
  EXPECT_EQ(released_pid_.load(), ::getpid());
  // The path is free for the new process's own hand-over socket.
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
  auto next = HandoverListener::Listen(path_, Callbacks());
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST_F(HandoverSidesTest, ADeclinedHandOverLeavesTheOldSideServing) {
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  {
    auto taking = TakeOver::Connect(path_);
    ASSERT_TRUE(taking.ok()) << taking.status();
    (*taking)->Decline("testing");
  }
  {
    auto taking = TakeOver::Connect(path_);  // a process that dies before answering
    ASSERT_TRUE(taking.ok()) << taking.status();
  }
  auto taking = TakeOver::Connect(path_);
  ASSERT_TRUE(taking.ok()) << taking.status();
  EXPECT_EQ(released_.load(), 0);
  ASSERT_TRUE((*taking)->Commit().ok());
  EXPECT_TRUE(WaitReleased(1));
}

// A new process that has the listeners and never answers is given up after the take-over
// timeout (30 s in brrr-echo; 2 s here, which the next new process's whole exchange must fit
// in too): the old side never let go, and the next new process can take over; the late one's
// commit fails (it then exits 3, see take_over.h).
TEST_F(HandoverSidesTest, ANewSideThatNeverAnswersIsGivenUpAndTheOldSideServesOn) {
  auto old_side = HandoverListener::Listen(path_, Callbacks(), std::chrono::seconds(2));
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  auto silent = TakeOver::Connect(path_);
  ASSERT_TRUE(silent.ok()) << silent.status();
  ASSERT_EQ((*silent)->listeners().echo_fds.size(), 2u);
  // Refused while the silent one might still answer; accepted once it has been given up on.
  absl::StatusOr<std::unique_ptr<TakeOver>> next = TakeOver::Connect(path_);
  for (int i = 0; i < 1000 && absl::IsFailedPrecondition(next.status()); ++i) {
    EXPECT_NE(next.status().message().find("already handing over"), std::string::npos) << next.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    next = TakeOver::Connect(path_);
  }
  ASSERT_TRUE(next.ok()) << "the old side never gave up on the silent one: " << next.status();
  EXPECT_EQ(released_.load(), 0) << "the old side let go without a TAKEN";
  ASSERT_TRUE((*next)->Commit().ok());
  EXPECT_TRUE(WaitReleased(1));
  // The late one's commit fails, the old side living on (it is this process): a failed
  // commit waits a moment to see whether the old side has exited, past the old side's wait for
  // the next one's TAKEN (2 s), so the next one commits first.
  EXPECT_FALSE((*silent)->Commit().ok()) << "a commit after the timeout must not succeed";
  EXPECT_FALSE((*silent)->old_process_exited());
  EXPECT_EQ(released_.load(), 1);
}

// The old process is killed after it offered its listeners and before it let go (here in a
// child process; an operator's kill -9, a crash): the new one's commit finds it gone, not still
// accepting, and keeps the listeners (OK, old_process_exited). Before, it drained and exited 3,
// leaving the port to nobody.
TEST_F(HandoverSidesTest, AnOldSideThatDiesBeforeItLetsGoLeavesTheListenersToTheNewOne) {
  if (testing::UnderSanitizer("tsan")) {
    GTEST_SKIP() << "the old side's thread starts in a forked child, which TSan refuses (die_after_fork)";
  }
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto old_side = HandoverListener::Listen(path_, Callbacks());
    if (!old_side.ok()) ::_exit(1);
    for (;;) ::pause();
  }
  absl::StatusOr<std::unique_ptr<TakeOver>> taking = absl::NotFoundError("not yet");
  for (int i = 0; i < 1000 && absl::IsNotFound(taking.status()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    taking = TakeOver::Connect(path_);
  }
  ASSERT_TRUE(taking.ok()) << taking.status();
  EXPECT_EQ((*taking)->listeners().pid, child);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  absl::Status committed = (*taking)->Commit();
  EXPECT_TRUE(committed.ok()) << committed;
  EXPECT_TRUE((*taking)->old_process_exited());
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// The old process dies after the new one has connected and before it offers its listeners (a kill
// -9 or a crash in the first milliseconds of a take-over): nobody holds them any more, so the
// new one is told NotFound, as when the process was gone before, and --take_over_or_start
// starts afresh. Before, it was Unavailable, and the new process exited 3. A process that is
// still running and closes the connection is still Unavailable: it may be serving.
TEST_F(HandoverSidesTest, AnOldSideThatDiesBeforeItOffersIsNotFound) {
  if (testing::UnderSanitizer("tsan")) {
    GTEST_SKIP() << "the old side is a forked child, which TSan refuses in a process with threads (die_after_fork)";
  }
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Its own socket, so that the connection's peer is this process. The first connection: read
    // its HELLO, close it, live on. The second: read its HELLO, die.
    int listening = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    if (::bind(listening, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listening, 4) != 0 ||
        ::write(ready[1], "r", 1) != 1) {
      ::_exit(1);
    }
    for (int i = 0; i < 2; ++i) {
      int conn = ::accept(listening, nullptr, nullptr);
      char hello[64];
      if (conn < 0 || ::recv(conn, hello, sizeof hello, 0) <= 0) ::_exit(1);
      if (i == 1) ::_exit(0);
      ::close(conn);
    }
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the child did not listen";
  ::close(ready[0]);
  absl::StatusOr<std::unique_ptr<TakeOver>> alive = TakeOver::Connect(path_);
  EXPECT_TRUE(absl::IsUnavailable(alive.status())) << alive.status();
  absl::StatusOr<std::unique_ptr<TakeOver>> died = TakeOver::Connect(path_);
  ASSERT_TRUE(absl::IsNotFound(died.status())) << died.status();
  EXPECT_NE(died.status().message().find("exited before it handed its listeners over"), std::string::npos)
      << died.status();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Connections that never say HELLO (a stuck or foreign client of the same user) do not hold up
// a real new process: the old side gives up on a silent one as soon as the next connects.
// Before, it waited 5 s for each, so three of them made the new process give up (10 s).
TEST_F(HandoverSidesTest, SilentConnectionsDoNotHoldUpATakeOver) {
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(ConnectRaw());
    ASSERT_TRUE(silent.back().valid());
  }
  auto taking = TakeOver::Connect(path_);
  ASSERT_TRUE(taking.ok()) << taking.status();
  ASSERT_TRUE((*taking)->Commit().ok());
  EXPECT_TRUE(WaitReleased(1));
}

// A new side that says TAKEN and goes away before it hears RELEASED (it gave up waiting: the
// old side was stopped for longer than its timeout) exits 3; the old side, which never stopped
// accepting, serves on and listens at the path again, so that the next new side can take over.
// Before, it had removed its socket file and could not be upgraded any more.
TEST_F(HandoverSidesTest, ANewSideGoneBeforeReleasedLeavesTheOldSideUpgradable) {
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  {
    UniqueFd conn = ConnectRaw();
    ASSERT_TRUE(conn.valid());
    ASSERT_TRUE(SendFrame(conn.get(), HandoverFrameType::kHello, "").ok());
    absl::StatusOr<ListenerSet> offer = ReceiveOffer(conn.get(), MonotonicNanos() + 10'000'000'000);
    ASSERT_TRUE(offer.ok()) << offer.status();
    // Gone for the answer: the old side's RELEASED cannot be delivered (EPIPE).
    ASSERT_EQ(::shutdown(conn.get(), SHUT_RD), 0);
    ASSERT_TRUE(SendFrame(conn.get(), HandoverFrameType::kTaken, "").ok());
  }
  absl::StatusOr<std::unique_ptr<TakeOver>> next = absl::NotFoundError("not yet");
  for (int i = 0; i < 1000 && !next.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    next = TakeOver::Connect(path_);
  }
  ASSERT_TRUE(next.ok()) << "the old side no longer listens at the path: " << next.status();
  EXPECT_EQ(released_.load(), 0);
  ASSERT_TRUE((*next)->Commit().ok());
  EXPECT_TRUE(WaitReleased(1));
}

// The old side lets go only on a TAKEN: a new side that answers the offer with anything else (a
// HELLO, an OFFER, a frame type it does not know) is told nothing more, the old side says it is
// still serving and never calls `released`, and a real new side can take over afterwards.
TEST_F(HandoverSidesTest, AnAnswerOtherThanTakenLeavesTheOldSideServing) {
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  const HandoverFrameType kNotTaken[] = {HandoverFrameType::kHello, HandoverFrameType::kOffer,
                                         static_cast<HandoverFrameType>(99)};
  for (HandoverFrameType answer : kNotTaken) {
    SCOPED_TRACE(HandoverFrameName(answer));
    ::testing::internal::CaptureStderr();
    UniqueFd conn = ConnectRaw();
    ASSERT_TRUE(conn.valid());
    ASSERT_TRUE(SendFrame(conn.get(), HandoverFrameType::kHello, "").ok());
    absl::StatusOr<ListenerSet> offer = ReceiveOffer(conn.get(), Soon());
    ASSERT_TRUE(offer.ok()) << offer.status();
    ASSERT_TRUE(SendFrame(conn.get(), answer, "").ok());
    // The old side closes the connection without a RELEASED (it logged why before closing).
    absl::StatusOr<HandoverFrame> after = ReadFrame(conn.get(), Soon());
    EXPECT_FALSE(after.ok()) << "the old side answered with a " << HandoverFrameName(after->type);
    ASSERT_TRUE(LineOutput::Process().Flush(absl::Seconds(10)));
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find(absl::StrCat("did not take the listeners (", HandoverFrameName(answer), "); still serving")),
              std::string::npos)
        << err;
    EXPECT_EQ(released_.load(), 0) << "the old side let go without a TAKEN";
  }
  auto taking = TakeOver::Connect(path_);
  ASSERT_TRUE(taking.ok()) << "the old side no longer serves hand-overs: " << taking.status();
  ASSERT_TRUE((*taking)->Commit().ok());
  EXPECT_TRUE(WaitReleased(1));
}

TEST_F(HandoverSidesTest, OneHandOverAtATime) {
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  auto first = TakeOver::Connect(path_);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = TakeOver::Connect(path_);
  ASSERT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("already handing over to pid"), std::string::npos) << second.status();
  ASSERT_TRUE((*first)->Commit().ok());
  // Once handed over, nothing listens there.
  auto third = TakeOver::Connect(path_);
  EXPECT_TRUE(absl::IsNotFound(third.status())) << third.status();
}

TEST_F(HandoverSidesTest, TheOldSideRefusesAnotherVersion) {
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  UniqueFd conn = ConnectRaw();
  ASSERT_TRUE(conn.valid());
  ASSERT_TRUE(SendFrame(conn.get(), HandoverFrameType::kHello, "", -1, /*version=*/9).ok());
  absl::StatusOr<HandoverFrame> answer = ReadFrame(conn.get(), Soon());
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->type, HandoverFrameType::kRefuse);
  EXPECT_NE(answer->payload.find("version 9"), std::string::npos) << answer->payload;
  EXPECT_FALSE(answer->descriptor.valid());
  EXPECT_EQ(released_.load(), 0);
}

// Another user is kept out twice: the socket file's mode (0600) refuses the connection, and
// where that mode was widened, the old side refuses the peer's user (SO_PEERCRED) before
// anything is sent, says why, and goes on serving. Needs root, to connect as another user.
TEST_F(HandoverSidesTest, AnotherUserIsRefusedEvenWhereTheSocketsModeWasWidened) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another user (uid 65534)";
  constexpr uid_t kNobody = 65534;
  auto old_side = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0) << std::strerror(errno);  // the way in, not the socket

  ConnectedAs kept_out = ConnectAs(kNobody, path_);
  ASSERT_NE(kept_out.error, -1) << "the connecting thread could not become uid " << kNobody;
  EXPECT_EQ(kept_out.error, EACCES) << std::strerror(kept_out.error);
  EXPECT_FALSE(kept_out.conn.valid());

  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0) << std::strerror(errno);
  ConnectedAs widened = ConnectAs(kNobody, path_);
  ASSERT_EQ(widened.error, 0) << std::strerror(widened.error);
  ASSERT_TRUE(widened.conn.valid());
  // The refusal comes before the peer says anything (so it cannot even learn the protocol).
  absl::StatusOr<HandoverFrame> answer = ReadFrame(widened.conn.get(), Soon());
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->type, HandoverFrameType::kRefuse);
  EXPECT_NE(answer->payload.find("user 65534 may not take over the listeners of user 0"), std::string::npos)
      << answer->payload;
  EXPECT_FALSE(answer->descriptor.valid()) << "a listener went to another user";
  EXPECT_EQ(released_.load(), 0);

  // Still serving: this user's hand-over goes through.
  auto taking = TakeOver::Connect(path_);
  ASSERT_TRUE(taking.ok()) << taking.status();
  ASSERT_TRUE((*taking)->Commit().ok());
  EXPECT_TRUE(WaitReleased(1));
}

TEST_F(HandoverSidesTest, ARefusalFromCollectReachesTheNewSide) {
  HandoverCallbacks cb = Callbacks();
  cb.collect = []() -> absl::StatusOr<ListenerSet> {
    return absl::FailedPreconditionError("this instance is draining: its listeners are closed");
  };
  auto old_side = HandoverListener::Listen(path_, std::move(cb));
  ASSERT_TRUE(old_side.ok()) << old_side.status();
  auto taking = TakeOver::Connect(path_);
  ASSERT_TRUE(absl::IsFailedPrecondition(taking.status())) << taking.status();
  EXPECT_NE(taking.status().message().find("draining"), std::string::npos) << taking.status();
}

TEST_F(HandoverSidesTest, NoSuchSocketIsNotFound) {
  auto taking = TakeOver::Connect(path_);
  ASSERT_TRUE(absl::IsNotFound(taking.status())) << taking.status();
  EXPECT_NE(taking.status().message().find(path_), std::string::npos) << taking.status();
}

TEST_F(HandoverSidesTest, ALiveSocketIsRefusedAndAStaleOneReplaced) {
  auto first = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("another process listens there"), std::string::npos) << second.status();

  // A socket file nobody listens on any more (its process died): replaced.
  (*first).reset();
  UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  stale.reset();
  ASSERT_EQ(::access(path_.c_str(), F_OK), 0);
  auto third = HandoverListener::Listen(path_, Callbacks());
  EXPECT_TRUE(third.ok()) << third.status();
  (*third).reset();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0) << "the socket file is removed when the listener stops";
}

// Only a socket file is taken for a stale hand-over socket: any other file at the path is
// refused and left as it was. (Connecting to a regular file fails as to a socket nobody listens
// on, ECONNREFUSED: without the check the file would be unlinked as stale.)
TEST_F(HandoverSidesTest, AFileThatIsNotASocketIsRefusedAndLeftInPlace) {
  {
    UniqueFd file(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    ASSERT_TRUE(file.valid()) << std::strerror(errno);
    ASSERT_EQ(::write(file.get(), "keep me\n", 8), 8);
  }
  auto listener = HandoverListener::Listen(path_, Callbacks());
  ASSERT_TRUE(absl::IsFailedPrecondition(listener.status())) << listener.status();
  EXPECT_NE(listener.status().message().find("the path exists and is not a socket"), std::string::npos)
      << listener.status();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0) << "the file is gone";
  EXPECT_TRUE(S_ISREG(st.st_mode));
  UniqueFd file(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  char content[16] = {};
  EXPECT_EQ(::read(file.get(), content, sizeof content), 8);
  EXPECT_STREQ(content, "keep me\n");
}

// Two processes restarted at once over the stale socket file a killed one left (two
// --take_over_or_start): each found it stale and replaced it, the second one's probe finding
// nobody between the first one's bind and listen, so both listened and one of them at no path
// (its file unlinked by the other): once the other had exited, nothing could take over from the
// one serving. Now exactly one listens there, and the other is refused.
TEST_F(HandoverSidesTest, TwoReplacingTheSameStaleSocketAtOnceLeaveOneListeningThere) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  int both = 0;
  for (int round = 0; round < 300; ++round) {
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    stale.reset();
    std::atomic<int> ready{0};
    absl::StatusOr<std::unique_ptr<HandoverListener>> listening[2] = {absl::UnknownError("not run"),
                                                                      absl::UnknownError("not run")};
    std::thread racers[2];
    for (int i = 0; i < 2; ++i) {
      racers[i] = std::thread([&, i] {
        ready.fetch_add(1);
        while (ready.load() < 2) {
        }
        listening[i] = HandoverListener::Listen(path_, Callbacks());
      });
    }
    for (std::thread& t : racers) t.join();
    const int listen_ok = static_cast<int>(listening[0].ok()) + static_cast<int>(listening[1].ok());
    if (listen_ok == 2) ++both;
    ASSERT_GE(listen_ok, 1) << listening[0].status() << " / " << listening[1].status();
    for (auto& l : listening) {
      if (!l.ok()) {
        EXPECT_TRUE(absl::IsFailedPrecondition(l.status())) << l.status();
      }
    }
    // The one listening is reachable at the path.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    probe.reset();
    for (auto& l : listening) {
      if (l.ok()) (*l).reset();
    }
    ::unlink(path_.c_str());
  }
  EXPECT_EQ(both, 0) << "rounds in which both listened";
}

}  // namespace
}  // namespace brrr::server
