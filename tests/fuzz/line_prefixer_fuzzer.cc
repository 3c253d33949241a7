// LinePrefixer against a byte-by-byte reference, for any prefix, any way the input arrives in
// pieces and any run of output limits (0 and SIZE_MAX included), held or drained as a
// connection would. After every call: the block is no larger than the limit and holds exactly
// its output; the output so far covers the reference of the input taken and runs ahead of it
// by at most the next line's prefix; with input pending and room, it makes progress. At the
// end the whole output is the reference.
//
// Input: [prefix length L][L prefix bytes][flags: bit 0 = drain each piece]
//        [N: limits, 1 + N % 8][N limit bytes: 0-249 as is, 250-255 large]
//        [K: pieces - 1, K % 16][K piece lengths, a byte each][the stream: the rest]
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "server/line_prefixer.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/testing/prefixed_lines.h"

namespace brrr::fuzz {
namespace {

size_t LimitOf(uint8_t b) {
  static constexpr size_t kLarge[] = {256, 4096, 65536, size_t{1} << 20, SIZE_MAX / 2, SIZE_MAX};
  return b < 250 ? b : kLarge[b - 250];
}

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "line_prefixer_fuzzer: %s\n", what);
  std::abort();
}

}  // namespace

int OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const std::string prefix(in.Bytes(in.Byte()));
  const bool drain_each = (in.Byte() & 1) != 0;
  std::vector<size_t> limits(1 + in.Byte() % 8);
  size_t smallest = SIZE_MAX;
  for (size_t& limit : limits) {
    limit = LimitOf(in.Byte());
    if (limit > 0) smallest = std::min(smallest, limit);
  }
  if (smallest == SIZE_MAX) limits.push_back(smallest = 1);  // some room, or nothing ever moves
  std::vector<size_t> lengths(in.Byte() % 16);
  for (size_t& length : lengths) length = in.Byte();
  const std::string_view stream = in.Rest();
  std::vector<std::string_view> pieces;
  std::string_view left = stream;
  for (size_t length : lengths) {
    pieces.push_back(left.substr(0, length));
    left.remove_prefix(pieces.back().size());
  }
  pieces.push_back(left);

  const std::string want = testing::PrefixedLines(prefix, stream);
  // Bounded work per input: limits of a few bytes over a long output make one call per few bytes.
  if (want.size() / smallest > 10'000) return 0;

  server::LinePrefixer p(prefix);
  std::string out;
  std::string pending;
  size_t taken = 0;             // stream bytes the prefixer has used
  size_t reference_taken = 0;   // testing::PrefixedLines(prefix, stream[0, taken)).size()
  bool next_starts_line = true;
  size_t turn = 0;
  // One call; true if it wrote something.
  auto call = [&] {
    const size_t limit = limits[turn++ % limits.size()];
    size_t used = 12345;
    Chunk c = p.apply(pending, limit, &used);
    Require(c.size() <= limit, "a block larger than the limit");
    Require(used <= pending.size(), "used more input than there was");
    if (limit == 0) Require(c.size() == 0 && used == 0, "output or input taken without room");
    if (limit > 0 && !pending.empty()) Require(c.size() > 0, "no progress with input pending and room");
    if (c.size() > 0) Require(c.capacity() == c.size(), "a block larger than its output");
    Require(want.compare(out.size(), c.size(), c.data(), c.size()) == 0, "output differs from the reference");
    out.append(c.data(), c.size());
    for (size_t i = 0; i < used; ++i) {
      reference_taken += (next_starts_line ? prefix.size() : 0) + 1;
      next_starts_line = pending[i] == '\n';
    }
    taken += used;
    pending.erase(0, used);
    // It writes a line's prefix before taking the line's first byte, never more than that ahead.
    Require(out.size() >= reference_taken, "output behind the input it took");
    Require(out.size() <= reference_taken + (next_starts_line && !pending.empty() ? prefix.size() : 0),
            "output ahead of the input it took by more than the next line's prefix");
    return c.size() > 0 || limit == 0;
  };
  for (std::string_view piece : pieces) {
    pending += piece;
    if (drain_each) {
      while (!pending.empty() && call()) {
      }
    } else if (!pending.empty()) {
      call();
    }
  }
  while (!pending.empty() && call()) {
  }
  Require(taken == stream.size(), "input left over");
  Require(out == want, "the output is not the reference");
  return 0;
}

}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return brrr::fuzz::OneInput(data, size); }
