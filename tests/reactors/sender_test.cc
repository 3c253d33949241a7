// Sender: ordered, gathered sends with partial-send resumption, on every backend.
#include "runtime/sender.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/internal/loop_internals.h"
#include "runtime/socket.h"
#include "tests/testing/backends.h"
#include "tests/testing/listener_fixture.h"
#include "tests/testing/net.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using testing::BlockingClient;

struct SentLog : Sender::Handler {
  void on_sent(size_t bytes, size_t queued) override {
    sent += bytes;
    last_queued = queued;
    ++completions;
  }
  void on_send_error(absl::Status s) override {
    error = s;
    ++errors;
  }
  size_t sent = 0;
  size_t last_queued = 0;
  int completions = 0;
  absl::Status error;
  int errors = 0;
};

// A heap chunk holding `bytes`, with `slack` bytes of room after them.
Chunk HeapChunk(const std::string& bytes, size_t slack = 0) {
  Chunk c = Chunk::Heap(bytes.size() + slack);
  std::copy(bytes.begin(), bytes.end(), c.data());
  c.set_size(bytes.size());
  return c;
}

// Bytes that differ from position to position, so a reordering shows.
std::string Pattern(size_t n, size_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i + seed) * 131 + (i >> 8));
  return s;
}

// Ranges that start where the one before ends become one entry (the pool buffers one receive
// filled, sent on together as one plain send); a gap starts a new entry.
TEST(SendGatherTest, RangesBackToBackAreJoined) {
  std::string memory(100, 'x');
  char* at = memory.data();
  iovec entries[SendGather::kMaxEntries];
  size_t count = 0;
  count = SendGather::append_joined(entries, count, at, 10);
  count = SendGather::append_joined(entries, count, at + 10, 20);
  count = SendGather::append_joined(entries, count, at + 30, 5);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(entries[0].iov_base, at);
  EXPECT_EQ(entries[0].iov_len, 35u);
  count = SendGather::append_joined(entries, count, at + 40, 10);  // a gap of 5
  count = SendGather::append_joined(entries, count, at + 50, 10);
  count = SendGather::append_joined(entries, count, at, 5);  // before the last: not joined
  ASSERT_EQ(count, 3u);
  EXPECT_EQ(entries[1].iov_base, at + 40);
  EXPECT_EQ(entries[1].iov_len, 20u);
  EXPECT_EQ(entries[2].iov_base, at);
  EXPECT_EQ(entries[2].iov_len, 5u);
}

using SenderTest = testing::ListenerFixture;

TEST_P(SenderTest, ChunksQueuedTogetherLeaveInOneSend) {
  BlockingClient client(port());
  Socket socket = Accept();
  SentLog log;
  Sender sender(socket, log);
  std::string expected;
  uint64_t submitted_before = loop_->stats().backend_submitted;
  for (size_t i = 0; i < 4; ++i) {
    std::string part = Pattern(16384, i);
    expected += part;
    // Room to spare after each chunk's bytes, so that no two lie back to back in memory,
    // whatever the allocator (ThreadSanitizer's puts such blocks end to end): neighbours
    // would be joined into one range and leave as a plain send.
    sender.push(HeapChunk(part, 64));
  }
  EXPECT_EQ(sender.queued_bytes(), expected.size());
  RunUntil([&] { return sender.idle(); });
  EXPECT_EQ(log.sent, expected.size());
  EXPECT_EQ(log.last_queued, 0u);
  EXPECT_TRUE(log.error.ok()) << log.error;
  uint64_t sends = loop_->stats().backend_submitted - submitted_before;
  if (LoopInternals::reactor(*loop_).has(kCapSendMsg)) {
    EXPECT_EQ(sends, 1u) << "the four chunks should have left in one gathered send";
  } else {
    EXPECT_EQ(sends, 4u);
  }
  EXPECT_TRUE(client.recv_exact(expected.size()) == expected);
}

// A lone chunk on a backend that sends at once (Reactor::try_send) leaves in the flush itself,
// with no operation and no completion: always on the readiness backends, on io_uring when the
// loop is quiet (it is here, but that is io_uring's call, so only the bytes are checked
// there). Either way the handler hears of every byte.
TEST_P(SenderTest, ALoneChunkLeavesAtOnceWhereTheBackendCan) {
  BlockingClient client(port());
  Socket socket = Accept();
  SentLog log;
  Sender sender(socket, log);
  std::string expected;
  bool always_at_once = LoopInternals::reactor(*loop_).can_try_send() && !LoopInternals::reactor(*loop_).has(kCapNativeOps);
  for (size_t i = 0; i < 5; ++i) {
    uint64_t submitted_before = loop_->stats().backend_submitted;
    std::string part = Pattern(1000 + i, i);
    expected += part;
    sender.push(HeapChunk(part));
    RunUntil([&] { return sender.idle(); });
    uint64_t operations = loop_->stats().backend_submitted - submitted_before;
    // (A faulty backend's spurious -EAGAIN or short send hands the rest to an operation.)
    if (always_at_once && !testing::IsFaulty(GetParam())) {
      EXPECT_EQ(operations, 0u) << "a send that could go at once took an operation";
    }
  }
  EXPECT_TRUE(log.error.ok()) << log.error;
  EXPECT_EQ(log.sent, expected.size());
  EXPECT_EQ(log.last_queued, 0u);
  EXPECT_TRUE(client.recv_exact(expected.size()) == expected) << "the bytes differ";
}

