// connection.h: one echo connection: what it receives, it sends back, in order.
//
// A Receiver feeds a Sender, through the LinePrefixer with --reply_prefix.
//
// The queue bound. What a connection has queued to send never exceeds
//   high_water + recv_buffer_size   (EchoServerOptions::max_queued_bytes(); 272 KiB by default)
// whatever the prefix and the backend. The constant past the mark is one receive buffer: a
// received chunk (at most one buffer) is queued whole, without a copy, only while the queue
// is below the mark; with a prefix, the LinePrefixer writes at most what fits below the
// bound and stops there, even inside a prefix. Once the queue reaches the mark the
// connection stops reading (the client's own sends then block in its kernel), and reads
// again once the queue is down to the low-water mark. So a client that never reads holds at
// most that much of the server's queue, and nobody else waits for it.
//
// Held input. What arrives after the stop (receives the backend completed before the stop
// took effect), and what the prefixer had no room to transform, is received but not queued:
// it is held (server/held_input.h), copied into compact heap blocks so that it pins none of
// the loop's shared receive buffers. Once the queue is down to the low-water mark, held
// input moves into the queue, again only as far as the bound allows; reading resumes only
// when nothing is held. How much can be held: what the backend had read ahead of the stop,
// plus the untransformed rest of one receive, plus one block of slack. The read-ahead is
// bytes the socket's receive buffer held (the kernel held them for this connection before;
// now the server's heap does, and the client's sends stop sooner):
//  - select, poll, epoll: up to 16 buffers per pass (RC_BATCH, reactors/common/
//    readiness_core.h), and up to three passes before the runtime sees the first chunk (at
//    submit, on the readiness event, from the again list): 48 buffers, 768 KiB by default.
//    With many connections at once, the again list reads on only once the loop has taken
//    every completion, so that a connection whose earlier receives wait unseen is not read
//    further (120 never-reading clients, bench/never_reader.py: up to about 260 KiB held on
//    epoll; about 1 MB when the again list read on regardless);
//  - io_uring: what the multishot receive took off the socket until its cancel reached the
//    kernel with the loop's next submission. From Linux 6.17 a bundle receive ends after 16
//    buffers (UR_RECV_CAP_BUFFERS, reactors/io_uring/; 256 KiB by default) and is armed
//    again: about one such receive ahead of the stop, measured up to about 260 KiB on
//    loopback. Before 6.17 a kernel pass takes what the socket holds (its receive buffer's
//    contents, megabytes once the kernel has grown it: 9 MB measured with bundles, under
//    1 MB without).
// This happens once per backlog, not on every resume: once a connection has reached the
// mark it is "backed up" and reads only with single receives of at most what fits below the
// mark (one buffer at most), and only when nothing is held; it goes back to receiving as much
// as comes only when its queue has emptied and nothing is held.
// When the client half-closes, everything received (held input too) is sent back, then the
// connection closes.
//
// At the drain deadline (server/shard.h) a connection still open is closed cleanly, so that
// its client can tell "the server finished" from a failure:
//  1. it stops reading: what the backend had already read (a receive completing after the
//     stop) still counts as read;
//  2. it echoes everything read, held input too, and waits until the whole queue has gone to
//     the kernel and no receive is in flight (so nothing read later can be left unechoed);
//  3. it shuts its write side (FIN after the last echoed byte);
//  4. it reads and discards what the client still sends (counted in bytes_discarded), so that
//     close() finds no unread bytes and sends no reset, until the client closes its side or
//     kDrainLinger has passed; then it closes.
// A client that does not take its echoes within kDrainFlush of the deadline (step 2 not done)
// is closed with a reset (SO_LINGER 0): its echo was cut short, and a reset says so where an
// end of stream would claim it complete. So a client can count on this: if it reads an end
// of stream, every byte the server read is in what came back before it, in order, and every
// byte it sent past those was not read and is not echoed (it resends them); a reset means the
// echo may be incomplete. Counted as connections_closed_drain_clean or _reset. The same holds
// for every other close: one that drops echo bytes already read (CloseConnection, a second stop
// signal, --idle_timeout on a client that took none of them) is a reset, never an end of stream.
//
// Throttles (server/throttle.h): what a connection reads is charged to its own bytes-per-second
// budget and to the server's; when it runs ahead of either, it stops reading until it is back
// within them. Reading resumes only when neither the queue, held input nor a throttle holds it.
//
// Threads: its shard's loop thread. Ownership: the Shard owns connections (an intrusive list)
// and deletes a connection once it has closed, outside its callbacks.
#ifndef BRRR_SERVER_CONNECTION_H_
#define BRRR_SERVER_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "runtime/clock.h"
#include "runtime/receiver.h"
#include "runtime/sender.h"
#include "runtime/socket.h"
#include "server/held_input.h"
#include "server/line_prefixer.h"
#include "server/rate_limiter.h"

