#include "server/connection.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>

#include "runtime/clock.h"
#include "runtime/hot_path.h"
#include "server/shard.h"

namespace brrr::server {

Connection::Connection(Shard& shard, Socket socket)
    : shard_(shard),
      socket_(std::move(socket)),
      receiver_(socket_, *this, shard.options().receive_buffer_size),
      sender_(socket_, *this),
      last_activity_ns_(shard.loop().now_ns()) {
  if (!shard.options().reply_prefix.empty()) {
    prefixer_ = std::make_unique<LinePrefixer>(shard.options().reply_prefix);
  }
}

void Connection::start() {
  receiver_.set_read_limit(read_limit());
  receiver_.start();
}

BRRR_HOT_PATH void Connection::on_data(Chunk chunk) {
  if (closed_) return;
  ShardCounters& c = shard_.counters();
  if (write_shut_) {
    c.bytes_discarded.add(chunk.size());  // read after the FIN: not echoed (see the header)
    return;
  }
  c.bytes_in.add(chunk.size());
  c.messages_in.add(1);
  last_activity_ns_ = shard_.loop().io_batch_time_ns();
  size_t bytes = chunk.size();
  uint64_t high_water = shard_.options().high_water;
  if (held_ == nullptr && sender_.queued_bytes() < high_water) {
    if (prefixer_ == nullptr) {
      sender_.push(std::move(chunk));  // the common case: queued as received, no copy
    } else {
      std::string_view in(chunk.data(), bytes);
      in.remove_prefix(queue_prefixed(in));
      if (!in.empty()) hold(in);
    }
  } else {
    hold(std::string_view(chunk.data(), bytes));  // arrived after the stop
  }
  if (closed_) return;  // the push failed and closed it
  if (sender_.queued_bytes() >= high_water || held_ != nullptr) {
    backed_up_ = true;
    if (receiver_.wants_data()) {
      receiver_.stop();
      c.reads_paused.add(1);
    }
  } else if (backed_up_) {
    receiver_.set_read_limit(read_limit());  // what is left below the mark
  }
  throttle_after_read(bytes);
}

size_t Connection::queue_prefixed(std::string_view in) {
  const EchoServerOptions& o = shard_.options();
  size_t taken = 0;
  while (!closed_ && taken < in.size() && sender_.queued_bytes() < o.high_water) {
    size_t used = 0;
    sender_.push(prefixer_->apply(in.substr(taken), o.max_queued_bytes() - sender_.queued_bytes(), &used));
    taken += used;
  }
  return taken;
}

void Connection::hold(std::string_view in) {
  if (held_ == nullptr) held_ = std::make_unique<HeldInput>(shard_.options().receive_buffer_size);
  held_->append(in);
}

void Connection::queue_held() {
  const EchoServerOptions& o = shard_.options();
  while (held_ != nullptr && !closed_ && sender_.queued_bytes() < o.high_water) {
    if (prefixer_ == nullptr) {
      sender_.push(held_->take_front());  // at most one block: within the bound
    } else {
      size_t used = 0;
      sender_.push(prefixer_->apply(held_->front(), o.max_queued_bytes() - sender_.queued_bytes(), &used));
      held_->consume(used);
    }
    if (held_->empty()) held_.reset();
  }
}

BRRR_HOT_PATH bool Connection::throttle_after_read(size_t bytes) {
  Throttle& t = shard_.throttle();
  uint64_t per_connection = t.bytes_per_second_per_connection();
  uint64_t total = t.bytes_per_second_total();
  if (per_connection == 0 && total == 0) return false;  // the common case: two relaxed loads
  int64_t now = MonotonicNanos();
  int64_t wait = std::max(read_rate_.charge(bytes, per_connection, now), t.total_bytes().charge(bytes, total, now));
  if (wait == 0 || throttle_wait_.pending()) return false;
  if (receiver_.wants_data()) receiver_.stop();
  shard_.counters().reads_throttled.add(1);
  throttle_wait_ = shard_.loop().call_later(Duration(wait), [this] { maybe_resume_reading(); }, "echo:throttle");
  return true;
}

uint32_t Connection::read_limit() const {
  // Under a rate, read at most about 50 ms of it at a time (what arrives past the budget is
  // then one small read, not a burst of the backend's multishot receives).
  uint64_t limit = 0;  // none
  Throttle& t = shard_.throttle();
  uint64_t per_connection = t.bytes_per_second_per_connection();
  uint64_t total = t.bytes_per_second_total();
  if (per_connection != 0 || total != 0) {
    uint64_t tighter = per_connection == 0 ? total : total == 0 ? per_connection : std::min(per_connection, total);
    limit = std::clamp<uint64_t>(tighter / 20, 512, 65536);
  }
  // A client that lets its echoes pile up: read no more than fits below the high-water mark.
  if (backed_up_) {
    uint64_t high_water = shard_.options().high_water;
    uint64_t room = high_water - std::min<uint64_t>(sender_.queued_bytes(), high_water);
    room = std::max<uint64_t>(room, 1);
    limit = limit == 0 ? room : std::min(limit, room);
  }
  return static_cast<uint32_t>(std::min<uint64_t>(limit, UINT32_MAX));
}

void Connection::byte_rates_changed(bool new_per_connection_rate) {
  if (new_per_connection_rate) read_rate_.reset();
  receiver_.set_read_limit(read_limit());
  if (receiver_.wants_data()) {
    // Re-arm so that the receive in flight follows the new limit.
    receiver_.stop();
    receiver_.start();
  }
  if (throttle_wait_.cancel()) maybe_resume_reading();
}

BRRR_HOT_PATH void Connection::maybe_resume_reading() {
  if (closed_ || read_done_ || held_ != nullptr || receiver_.wants_data() || throttle_wait_.pending()) return;
  if (sender_.queued_bytes() > shard_.options().low_water || shard_.draining_deadline_passed()) return;
  receiver_.set_read_limit(read_limit());
  receiver_.start();
}

void Connection::on_end(absl::Status status) {
  read_done_ = true;
  if (!status.ok()) {
    close(drained_ ? CloseReason::kDrainReset : CloseReason::kError);
    return;
  }
  if (write_shut_) {
    close(CloseReason::kDrain);  // the client read its end of stream and closed its side
    return;
  }
  // The client half-closed: send back everything received, then close.
  close_when_flushed();
}

BRRR_HOT_PATH void Connection::on_sent(size_t bytes, size_t queued) {
  ShardCounters& c = shard_.counters();
  c.bytes_out.add(bytes);
  c.messages_out.add(1);
  last_activity_ns_ = shard_.loop().io_batch_time_ns();
  if (closed_) return;
  if (held_ != nullptr && queued <= shard_.options().low_water) {
    queue_held();
    if (closed_) return;
    queued = sender_.queued_bytes();
  }
  if (backed_up_ && queued == 0 && held_ == nullptr) {
    // Caught up: back to receiving as much as comes (the receive in flight, if any, is a
    // single one; the next is armed with this).
    backed_up_ = false;
    receiver_.set_read_limit(read_limit());
  }
  if (read_done_) {
    close_when_flushed();
  } else if (queued <= shard_.options().low_water) {
    maybe_resume_reading();
  }
}

void Connection::on_send_error(absl::Status) { close(drained_ ? CloseReason::kDrainReset : CloseReason::kError); }

void Connection::on_stopped() {
  if (drained_) maybe_shut_write();
}

void Connection::close_when_flushed() {
  if (drained_) {
    maybe_shut_write();
  } else if (sender_.idle() && held_ == nullptr) {
    close(CloseReason::kFinished);
  }
}

void Connection::close_if_idle(int64_t now_ns, int64_t idle_timeout_ns) {
  if (closed_ || now_ns - last_activity_ns_ < idle_timeout_ns / 4) return;
  const bool first_look = send_queue_looked_ns_ < last_activity_ns_;  // of this quiet spell
  if (first_look) {
    send_queue_at_look_ = kernel_unacknowledged_bytes();
  } else if (send_queue_at_look_ > 0) {
    int64_t now_queued = kernel_unacknowledged_bytes();
    if (now_queued != send_queue_at_look_) last_activity_ns_ = now_ns;  // the client took some
    send_queue_at_look_ = now_queued;
  }
  send_queue_looked_ns_ = now_ns;
  // A first look cannot tell what the client took before it: it comes past the timeout only
  // when the loop was held up, and the client may have been taking its echo all along.
  if (!first_look && now_ns - last_activity_ns_ > idle_timeout_ns) close(CloseReason::kIdle);
}

int64_t Connection::kernel_unacknowledged_bytes() const {
  int bytes = 0;
  return ::ioctl(socket_.fd(), SIOCOUTQ, &bytes) == 0 ? bytes : -1;
}

void Connection::finish_for_drain() {
  if (closed_) return;
  read_done_ = true;
  drained_ = true;
  receiver_.stop();
  throttle_wait_.cancel();
  maybe_shut_write();
}

void Connection::maybe_shut_write() {
  if (closed_ || write_shut_) return;
  // on_sent and on_stopped call again: a chunk received after the stop is echoed too.
  if (!sender_.idle() || held_ != nullptr || receiver_.receiving()) return;
  if (receiver_.finished()) {
    close(CloseReason::kDrain);  // the client had closed its side: nothing is left unread
    return;
  }
  if (!socket_.shutdown_write().ok()) {
    close(CloseReason::kDrainReset);  // the peer is gone (reset)
    return;
  }
  write_shut_ = true;
  receiver_.set_read_limit(0);
  receiver_.start();
  linger_ = shard_.loop().call_later(kDrainLinger, [this] { end_linger(); }, "echo:drain_linger");
}

void Connection::end_linger() {
  if (closed_) return;
  receiver_.stop();
  // Bytes still in the socket's receive queue make close() send a reset: the client kept
  // sending past the linger.
  int unread = 0;
  bool clean = ::ioctl(socket_.fd(), FIONREAD, &unread) == 0 && unread == 0;
  close(clean ? CloseReason::kDrain : CloseReason::kDrainReset);
}

void Connection::drain_flush_expired() {
  if (closed_ || write_shut_) return;
  // Its echoes did not all reach the kernel: a reset, not an end of stream that would claim
  // the echo complete.
  (void)socket_.set_linger_zero();
  close(CloseReason::kDrainReset);
}

void Connection::close(CloseReason reason) {
  if (closed_) return;
  // An end of stream tells the client that its echo is complete (connection.h). A close that
  // drops echo bytes already read (queued or held: CloseConnection, a second stop signal, an
  // idle client that never took them) resets instead, as drain_flush_expired does.
  if (!sender_.idle() || held_ != nullptr) (void)socket_.set_linger_zero();
  closed_ = true;
  receiver_.stop();
  throttle_wait_.cancel();
  linger_.cancel();
  shard_.connection_closed(this, reason);
}

}  // namespace brrr::server
