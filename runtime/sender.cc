#include "runtime/sender.h"

#include <algorithm>
#include <utility>

namespace brrr {

Sender::Sender(Socket& socket, Handler& handler) : state_(socket.state()), handler_(handler) {}

Sender::~Sender() {
  if (in_flight_) {
    state_->forget_waiter(detail::Side::kWrite);
    state_->cancel(detail::Side::kWrite);
    // The chunk being sent stays readable by the backend until the cancel completes.
    state_->adopt_buffer(detail::Side::kWrite, std::move(front()));
  }
  if (queued_bytes_ > 0 && !state_->closing()) state_->set_queued_bytes(0);
}

void Sender::grow() {
  size_t capacity = capacity_ == 0 ? 4 : capacity_ * 2;
  auto ring = std::make_unique<Chunk[]>(capacity);
  for (size_t i = 0; i < count_; ++i) ring[i] = std::move(ring_[(head_ + i) % capacity_]);
  ring_ = std::move(ring);
  capacity_ = capacity;
  head_ = 0;
}

void Sender::push(Chunk chunk) {
  if (failed_ || chunk.size() == 0) return;
  if (count_ == capacity_) grow();
  queued_bytes_ += chunk.size();
  ring_[(head_ + count_) % capacity_] = std::move(chunk);
  ++count_;
  state_->set_queued_bytes(queued_bytes_);
  if (!in_flight_) send_front();
}

void Sender::pop_front() {
  ring_[head_] = Chunk();
  head_ = (head_ + 1) % capacity_;
  --count_;
  front_offset_ = 0;
  if (count_ == 0) {
    ring_.reset();
    capacity_ = 0;
    head_ = 0;
  }
}

void Sender::send_front() {
  Chunk& c = front();
  IoOperation op{.opcode = IoOpcode::kSend,
                 .len = static_cast<uint32_t>(std::min<size_t>(c.size() - front_offset_, 1u << 30)),
                 .buf = c.data() + front_offset_};
  int rc = state_->start(detail::Side::kWrite, op, this);
  if (rc != 0) {
    failed_ = true;
    handler_.on_send_error(state_->error("send", rc));
    return;
  }
  in_flight_ = true;
}

void Sender::on_op_complete(const Completion& c) {
  in_flight_ = false;
  if (c.result < 0) {
    failed_ = true;
    while (count_ > 0) pop_front();
    queued_bytes_ = 0;
    state_->set_queued_bytes(0);
    handler_.on_send_error(state_->error("send", c.result));
    return;
  }
  size_t sent = static_cast<size_t>(c.result);
  front_offset_ += sent;
  queued_bytes_ -= sent;
  if (front_offset_ == front().size()) pop_front();
  state_->set_queued_bytes(queued_bytes_);
  if (count_ > 0) send_front();
  handler_.on_sent(sent, queued_bytes_);
}

}  // namespace brrr
