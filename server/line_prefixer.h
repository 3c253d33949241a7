// line_prefixer.h: the tutorial's "Echo : ..." reply, binary-safe and streaming.
//
// Puts `prefix` before every line of the byte stream (a line ends with '\n'). Nothing is
// buffered: it only remembers whether the next byte starts a line, so a line split across
// reads gets one prefix, and bytes that are not UTF-8 (or contain NULs) pass through as is.
//
//   LinePrefixer p("Echo : ");
//   Chunk out = p.apply(in);   // "a\nb" -> "Echo : a\nEcho : b"; then "c\n" -> "c\n"
//
// Threads: a value owned by one connection.
#ifndef BRRR_SERVER_LINE_PREFIXER_H_
#define BRRR_SERVER_LINE_PREFIXER_H_

#include <string>

#include "runtime/buffer_pool.h"

namespace brrr::server {

class LinePrefixer {
 public:
  explicit LinePrefixer(std::string prefix) : prefix_(std::move(prefix)) {}

  // The chunk's bytes with the prefix inserted at every line start.
  Chunk apply(const Chunk& in);

 private:
  std::string prefix_;
  bool at_line_start_ = true;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_LINE_PREFIXER_H_
