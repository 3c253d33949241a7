#include "server/held_input.h"

#include <algorithm>
#include <cstring>

namespace brrr::server {

void HeldInput::append(std::string_view bytes) {
  size_ += bytes.size();
  while (!bytes.empty()) {
    if (blocks_.empty() || blocks_.back().size() == blocks_.back().capacity()) {
      blocks_.push_back(Chunk::Heap(block_size_));
    }
    Chunk& last = blocks_.back();
    size_t n = std::min(bytes.size(), last.capacity() - last.size());
    std::memcpy(last.data() + last.size(), bytes.data(), n);
    last.set_size(last.size() + n);
    bytes.remove_prefix(n);
  }
}

std::string_view HeldInput::front() const {
  if (blocks_.empty()) return {};
  const Chunk& first = blocks_.front();
  return std::string_view(first.data() + front_offset_, first.size() - front_offset_);
}

void HeldInput::consume(size_t n) {
  front_offset_ += n;
  size_ -= n;
  if (!blocks_.empty() && front_offset_ == blocks_.front().size()) {
    blocks_.pop_front();
    front_offset_ = 0;
  }
}

Chunk HeldInput::take_front() {
  if (blocks_.empty()) return Chunk();
  Chunk out;
  if (front_offset_ == 0) {
    out = std::move(blocks_.front());
  } else {
    std::string_view rest = front();
    out = Chunk::Heap(rest.size());
    std::memcpy(out.data(), rest.data(), rest.size());
    out.set_size(rest.size());
  }
  size_ -= out.size();
  blocks_.pop_front();
  front_offset_ = 0;
  return out;
}

}  // namespace brrr::server