// A send to a peer that reset the connection fails, whether it went at once or as an
// operation: the handler hears of the error once, and the queue is dropped.
TEST_P(SenderTest, ASendToAResetPeerReportsTheErrorOnce) {
  auto client = std::make_unique<BlockingClient>(port());
  Socket socket = Accept();
  client->set_linger_zero();
  client.reset();  // a reset
  SentLog log;
  Sender sender(socket, log);
  for (int i = 0; i < 200 && log.error.ok(); ++i) {
    sender.push(HeapChunk(Pattern(65536, i)));
    RunUntil([&] { return sender.idle() || !log.error.ok(); });
  }
  EXPECT_FALSE(log.error.ok()) << "200 sends to a reset peer all succeeded";
  EXPECT_EQ(log.errors, 1);
  EXPECT_TRUE(sender.failed());
  EXPECT_EQ(sender.queued_bytes(), 0u);
  sender.push(HeapChunk("after the error"));
  EXPECT_EQ(sender.queued_bytes(), 0u) << "a failed Sender queued more";
}

// A Sender whose send failed has dropped its queue, and the socket shows it: no bytes queued,
// out of the write set (the socket table's and the loop's figures), though the socket stays open.
TEST_P(SenderTest, AFailedSendTakesTheSocketOutOfTheWriteSet) {
  auto client = std::make_unique<BlockingClient>(port());
  Socket socket = Accept();
  client->set_linger_zero();
  client.reset();  // a reset
  SentLog log;
  Sender sender(socket, log);
  for (int i = 0; i < 200 && log.error.ok(); ++i) {
    sender.push(HeapChunk(Pattern(65536, i)));
    RunUntil([&] { return sender.idle() || !log.error.ok(); });
  }
  ASSERT_FALSE(log.error.ok()) << "200 sends to a reset peer all succeeded";
  SocketInfo info = socket.info();
  EXPECT_EQ(info.bytes_queued, 0u);
  EXPECT_FALSE(info.in_write_set);
  RunUntil([&] { return loop_->stats().write_set_size == 0; });
  EXPECT_EQ(loop_->stats().write_set_size, 0u);
}

// A Sender that goes away with bytes queued (none in flight yet) takes them with it: the socket
// it leaves open shows none queued and is out of the write set.
TEST_P(SenderTest, ASenderGoneWithBytesQueuedLeavesTheSocketOutOfTheWriteSet) {
  BlockingClient client(port());
  Socket socket = Accept();
  SentLog log;
  {
    Sender sender(socket, log);
    sender.push(HeapChunk("queued, never sent"));
    ASSERT_EQ(socket.info().bytes_queued, 18u);
    ASSERT_TRUE(socket.info().in_write_set);
  }
  SocketInfo info = socket.info();
  EXPECT_EQ(info.bytes_queued, 0u);
  EXPECT_FALSE(info.in_write_set);
  RunUntil([&] { return loop_->stats().write_set_size == 0; });
  EXPECT_EQ(loop_->stats().write_set_size, 0u);
  EXPECT_EQ(log.completions, 0);
}

// A connection answering one request at a time queues one chunk at a time, which costs the
// Sender no memory of its own; a second chunk behind the first moves the queue to the heap
// until it drains.
TEST_P(SenderTest, OneChunkAtATimeNeedsNoMemoryOfItsOwn) {
  BlockingClient client(port());
  Socket socket = Accept();
  SentLog log;
  Sender sender(socket, log);
  std::string expected;
  auto push = [&](size_t seed) {
    std::string part = Pattern(100 + seed, seed);
    expected += part;
    sender.push(HeapChunk(part));
  };
  for (size_t i = 0; i < 3; ++i) {
    push(i);
    EXPECT_EQ(sender.owned_bytes(), 0u) << "one chunk queued";
    RunUntil([&] { return sender.idle(); });
    EXPECT_EQ(sender.owned_bytes(), 0u) << "idle";
  }
  push(3);
  loop_->run_once(Duration::zero());  // its send starts
  for (size_t i = 4; i < 9; ++i) push(i);
  EXPECT_GT(sender.owned_bytes(), 0u) << "six chunks queued";
  RunUntil([&] { return sender.idle(); });
  EXPECT_EQ(sender.owned_bytes(), 0u) << "idle again";
  push(9);
  RunUntil([&] { return sender.idle(); });
  EXPECT_TRUE(log.error.ok()) << log.error;
  EXPECT_EQ(log.sent, expected.size());
  EXPECT_TRUE(client.recv_exact(expected.size()) == expected) << "the bytes differ";
}

