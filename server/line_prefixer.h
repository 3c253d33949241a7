// line_prefixer.h: the tutorial's "Echo : ..." reply, binary-safe, streaming and bounded.
//
// Puts `prefix` before every line of the byte stream (a line ends with '\n'). It buffers
// nothing: it remembers only whether the next byte starts a line and how much of that line's
// prefix it has written, so a line split across reads gets one prefix, and bytes that are not
// UTF-8 (or contain NULs) pass through as is.
//
// Each call writes at most `max_out` bytes and says how much input it took: the caller
// transforms only as much as it has room for and keeps the rest of its input for later (a
// connection's send queue stays bounded however long the prefix is; server/connection.h).
// The output may end inside a prefix; the next call writes the rest of it first. A prefix is
// written only once the byte that starts its line is there.
//
//   LinePrefixer p("Echo : ");
//   size_t used = 0;
//   Chunk out = p.apply("a\nb", 100, &used);  // "Echo : a\nEcho : b", used 3
//   out = p.apply("c\nd", 4, &used);          // "c\nEc", used 2 (then "ho : d"...)
//
// Threads: a value owned by one connection.
#ifndef BRRR_SERVER_LINE_PREFIXER_H_
#define BRRR_SERVER_LINE_PREFIXER_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "runtime/buffer_pool.h"

namespace brrr::server {

class LinePrefixer {
 public:
  explicit LinePrefixer(std::string prefix) : prefix_(std::move(prefix)) {}

  // Transforms input from the front of `in` into at most `max_out` bytes, returned in a heap
  // block of exactly that size (empty when there is nothing to write); `*used` is how many
  // bytes of `in` it took. With input left and max_out >= 1 it always writes something.
  Chunk apply(std::string_view in, size_t max_out, size_t* used);

 private:
  struct State {
    bool at_line_start = true;  // the next input byte starts a line
    size_t prefix_written = 0;  // of that line's prefix, while at_line_start
  };
  // The transform: advances `s` over `in` until `max_out` bytes are out or the input is
  // used up, writing to `w` unless it is null. Returns the bytes out; sets `*used`.
  size_t run(std::string_view in, size_t max_out, char* w, State& s, size_t* used) const;

  std::string prefix_;
  State state_;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_LINE_PREFIXER_H_
