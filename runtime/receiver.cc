#include "runtime/receiver.h"

#include <algorithm>
#include <cerrno>

#include "runtime/hot_path.h"
#include "runtime/internal/loop_internals.h"

namespace brrr {

Receiver::Receiver(Socket& socket, Handler& handler, uint32_t chunk_size)
    : Receiver(socket, handler, LoopInternals::receive_buffers(socket.loop()), chunk_size) {}

Receiver::Receiver(Socket& socket, Handler& handler, BufferPool* pool, uint32_t chunk_size)
    : state_(socket.state()),
      handler_(handler),
      pool_(pool),
      chunk_size_(pool != nullptr ? pool->buffer_size() : chunk_size) {}

Receiver::~Receiver() {
  if (armed_) {
    state_->forget_waiter(detail::Side::kRead);
    state_->cancel(detail::Side::kRead);
    // The backend may write into the heap block until the cancel completes: the socket
    // state keeps it until then.
    state_->adopt_receive_buffer(std::move(heap_));
  }
}

void Receiver::start() {
  wanted_ = true;
  if (!armed_ && !finished_) arm();
}

void Receiver::stop() {
  wanted_ = false;
  if (armed_) state_->cancel(detail::Side::kRead);
}

void Receiver::arm(bool pool_ran_dry) {
  IoOperation op{.opcode = IoOpcode::kRecv};
  // After -ENOBUFS one receive goes to the heap even when the runtime holds few buffers: the
  // rest may be filled in the backend, not yet handed over, and another multishot receive
  // would only find the ring dry again.
  multishot_ = read_limit_ == 0 && pool_ != nullptr && !pool_ran_dry && pool_->in_use() < pool_->count();
  if (multishot_) {
    op.flags = kOpMultishot | kOpBufferSelect;
  } else {
    if (heap_.data() == nullptr) heap_ = Chunk::Heap(chunk_size_);
    op.buf = heap_.data();
    op.len = read_limit_ == 0 ? chunk_size_ : std::min(chunk_size_, read_limit_);
  }
  int rc = state_->start(detail::Side::kRead, op, this);
  if (rc != 0) {
    end(state_->error("recv", rc));
    return;
  }
  armed_ = true;
}

BRRR_HOT_PATH void Receiver::on_op_complete(const Completion& c) {
  if (!c.more()) armed_ = false;
  if (c.result > 0) {
    ++chunks_;
    if (c.has_buffer()) {
      pool_->taken();
      handler_.on_data(Chunk(pool_, c.buffer_id, static_cast<size_t>(c.result)));
    } else {
      heap_.set_size(static_cast<size_t>(c.result));
      handler_.on_data(std::move(heap_));
    }
  } else if (c.result == 0) {
    end(absl::OkStatus());
    return;
  } else if (c.result == -ECANCELED && !wanted_) {
    if (!armed_) handler_.on_stopped();
    return;  // stopped; start() rearms
  } else if (c.result != -ENOBUFS && c.result != -ECANCELED) {
    end(state_->error("recv", c.result));
    return;
  }
  // -ENOBUFS: the pool ran dry; the next receive goes into a heap block.
  const bool pool_ran_dry = c.result == -ENOBUFS;
  if (pool_ran_dry) ++pool_ran_dry_count_;
  if (!armed_ && wanted_ && !finished_) {
    arm(pool_ran_dry);
  } else if (!armed_ && !wanted_ && !finished_) {
    handler_.on_stopped();  // the last chunk of a stopped receive
  }
}

void Receiver::end(absl::Status status) {
  if (finished_) return;
  finished_ = true;
  wanted_ = false;
  handler_.on_end(std::move(status));
}

}  // namespace brrr
