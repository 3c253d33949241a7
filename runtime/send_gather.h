// send_gather.h: the memory of one gathered send (IoOpcode::kSendMsg), which the backend reads
// until the send's final completion.
//
//   auto gather = std::make_unique<SendGather>();
//   gather->entries[0] = {a.data(), a.size()};
//   gather->entries[1] = {b.data(), b.size()};
//   IoOperation op{.opcode = IoOpcode::kSendMsg, .buf = gather->use(2)};
//
// Threads: loop thread. Ownership: a Sender owns it while sending; if the Sender goes away
// with the send in flight, the socket keeps it (OrphanedSend) until the send has finished.
#ifndef BRRR_RUNTIME_SEND_GATHER_H_
#define BRRR_RUNTIME_SEND_GATHER_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "runtime/buffer_pool.h"

namespace brrr {

struct SendGather {
  // Most chunks one gathered send takes (the iovec array is 512 bytes).
  static constexpr size_t kMaxEntries = 32;

  // Appends the bytes [data, data + size) to the first `count` of `entries` (room for
  // kMaxEntries), as part of the last one when they start where it ends: chunks that lie back
  // to back in memory (the pool buffers one receive filled usually do) become one range.
  // Returns the new count.
  static size_t append_joined(iovec* entries, size_t count, char* data, size_t size) {
    if (count > 0 && static_cast<char*>(entries[count - 1].iov_base) + entries[count - 1].iov_len == data) {
      entries[count - 1].iov_len += size;
      return count;
    }
    entries[count] = iovec{data, size};
    return count + 1;
  }

  // Points the header at the first `count` entries and returns it.
  msghdr* use(size_t count) {
    header = msghdr{};
    header.msg_iov = entries;
    header.msg_iovlen = count;
    return &header;
  }

  msghdr header{};
  iovec entries[kMaxEntries];
};

// What a Sender leaves to its socket when it goes away with a send in flight: the chunks being
// sent and, for a gathered send, the header naming them.
struct OrphanedSend {
  std::vector<Chunk> chunks;
  std::unique_ptr<SendGather> gather;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_SEND_GATHER_H_
