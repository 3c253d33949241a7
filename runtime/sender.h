// sender.h: a socket's outgoing queue. Chunks are sent in order, one send in flight at a
// time, partial sends resumed where they stopped; a chunk (and the pool buffer it may hold)
// is released as soon as its last byte is sent.
//
//   Sender sender(socket, handler);
//   sender.push(std::move(chunk));            // starts sending if idle
//   sender.queued_bytes();                    // for high/low-water flow control
//
// The socket is in its loop's write set while anything is queued or in flight.
// An idle Sender owns no memory beyond itself.
//
// Threads: loop thread. Ownership: borrows the socket and handler; both must outlive it.
#ifndef BRRR_RUNTIME_SENDER_H_
#define BRRR_RUNTIME_SENDER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "runtime/buffer_pool.h"
#include "runtime/socket.h"

namespace brrr {

class Sender final : public detail::IoWaiter {
 public:
  class Handler {
   public:
    // Some bytes went out; `queued` remain.
    virtual void on_sent(size_t bytes, size_t queued) = 0;
    // A send failed (reset, broken pipe...): what is queued is dropped. Called once.
    virtual void on_send_error(absl::Status status) = 0;

   protected:
    ~Handler() = default;
  };

  Sender(Socket& socket, Handler& handler);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  void push(Chunk chunk);

  size_t queued_bytes() const { return queued_bytes_; }
  // Nothing queued and nothing in flight.
  bool idle() const { return count_ == 0 && !in_flight_; }
  bool failed() const { return failed_; }

  void on_op_complete(const Completion& c) override;

 private:
  void send_front();
  Chunk& front() { return ring_[head_]; }
  void pop_front();
  void grow();

  detail::SocketState* state_;
  Handler& handler_;
  // A ring of chunks, allocated on first use and freed when it empties.
  std::unique_ptr<Chunk[]> ring_;
  size_t capacity_ = 0;
  size_t head_ = 0;
  size_t count_ = 0;
  size_t front_offset_ = 0;  // bytes of the front chunk already sent
  size_t queued_bytes_ = 0;
  bool in_flight_ = false;
  bool failed_ = false;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_SENDER_H_
