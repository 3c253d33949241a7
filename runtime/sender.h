// sender.h: a socket's outgoing queue. Chunks are sent in order, one send in flight at a
// time, partial sends resumed where they stopped; a chunk (and the pool buffer it may hold)
// is released as soon as its last byte is sent.
//
//   Sender sender(socket, handler);
//   sender.push(std::move(chunk));            // sent when the loop's current batch ends
//   sender.queued_bytes();                    // for high/low-water flow control
//
// Gathering: push() does not send at once. The send starts when the loop has handed out its
// current batch of completions (EventLoop::defer_flush), and takes every chunk queued by then,
// up to SendGather::kMaxEntries, in one gathered send (IoOpcode::kSendMsg) where the backend
// has one. So the four 16 KiB chunks in which a 64 KiB message arrives leave in one system
// call, and a lone chunk goes out as a plain send, in the same loop iteration as before.
// Chunks that lie back to back in memory count as one range (the pool buffers one receive
// filled usually do: the readiness backends hand them out in address order), and a single
// range is a plain send too, which costs the kernel less than a gathered one.
//
// Sending at once: where the backend takes it (Reactor::try_send: the readiness backends
// whenever the socket has room, io_uring when the loop is quiet), a plain send leaves in the
// flush itself, with no operation, registry slot or completion, and the handler hears of it
// before the flush returns; otherwise a send operation is started (it waits for room, or on
// io_uring joins the loop's next batch), as it always is when the queue needs a gathered send.
//
// Small chunks behind a backlog: a chunk holds its whole buffer (a 16 KiB pool buffer) until
// its last byte is sent, so a peer that sends one byte at a time and never reads would make
// each queued byte pin a buffer. A chunk that fills less than a quarter of its buffer and is
// pushed behind a queued chunk that no send in flight reads is copied into that chunk's spare
// room when it fits, and its own buffer goes back at once. The queue then holds at most about
// 4/3 of its bytes in buffers, plus one (a lone small chunk, or the first after a full tail).
// An idle or keeping-up queue never copies: the chunk is queued as it came.
//
// The socket is in its loop's write set while anything is queued or in flight.
// An idle Sender owns no memory beyond itself, and one that never holds more than one chunk
// (a connection answering one request at a time) never allocates: its first chunk has a slot
// inside the Sender, and only a second one moves the queue to a ring on the heap, freed again
// when the queue empties.
//
// Threads: loop thread. Ownership: borrows the socket and handler; both must outlive it.
#ifndef BRRR_RUNTIME_SENDER_H_
#define BRRR_RUNTIME_SENDER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "runtime/buffer_pool.h"
#include "runtime/deferred_flush.h"
#include "runtime/send_gather.h"
#include "runtime/socket.h"

namespace brrr {

// DeferredFlush is the first base: the loop calls flush() through it for every batch, so it
// needs no this-adjusting thunk, which g++ leaves outside the hot code (runtime/hot_path.h);
// on_op_complete() takes the thunk (a readiness backend calls it only when a socket was full).
class Sender final : public DeferredFlush, public detail::IoWaiter {
 public:
  // Its calls should not throw: an exception that escapes one is counted and printed by the
  // loop (callback_errors), which goes on, but this Sender may then send no more.
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

  void push(Chunk&& chunk);

  size_t queued_bytes() const { return queued_bytes_; }
  // Heap memory the Sender holds for its queue (a ring of more than one chunk, a gathered
  // send's list), not counting the chunks' own buffers: 0 when idle, and for as long as it
  // holds one chunk at a time.
  size_t owned_bytes() const;
  // Nothing queued and nothing in flight.
  bool idle() const { return count_ == 0 && !in_flight_; }
  bool failed() const { return failed_; }

  void on_op_complete(const Completion& c) override;
  // Starts sending what is queued, unless a send is in flight (the loop calls it).
  void flush() override;

 private:
  // Sends what is queued: at once where the backend can (Reactor::try_send) while the socket
  // takes it all, else by starting one send operation. A lone chunk is a plain send; several
  // are send_of's.
  void send_queued();
  // The send of the first `chunks` (2 to SendGather::kMaxEntries) chunks: a plain send when
  // they are one range in memory (or the backend cannot gather: then the first range alone),
  // else a gathered one.
  IoOperation send_of(size_t chunks);
  // A send failed: drops the queue and tells the handler (last: it may destroy this Sender).
  void fail(int negative_errno);
  // A plain send of `size` bytes at `data` (at most 1 GiB: the rest goes in the next send).
  static IoOperation plain_send(char* data, size_t size);
  Chunk* ring() { return heap_ring_ != nullptr ? heap_ring_.get() : &first_; }
  Chunk& front() { return ring()[head_]; }
  Chunk& at(size_t i) { return ring()[(head_ + i) & (capacity_ - 1)]; }
  void pop_front();
  void grow();
  // Copies `chunk` into the room after the last queued chunk's bytes; false if it does not fit.
  bool append_to_tail(const Chunk& chunk);
  // Takes `sent` bytes off the front of the queue.
  void consume(size_t sent);

  detail::SocketState* state_;
  Handler& handler_;
  // The queue, a ring of `capacity_` chunks (ring()): `first_` alone until a second chunk is
  // queued, then `heap_ring_`, freed when the queue empties. The capacity is a power of two,
  // so that a position wraps with a mask rather than a division.
  Chunk first_;
  std::unique_ptr<Chunk[]> heap_ring_;
  size_t capacity_ = 1;
  size_t head_ = 0;
  size_t count_ = 0;
  size_t front_offset_ = 0;  // bytes of the front chunk already sent
  size_t in_flight_chunks_ = 0;  // chunks the send in flight may read, from the front
  std::unique_ptr<SendGather> gather_;  // while a gathered send may be in flight
  size_t queued_bytes_ = 0;
  bool in_flight_ = false;
  bool failed_ = false;
  bool try_sends_ = false;  // the backend sends at once (Reactor::can_try_send)
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_SENDER_H_
