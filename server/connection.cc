#include "server/connection.h"

#include "runtime/clock.h"
#include "server/shard.h"

namespace brrr::server {

Connection::Connection(Shard& shard, Socket socket)
    : shard_(shard),
      socket_(std::move(socket)),
      receiver_(socket_, *this, shard.loop().receive_buffers(), shard.options().receive_buffer_size),
      sender_(socket_, *this),
      last_activity_ns_(MonotonicNanos()) {
  if (!shard.options().reply_prefix.empty()) {
    prefixer_ = std::make_unique<LinePrefixer>(shard.options().reply_prefix);
  }
}

void Connection::start() { receiver_.start(); }

void Connection::on_data(Chunk chunk) {
  if (closed_) return;
  ShardCounters& c = shard_.counters();
  c.bytes_in.add(chunk.size());
  c.messages_in.add(1);
  last_activity_ns_ = MonotonicNanos();
  sender_.push(prefixer_ ? prefixer_->apply(chunk) : std::move(chunk));
  if (sender_.queued_bytes() >= shard_.options().high_water && receiver_.wants_data()) {
    receiver_.stop();
    c.reads_paused.add(1);
  }
}

void Connection::on_end(absl::Status status) {
  read_done_ = true;
  if (!status.ok()) {
    close(CloseReason::kError);
    return;
  }
  // The client half-closed: send back everything received, then close.
  close_when_flushed();
}

void Connection::on_sent(size_t bytes, size_t queued) {
  ShardCounters& c = shard_.counters();
  c.bytes_out.add(bytes);
  c.messages_out.add(1);
  last_activity_ns_ = MonotonicNanos();
  if (closed_) return;
  if (read_done_) {
    close_when_flushed();
  } else if (!receiver_.wants_data() && queued <= shard_.options().low_water && !shard_.draining_deadline_passed()) {
    receiver_.start();
  }
}

void Connection::on_send_error(absl::Status) { close(CloseReason::kError); }

void Connection::close_when_flushed() {
  if (sender_.idle()) close(drained_ ? CloseReason::kDrain : CloseReason::kFinished);
}

void Connection::close_if_idle_since(int64_t since_ns) {
  if (!closed_ && last_activity_ns_ < since_ns) close(CloseReason::kIdle);
}

void Connection::finish_for_drain() {
  if (closed_) return;
  read_done_ = true;
  drained_ = true;
  receiver_.stop();
  close_when_flushed();
}

void Connection::close(CloseReason reason) {
  if (closed_) return;
  closed_ = true;
  receiver_.stop();
  shard_.connection_closed(this, reason);
}

}  // namespace brrr::server