namespace brrr::server {

class Shard;

// Why a connection closed; each but kFinished is counted under its own figure. kDrain and
// kDrainReset: at the drain deadline, cleanly or with a reset (see above).
enum class CloseReason { kFinished, kIdle, kError, kDrain, kDrainReset, kAdmin, kSignal };

// How long after the drain deadline a connection may take to hand its echoes to the kernel
// before it is reset; and how long it then waits, its write side shut, for its client to close.
inline constexpr Duration kDrainFlush = std::chrono::seconds(1);
inline constexpr Duration kDrainLinger = std::chrono::seconds(1);

class Connection final : public Receiver::Handler, public Sender::Handler {
 public:
  Connection(Shard& shard, Socket socket);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  // The shard's idle sweep at `now_ns`: closes it if it has been idle for longer than
  // `idle_timeout_ns`: no byte in or out, and none of the bytes the kernel holds for the client
  // taken by it. (A slow reader of a long echo drains the kernel's send buffer for seconds
  // while the server, waiting for room in it, sends nothing: it is not idle.) Once quiet for a
  // quarter of the timeout, the kernel's send queue is read (one ioctl), and again at each sweep
  // while it is not empty; the sweeps must come at least every quarter of the timeout. A sweep
  // that makes the first look of a quiet spell closes nothing (it comes past the timeout only
  // after the loop was held up, and cannot tell what the client took meanwhile): the next does.
  void close_if_idle(int64_t now_ns, int64_t idle_timeout_ns);
  // The drain deadline passed: stop reading, echo what was read, shut the write side, close
  // (see above).
  void finish_for_drain();
  // kDrainFlush after the deadline: reset it if it has not yet shut its write side.
  void drain_flush_expired();
  // Closes now, dropping what is queued.
  void close(CloseReason reason);
  bool closed() const { return closed_; }
  // The byte rates changed: a wait they imposed is re-evaluated against the new ones. With
  // `new_per_connection_rate` (that rate was set anew) what it read under the old one is
  // forgotten, as Throttle::Apply forgets the total's.
  void byte_rates_changed(bool new_per_connection_rate);

  int fd() const { return socket_.fd(); }
  SocketInfo info() const { return socket_.info(); }

  // For the shard's lists (open connections, and closed ones awaiting their deletion).
  Connection* prev = nullptr;
  Connection* next = nullptr;

 private:
  void on_data(Chunk chunk) override;
  void on_end(absl::Status status) override;
  void on_sent(size_t bytes, size_t queued) override;
  void on_send_error(absl::Status status) override;
  void on_stopped() override;
  // Closes it once everything received has been sent.
  void close_when_flushed();
  // Queues `in` prefixed, as far as the queue bound allows; returns the bytes of `in` taken.
  size_t queue_prefixed(std::string_view in);
  // Keeps `in`, received but not queued (see "Held input").
  void hold(std::string_view in);
  // Moves held input into the queue, as far as the high-water mark.
  void queue_held();
  // Stops reading if this chunk of `bytes` ran past a rate limit; true if it did.
  bool throttle_after_read(size_t bytes);
  // The receive size the throttles and a backed-up queue call for (0: no limit).
  uint32_t read_limit() const;
  // Reads again unless the queue, a throttle, the end of input or the drain holds it.
  void maybe_resume_reading();
  // At the drain deadline: shuts the write side once everything read has been handed to the
  // kernel and no receive is in flight, then discards input until the client closes.
  void maybe_shut_write();
  // kDrainLinger after the write side was shut: closes (with a reset if input is unread).
  void end_linger();
  // The bytes the kernel holds to send to the client, sent or not but unacknowledged
  // (SIOCOUTQ); -1 if it cannot say.
  int64_t kernel_unacknowledged_bytes() const;

  Shard& shard_;
  Socket socket_;  // declared first: destroyed last, after the receiver and sender using it
  Receiver receiver_;
  Sender sender_;
  std::unique_ptr<LinePrefixer> prefixer_;  // --reply_prefix only
  std::unique_ptr<HeldInput> held_;         // only while some input is held
  int64_t last_activity_ns_;  // the loop's clock: the I/O batch of the last byte in or out
  // The idle sweep's last look at the kernel's send queue (close_if_idle): when, and what it held.
  int64_t send_queue_looked_ns_ = 0;
  int64_t send_queue_at_look_ = -1;
  RateLimiter read_rate_;
  TimerHandle throttle_wait_;  // pending while a throttle holds reading
  TimerHandle linger_;         // pending while it waits, write side shut, for its client to close
  bool backed_up_ = false;  // reached the high-water mark (or held input) and has not caught up since
  bool read_done_ = false;
  bool drained_ = false;  // closed by the drain deadline, not by its client
  bool write_shut_ = false;  // at the drain deadline: everything echoed, FIN sent, input discarded
  bool closed_ = false;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_CONNECTION_H_
