// connection.h: one echo connection: what it receives, it sends back, in order.
//
// A Receiver feeds a Sender. The bytes queued to send are bounded: at the high-water mark the
// connection stops reading (the client's own sends then block in its kernel), and reads again
// once the queue is down to the low-water mark. A client that never reads therefore holds at
// most about high_water bytes of the server's memory, and nobody else waits for it.
// "About": the receives the backend completed before the stop took effect still arrive (on
// io_uring a multishot receive may have emptied the socket's buffer into several chunks). So
// once a connection has reached the mark it is "backed up": it reads again with single
// receives of at most what fits below the mark, and goes back to receiving as much as comes
// only when its queue has emptied. The overshoot happens once, not on every resume.
// When the client half-closes, everything received is sent back, then the connection closes.
//
// Throttles (server/throttle.h): what a connection reads is charged to its own bytes-per-second
// budget and to the server's; when it runs ahead of either, it stops reading until it is back
// within them. Reading resumes only when neither the queue nor a throttle holds it.
//
// Threads: its shard's loop thread. Ownership: the Shard owns connections (an intrusive list)
// and deletes a connection once it has closed, outside its callbacks.
#ifndef BRRR_SERVER_CONNECTION_H_
#define BRRR_SERVER_CONNECTION_H_

#include <cstdint>
#include <memory>

#include "runtime/receiver.h"
#include "runtime/sender.h"
#include "runtime/socket.h"
#include "server/line_prefixer.h"
#include "server/rate_limiter.h"

namespace brrr::server {

class Shard;

// Why a connection closed; each but kFinished is counted under its own figure.
enum class CloseReason { kFinished, kIdle, kError, kDrain, kAdmin, kSignal };

class Connection final : public Receiver::Handler, public Sender::Handler {
 public:
  Connection(Shard& shard, Socket socket);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  // Closes it if nothing happened on it since `since_ns`.
  void close_if_idle_since(int64_t since_ns);
  // The drain deadline passed: stop reading, send what is queued, then close.
  void finish_for_drain();
  // Closes now, dropping what is queued.
  void close(CloseReason reason);
  bool closed() const { return closed_; }
  // The throttles changed: a wait they imposed is re-evaluated against the new ones.
  void throttle_changed();

  int fd() const { return socket_.fd(); }
  SocketInfo info() const { return socket_.info(); }

  // For the shard's list.
  Connection* prev = nullptr;
  Connection* next = nullptr;

 private:
  void on_data(Chunk chunk) override;
  void on_end(absl::Status status) override;
  void on_sent(size_t bytes, size_t queued) override;
  void on_send_error(absl::Status status) override;
  void close_when_flushed();
  // Stops reading if this chunk of `bytes` ran past a rate limit; true if it did.
  bool throttle_after_read(size_t bytes);
  // The receive size the throttles and a backed-up queue call for (0: no limit).
  uint32_t read_limit() const;
  // Reads again unless the queue, a throttle, the end of input or the drain holds it.
  void maybe_resume_reading();

  Shard& shard_;
  Socket socket_;  // declared first: destroyed last, after the receiver and sender using it
  Receiver receiver_;
  Sender sender_;
  std::unique_ptr<LinePrefixer> prefixer_;  // --reply_prefix only
  int64_t last_activity_ns_;
  RateLimiter read_rate_;
  TimerHandle throttle_wait_;  // pending while a throttle holds reading
  bool backed_up_ = false;  // reached the high-water mark and has not caught up since
  bool read_done_ = false;
  bool drained_ = false;  // closed by the drain deadline, not by its client
  bool closed_ = false;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_CONNECTION_H_
