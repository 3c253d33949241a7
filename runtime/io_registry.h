// io_registry.h: maps I/O completions back to whoever started the operation.
//
// Each operation in flight owns a slot; its user_data is (generation << 32 | slot). When the
// final completion arrives the slot is freed. A handler that goes away first (a coroutine
// frame destroyed while its recv was pending) detaches: the slot stays reserved until the
// backend delivers the final completion, which is then disposed of safely (an accepted
// descriptor is closed, a provided buffer recycled) instead of reaching freed memory.
//
// Threads: loop thread only.
#ifndef BRRR_RUNTIME_IO_REGISTRY_H_
#define BRRR_RUNTIME_IO_REGISTRY_H_

#include <cstdint>
#include <vector>

#include "runtime/reactor.h"

namespace brrr {

class IoCompletionHandler {
 public:
  // Called on the loop thread for every completion of the operation, the final one last.
  virtual void on_io_completion(const Completion& completion) = 0;

 protected:
  ~IoCompletionHandler() = default;
};

class IoRegistry {
 public:
  // Reserves a slot for an operation and returns its user_data.
  uint64_t add(IoCompletionHandler* handler, IoOpcode opcode);

  // Frees the slot of an operation that was never submitted (submit failed).
  void remove(uint64_t user_data);

  // The handler is going away; the operation's final completion will be disposed of.
  void detach(uint64_t user_data);

  // Routes a completion to its handler. `reactor` recycles the buffers of detached ops.
  void dispatch(const Completion& completion, Reactor& reactor);

  // Operations in flight (including detached ones awaiting their final completion).
  size_t in_flight() const { return in_flight_; }

 private:
  struct Slot {
    IoCompletionHandler* handler = nullptr;
    IoOpcode opcode = IoOpcode::kPollReadable;
    uint32_t generation = 0;  // odd while in use
    uint32_t next_free = 0;
  };
  Slot* find(uint64_t user_data);
  void release(uint32_t index);

  static constexpr uint32_t kNoSlot = UINT32_MAX;
  std::vector<Slot> slots_;
  uint32_t free_head_ = kNoSlot;
  size_t in_flight_ = 0;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_IO_REGISTRY_H_
