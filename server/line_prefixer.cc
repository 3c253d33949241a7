#include "server/line_prefixer.h"

#include <cstring>

namespace brrr::server {

Chunk LinePrefixer::apply(const Chunk& in) {
  const char* p = in.data();
  const char* end = p + in.size();
  // How many line starts fall inside this chunk.
  size_t starts = 0;
  bool at_start = at_line_start_;
  for (const char* q = p; q < end; ++q) {
    if (at_start) ++starts;
    at_start = *q == '\n';
  }
  Chunk out = Chunk::Heap(in.size() + starts * prefix_.size());
  char* w = out.data();
  for (const char* q = p; q < end; ++q) {
    if (at_line_start_) {
      std::memcpy(w, prefix_.data(), prefix_.size());
      w += prefix_.size();
    }
    *w++ = *q;
    at_line_start_ = *q == '\n';
  }
  out.set_size(static_cast<size_t>(w - out.data()));
  return out;
}

}  // namespace brrr::server