// 8 MiB in 3,000-byte chunks to a client that reads slowly: the socket buffer fills, sends
// end part-way through a chunk and through the gather list, and every byte still arrives once,
// in order.
TEST_P(SenderTest, PartialGatheredSendsResumeWhereTheyStopped) {
  BlockingClient client(port());
  client.set_receive_buffer(16384);
  Socket socket = Accept();
  SentLog log;
  Sender sender(socket, log);
  std::string expected = Pattern(8 << 20, 7);
  std::string received;
  std::thread reader([&] {
    for (size_t got = 0; got < expected.size();) {
      std::string part = client.recv_exact(std::min<size_t>(65536, expected.size() - got));
      if (part.empty()) break;
      got += part.size();
      received += part;
    }
  });
  for (size_t at = 0; at < expected.size(); at += 3000) {
    sender.push(HeapChunk(expected.substr(at, 3000)));
  }
  RunUntil([&] { return sender.idle() || !log.error.ok(); });
  reader.join();
  EXPECT_TRUE(log.error.ok()) << log.error;
  EXPECT_EQ(log.sent, expected.size());
  EXPECT_GT(log.completions, 1);
  EXPECT_EQ(received.size(), expected.size());
  EXPECT_TRUE(received == expected) << "the bytes differ";
}

// Small chunks queued behind a backlog are packed into the room after the queue's last chunk
// instead of each keeping its own buffer (a peer sending a byte at a time and never reading
// would otherwise pin a buffer per byte): ten thousand one-byte chunks in 16 KiB blocks leave
// the queue a few slots long, and every byte arrives, in order.
TEST_P(SenderTest, SmallChunksBehindABacklogArePackedAndArriveInOrder) {
  BlockingClient client(port());
  client.set_receive_buffer(16384);
  Socket socket = Accept();
  SentLog log;
  Sender sender(socket, log);
  const std::string backlog = Pattern(4 << 20, 11);  // more than the socket buffers take
  const std::string small = Pattern(10'000, 5);
  sender.push(HeapChunk(backlog));
  RunUntil([&] { return log.sent > 0 || !log.error.ok(); });  // the socket is full: the rest waits
  for (char byte : small) sender.push(HeapChunk(std::string(1, byte), 16383));
  EXPECT_EQ(sender.queued_bytes(), backlog.size() - log.sent + small.size());
  EXPECT_LE(sender.owned_bytes(), 4 * sizeof(Chunk)) << "a queue slot per small chunk";
  std::string received;
  std::thread reader([&] { received = client.recv_exact(backlog.size() + small.size()); });
  RunUntil([&] { return sender.idle() || !log.error.ok(); });
  reader.join();
  EXPECT_TRUE(log.error.ok()) << log.error;
  EXPECT_EQ(log.sent, backlog.size() + small.size());
  EXPECT_TRUE(received == backlog + small) << "the bytes differ";
}

// A sender that goes away while its gathered send waits on a full socket buffer leaves the
// memory to the socket until the backend is done with it (ASan checks the rest).
TEST_P(SenderTest, GoingAwayWithASendInFlightIsSafe) {
  BlockingClient client(port());
  client.set_receive_buffer(4096);
  Socket socket = Accept();
  SentLog log;
  auto sender = std::make_unique<Sender>(socket, log);
  for (int i = 0; i < 512; ++i) sender->push(HeapChunk(Pattern(16384, i)));
  RunUntil([&] { return log.completions > 0; });
  EXPECT_FALSE(sender->idle()) << "the client never reads: 8 MiB cannot all have left";
  sender.reset();
  socket.close();
  RunUntil([&] { return loop_->stats().io_in_flight == 0; });  // the backend let go of the memory
  EXPECT_TRUE(log.error.ok()) << log.error;
}

INSTANTIATE_TEST_SUITE_P(Backends, SenderTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());
// The same on copies of the readiness backends whose system calls fail on purpose now and then.
INSTANTIATE_TEST_SUITE_P(Faults, SenderTest, ::testing::ValuesIn(testing::FaultyBackends()),
                         testing::FaultyBackendName());

}  // namespace
}  // namespace brrr
