#include "runtime/io_registry.h"
#include "runtime/hot_path.h"

#include <unistd.h>

namespace brrr {

BRRR_HOT_PATH uint64_t IoRegistry::add(IoCompletionHandler* handler, IoOpcode opcode) {
  uint32_t index;
  if (free_head_ != kNoSlot) {
    index = free_head_;
    free_head_ = slots_[index].next_free;
  } else {
    slots_.emplace_back();
    index = static_cast<uint32_t>(slots_.size() - 1);
  }
  Slot& s = slots_[index];
  ++s.generation;  // odd: in use
  s.handler = handler;
  s.opcode = opcode;
  ++in_flight_;
  return (static_cast<uint64_t>(s.generation) << 32) | index;
}

IoRegistry::Slot* IoRegistry::find(uint64_t user_data) {
  uint32_t index = static_cast<uint32_t>(user_data);
  uint32_t generation = static_cast<uint32_t>(user_data >> 32);
  if (index >= slots_.size() || slots_[index].generation != generation || (generation & 1) == 0) {
    return nullptr;
  }
  return &slots_[index];
}

void IoRegistry::release(uint32_t index) {
  Slot& s = slots_[index];
  ++s.generation;  // even: free
  s.handler = nullptr;
  s.next_free = free_head_;
  free_head_ = index;
  --in_flight_;
}

void IoRegistry::remove(uint64_t user_data) {
  if (find(user_data) != nullptr) release(static_cast<uint32_t>(user_data));
}

void IoRegistry::detach(uint64_t user_data) {
  if (Slot* s = find(user_data)) s->handler = nullptr;
}

BRRR_HOT_PATH void IoRegistry::dispatch(const Completion& c, Reactor& reactor) {
  Slot* s = find(c.user_data);
  if (s == nullptr) return;  // not ours: a backend bug, ignored rather than trusted
  IoCompletionHandler* handler = s->handler;
  IoOpcode opcode = s->opcode;
  if (!c.more()) release(static_cast<uint32_t>(c.user_data));
  if (handler != nullptr) {
    handler->on_io_completion(c);
    return;
  }
  // Nobody wants this result any more: release what it carries.
  if (c.has_buffer()) reactor.recycle_buffer(c.buffer_id);
  if (opcode == IoOpcode::kAccept && c.result >= 0) ::close(c.result);
}

}  // namespace brrr
