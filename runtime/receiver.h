// receiver.h: keeps receiving on a socket and hands every chunk to a handler, with flow
// control. The receive path of servers that must not hold a buffer per idle connection.
//
//   class Conn : public Receiver::Handler {
//     void on_data(Chunk chunk) override { queue_.push_back(std::move(chunk)); ... }
//     void on_end(absl::Status status) override { ... }   // OK: the peer closed its side
//   };
//   Receiver receiver(socket, conn);
//   receiver.start();
//   receiver.stop();   // queue over its high-water mark
//   receiver.start();  // drained below the low-water mark
//
// With a buffer pool (the loop's provided buffers) it keeps one multishot recv armed: the
// backend takes a pool buffer only when data arrives, so an idle connection holds no buffer.
// When the pool runs dry (-ENOBUFS), or the backend has no provided buffers, it receives one
// chunk at a time into a heap block instead, and goes back to the pool as soon as it can: a
// receive that found the pool dry is followed by a heap one, since buffers the backend filled
// but has not handed over yet are not the runtime's to count.
// Either way each chunk is at most the pool's buffer size.
//
// stop() cancels the receive in the backend; chunks that were already received still arrive
// (at most one backend batch), then nothing more until start(). on_end comes once, after
// which the receiver is finished.
//
// Threads: loop thread. Ownership: borrows the socket and handler; both must outlive it.
#ifndef BRRR_RUNTIME_RECEIVER_H_
#define BRRR_RUNTIME_RECEIVER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/buffer_pool.h"
#include "runtime/socket.h"

namespace brrr {

class Receiver final : public detail::IoWaiter {
 public:
  // Its calls should not throw: an exception that escapes one is counted and printed by the
  // loop (callback_errors), which goes on, but this Receiver may then receive no more.
  class Handler {
   public:
    virtual void on_data(Chunk chunk) = 0;
    // The stream ended: OK at the peer's end of stream, else the error. Called once.
    virtual void on_end(absl::Status status) = 0;
    // After stop(): the receive that was in flight has ended, so no chunk arrives until
    // start(). Not called when stop() found none in flight (receiving() was already false).
    virtual void on_stopped() {}

   protected:
    ~Handler() = default;
  };

  // Receives into the socket's loop's pool of provided buffers (heap blocks of `chunk_size`
  // bytes where the backend has none).
  Receiver(Socket& socket, Handler& handler, uint32_t chunk_size = 16384);
  // `pool` may be null: every chunk is then a heap block of `chunk_size` bytes.
  Receiver(Socket& socket, Handler& handler, BufferPool* pool, uint32_t chunk_size = 16384);
  ~Receiver();
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // Starts (or resumes) receiving. No-op if already receiving or finished.
  void start();
  // Stops asking for more; see above.
  void stop();

  // 0 (the default): receive as much as comes (multishot from the pool, where the backend has
  // one). Otherwise each receive is a single one of at most `bytes`: how a rate-limited reader
  // keeps what it takes in past its budget to one small read. Applies from the next receive.
  void set_read_limit(uint32_t bytes) { read_limit_ = bytes; }

  bool wants_data() const { return wanted_; }
  // A receive is in flight in the backend: after stop(), chunks may still arrive while it is.
  bool receiving() const { return armed_; }
  bool finished() const { return finished_; }
  uint64_t chunks() const { return chunks_; }
  // Receives that found the pool dry (-ENOBUFS); each is followed by one into a heap block, so
  // at most this many chunks did not come from the pool (where there is one).
  uint64_t pool_ran_dry_count() const { return pool_ran_dry_count_; }

  void on_op_complete(const Completion& c) override;

 private:
  // `pool_ran_dry`: the receive before this one ended with -ENOBUFS (this one is a heap block).
  void arm(bool pool_ran_dry = false);
  void end(absl::Status status);

  detail::SocketState* state_;
  Handler& handler_;
  BufferPool* pool_;
  uint32_t chunk_size_;
  uint32_t read_limit_ = 0;
  Chunk heap_;             // the block a single-shot recv is filling
  bool wanted_ = false;    // start() was called and stop() was not
  bool armed_ = false;     // a recv is in flight
  bool multishot_ = false; // the one in flight is the pool's multishot recv
  bool finished_ = false;
  uint64_t chunks_ = 0;
  uint64_t pool_ran_dry_count_ = 0;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_RECEIVER_H_
