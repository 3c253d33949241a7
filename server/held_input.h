// held_input.h: bytes a connection has received but not queued to send yet.
//
// A connection whose send queue is full keeps what still arrives (and what its LinePrefixer
// has not transformed yet) here, until the queue has room (server/connection.h). The bytes
// are copied into heap blocks of `block_size` bytes, filled one after another: held input
// pins none of the loop's shared receive buffers, and takes at most its size plus one
// partly filled block.
//
//   HeldInput held(16384);
//   held.append(std::string_view(chunk.data(), chunk.size()));  // the chunk can go now
//   sender.push(held.take_front());                              // as it is (no copy), or
//   sender.push(prefixer.apply(held.front(), room, &used));      // transformed, then
//   held.consume(used);
//
// Threads: a value owned by one connection.
#ifndef BRRR_SERVER_HELD_INPUT_H_
#define BRRR_SERVER_HELD_INPUT_H_

#include <cstddef>
#include <deque>
#include <string_view>

#include "runtime/buffer_pool.h"

namespace brrr::server {

class HeldInput {
 public:
  explicit HeldInput(size_t block_size) : block_size_(block_size) {}

  // Copies `bytes` in after what is held.
  void append(std::string_view bytes);

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  // The first contiguous run of held bytes (empty if nothing is held).
  std::string_view front() const;
  // Drops `n` bytes from the front; n <= front().size().
  void consume(size_t n);
  // Takes the first run of held bytes: the block itself if none of it was consumed (no copy),
  // else a block of exactly what is left of it. At most block_size bytes.
  Chunk take_front();

 private:
  size_t block_size_;
  std::deque<Chunk> blocks_;  // heap blocks; all but the last one full
  size_t front_offset_ = 0;   // bytes of the first block already consumed
  size_t size_ = 0;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_HELD_INPUT_H_
