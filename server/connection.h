// connection.h: one echo connection: what it receives, it sends back, in order.
//
// A Receiver feeds a Sender. The bytes queued to send are bounded: at the high-water mark the
// connection stops reading (the client's own sends then block in its kernel), and reads again
// once the queue is down to the low-water mark. A client that never reads therefore holds at
// most about high_water bytes of the server's memory, and nobody else waits for it.
// When the client half-closes, everything received is sent back, then the connection closes.
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

namespace brrr::server {

class Shard;

enum class CloseReason { kFinished, kIdle, kError, kDrain };

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

  // For the shard's list.
  Connection* prev = nullptr;
  Connection* next = nullptr;

 private:
  void on_data(Chunk chunk) override;
  void on_end(absl::Status status) override;
  void on_sent(size_t bytes, size_t queued) override;
  void on_send_error(absl::Status status) override;
  void close_when_flushed();

  Shard& shard_;
  Socket socket_;  // declared first: destroyed last, after the receiver and sender using it
  Receiver receiver_;
  Sender sender_;
  std::unique_ptr<LinePrefixer> prefixer_;  // --reply_prefix only
  int64_t last_activity_ns_;
  bool read_done_ = false;
  bool drained_ = false;  // closed by the drain deadline, not by its client
  bool closed_ = false;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_CONNECTION_H_
