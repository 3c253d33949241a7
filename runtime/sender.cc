#include "runtime/sender.h"
#include "runtime/hot_path.h"
#include "runtime/internal/loop_internals.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace brrr {

Sender::Sender(Socket& socket, Handler& handler) : state_(socket.state()), handler_(handler) {
  EventLoop& loop = state_->loop();
  try_sends_ = LoopInternals::has_reactor(loop) && LoopInternals::reactor(loop).can_try_send();
}

Sender::~Sender() {
  LoopInternals::cancel_flush(state_->loop(), *this);
  if (in_flight_) {
    state_->forget_waiter(detail::Side::kWrite);
    state_->cancel(detail::Side::kWrite);
    // The chunks being sent (and a gathered send's header) stay readable by the backend until
    // the cancel completes.
    auto orphan = std::make_unique<OrphanedSend>();
    for (size_t i = 0; i < in_flight_chunks_; ++i) orphan->chunks.push_back(std::move(at(i)));
    orphan->gather = std::move(gather_);
    state_->adopt_send(std::move(orphan));
  }
  if (queued_bytes_ > 0 && !state_->closing()) state_->set_queued_bytes(0);
}

size_t Sender::owned_bytes() const {
  return (heap_ring_ != nullptr ? capacity_ * sizeof(Chunk) : 0) + (gather_ != nullptr ? sizeof(SendGather) : 0);
}

void Sender::grow() {
  size_t capacity = heap_ring_ == nullptr ? 4 : capacity_ * 2;
  auto ring = std::make_unique<Chunk[]>(capacity);
  for (size_t i = 0; i < count_; ++i) ring[i] = std::move(at(i));
  heap_ring_ = std::move(ring);
  capacity_ = capacity;
  head_ = 0;
}

BRRR_HOT_PATH void Sender::push(Chunk&& chunk) {
  if (failed_ || chunk.size() == 0) return;
  // Queued behind a chunk no send in flight reads, a chunk that fills less than a quarter of
  // its buffer goes into that chunk's room if it fits (see the header).
  if (count_ > in_flight_chunks_ && chunk.size() * 4 < chunk.capacity() && append_to_tail(chunk)) {
    chunk.reset();
    return;
  }
  if (count_ == capacity_) grow();
  queued_bytes_ += chunk.size();
  at(count_) = std::move(chunk);
  ++count_;
  state_->set_queued_bytes(queued_bytes_);
  if (!in_flight_) LoopInternals::defer_flush(state_->loop(), *this);
}

bool Sender::append_to_tail(const Chunk& chunk) {
  Chunk& tail = at(count_ - 1);
  if (tail.capacity() - tail.size() < chunk.size()) return false;
  std::memcpy(tail.data() + tail.size(), chunk.data(), chunk.size());
  tail.set_size(tail.size() + chunk.size());
  queued_bytes_ += chunk.size();
  state_->set_queued_bytes(queued_bytes_);
  return true;
}

BRRR_HOT_PATH void Sender::flush() {
  if (!in_flight_ && !failed_ && count_ > 0) send_queued();
}

BRRR_HOT_PATH void Sender::pop_front() {
  front().reset();
  head_ = (head_ + 1) & (capacity_ - 1);
  --count_;
  front_offset_ = 0;
  if (count_ == 0) {
    if (heap_ring_ != nullptr) {  // back to `first_` alone (else capacity_ is 1 already)
      heap_ring_.reset();
      capacity_ = 1;
    }
    head_ = 0;
    gather_.reset();
  }
}

BRRR_HOT_PATH void Sender::send_queued() {
  // Where the backend sends at once (Reactor::try_send), the queue goes out here, with no
  // operation, registry slot or completion, for as long as the socket takes all it is given
  // and the backend takes the sends; an operation does the rest.
  size_t sent_now = 0;
  bool may_try = try_sends_;
  for (;;) {
    size_t chunks = std::min(count_, SendGather::kMaxEntries);
    IoOperation op = chunks == 1 ? plain_send(front().data() + front_offset_, front().size() - front_offset_)
                                 : send_of(chunks);
    if (may_try && op.opcode == IoOpcode::kSend) {
      int n = state_->try_send(static_cast<const char*>(op.buf), op.len);
      if (n > 0) {
        consume(static_cast<size_t>(n));
        sent_now += static_cast<size_t>(n);
        if (count_ == 0) break;
        // A short send: the socket is full, so an operation waits for room.
        may_try = static_cast<uint32_t>(n) == op.len;
        continue;
      }
      if (n != -EAGAIN && sent_now == 0) {
        fail(n);
        return;
      }
      // Else an operation: it waits for room, or (after bytes went out just now) reports the
      // error through its completion, after on_sent below has counted those bytes.
    }
    int rc = state_->start(detail::Side::kWrite, op, this);
    if (rc != 0) {
      fail(rc);
      return;
    }
    in_flight_ = true;
    in_flight_chunks_ = chunks;
    break;
  }
  if (sent_now > 0) {
    state_->set_queued_bytes(queued_bytes_);
    handler_.on_sent(sent_now, queued_bytes_);  // last: the handler may destroy this Sender
  }
}

BRRR_HOT_PATH IoOperation Sender::send_of(size_t chunks) {
  // The chunks as byte ranges, neighbours in memory joined: one range is a plain send, several
  // a gathered one where the backend has it (else the first range alone).
  iovec ranges[SendGather::kMaxEntries];
  size_t count = 0;
  for (size_t i = 0; i < chunks; ++i) {
    Chunk& c = at(i);
    size_t skip = i == 0 ? front_offset_ : 0;
    count = SendGather::append_joined(ranges, count, c.data() + skip, c.size() - skip);
  }
  EventLoop& loop = state_->loop();
  if (count > 1 && LoopInternals::has_reactor(loop) && LoopInternals::reactor(loop).has(kCapSendMsg)) {
    if (gather_ == nullptr) gather_ = std::make_unique<SendGather>();
    std::copy(ranges, ranges + count, gather_->entries);
    return IoOperation{.opcode = IoOpcode::kSendMsg, .buf = gather_->use(count)};
  }
  return plain_send(static_cast<char*>(ranges[0].iov_base), ranges[0].iov_len);
}

void Sender::fail(int negative_errno) {
  failed_ = true;
  while (count_ > 0) pop_front();
  queued_bytes_ = 0;
  state_->set_queued_bytes(0);
  handler_.on_send_error(state_->error("send", negative_errno));
}

IoOperation Sender::plain_send(char* data, size_t size) {
  return IoOperation{.opcode = IoOpcode::kSend, .len = static_cast<uint32_t>(std::min<size_t>(size, 1u << 30)), .buf = data};
}

BRRR_HOT_PATH void Sender::consume(size_t sent) {
  queued_bytes_ -= sent;
  while (sent > 0) {
    size_t take = std::min(sent, front().size() - front_offset_);
    front_offset_ += take;
    sent -= take;
    if (front_offset_ == front().size()) pop_front();
  }
}

BRRR_HOT_PATH void Sender::on_op_complete(const Completion& c) {
  in_flight_ = false;
  in_flight_chunks_ = 0;
  if (c.result < 0) {
    fail(c.result);
    return;
  }
  size_t sent = static_cast<size_t>(c.result);
  consume(sent);
  state_->set_queued_bytes(queued_bytes_);
  // What is left (the rest of a partial send, or what was queued meanwhile) goes out once the
  // batch this completion came in has been handed out, with whatever else the batch queues.
  if (count_ > 0) LoopInternals::defer_flush(state_->loop(), *this);
  handler_.on_sent(sent, queued_bytes_);
}

}  // namespace brrr
