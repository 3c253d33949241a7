#include "server/line_prefixer.h"

#include <algorithm>
#include <cstring>

namespace brrr::server {

Chunk LinePrefixer::apply(std::string_view in, size_t max_out, size_t* used) {
  // Two passes, so that the block holds exactly the output: a queue of small answers must
  // not hold a large block each.
  State counted = state_;
  size_t size = run(in, max_out, nullptr, counted, used);
  if (size == 0) return Chunk();
  Chunk out = Chunk::Heap(size);
  run(in, max_out, out.data(), state_, used);
  out.set_size(size);
  return out;
}

size_t LinePrefixer::run(std::string_view in, size_t max_out, char* w, State& s, size_t* used) const {
  size_t pos = 0;
  size_t out = 0;
  while (pos < in.size() && out < max_out) {
    if (s.at_line_start) {
      size_t n = std::min(prefix_.size() - s.prefix_written, max_out - out);
      if (w != nullptr) std::memcpy(w + out, prefix_.data() + s.prefix_written, n);
      out += n;
      s.prefix_written += n;
      if (s.prefix_written < prefix_.size()) break;  // full inside the prefix
      s.at_line_start = false;
      s.prefix_written = 0;
      continue;
    }
    // The rest of this line, newline included, as far as it fits.
    const char* from = in.data() + pos;
    const void* newline = std::memchr(from, '\n', in.size() - pos);
    size_t line = newline != nullptr ? static_cast<size_t>(static_cast<const char*>(newline) - from) + 1
                                     : in.size() - pos;
    size_t n = std::min(line, max_out - out);
    if (w != nullptr) std::memcpy(w + out, from, n);
    out += n;
    pos += n;
    if (newline != nullptr && n == line) s.at_line_start = true;
  }
  *used = pos;
  return out;
}

}  // namespace brrr::server
