// Http2StreamBound (control/admin/http2_stream_bound.h), the admin relay's reading of the HTTP/2
// frame headers that pass each way, for any bytes from either side in any order and pieces,
// fed as the relay feeds it (what did not pass is kept and offered again in front of what
// comes next). Checked: never more streams open than the bound; only a whole frame header is
// kept back (less than 9 bytes) unless the bound holds a frame (then at least its 9), and
// nothing once untracked; the server's bytes always pass but for a header not yet whole; and
// the same bytes fed one at a time pass the same, leave the same streams open and hold alike.
//
// Input: [bound: 1 byte, % 8 + 1] then repeated [side and length: 1 byte; bit 0: 0 client, 1
//   server; bits 1-7: the length][bytes]
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "control/admin/http2_stream_bound.h"
#include "tests/fuzz/fuzz_input.h"

namespace brrr::fuzz {
namespace {

using control::Http2StreamBound;

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "http2_stream_bound_fuzzer: %s\n", what);
  std::abort();
}

std::span<const uint8_t> Bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// One side of one bound, fed as the relay feeds it.
struct Feed {
  std::string kept;
  size_t passed = 0;
  void Offer(std::string_view bytes, bool client, Http2StreamBound& bound) {
    kept.append(bytes);
    const size_t n = client ? bound.PassFromClient(Bytes(kept)) : bound.PassFromServer(Bytes(kept));
    Require(n <= kept.size(), "passed more bytes than it was offered");
    passed += n;
    kept.erase(0, n);
  }
};

}  // namespace
}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace brrr::fuzz;
  FuzzInput in(data, size);
  const uint32_t max_open = in.Byte() % 8 + 1;
  Http2StreamBound piecewise(max_open);
  Http2StreamBound bytewise(max_open);
  Feed piecewise_client, piecewise_server, bytewise_client, bytewise_server;
  while (!in.empty()) {
    const uint8_t head = in.Byte();
    const bool client = (head & 1) == 0;
    const std::string_view bytes = in.Bytes(head >> 1);
    piecewise_client.Offer("", true, piecewise);  // as the relay does after each round
    (client ? piecewise_client : piecewise_server).Offer(bytes, client, piecewise);
    if (client) piecewise_client.Offer("", true, piecewise);
    bytewise_client.Offer("", true, bytewise);
    Feed& bytewise_side = client ? bytewise_client : bytewise_server;
    bytewise_side.Offer("", client, bytewise);  // what it kept, as an empty piece offers it
    for (char c : bytes) bytewise_side.Offer(std::string_view(&c, 1), client, bytewise);

    for (const auto* b : {&piecewise, &bytewise}) Require(b->open() <= max_open, "more streams open than the bound");
    Require(piecewise_server.kept.size() < 9, "the server's bytes were held");
    if (piecewise.untracked()) {
      Require(piecewise_client.kept.empty(), "bytes kept back from an untracked client");
    } else if (piecewise.holding()) {
      Require(piecewise_client.kept.size() >= 9, "held without a whole frame header");
    } else {
      Require(piecewise_client.kept.size() < 9, "kept back more than a frame header without holding");
    }
    Require(piecewise_client.passed == bytewise_client.passed, "the client's bytes passed differently byte by byte");
    Require(piecewise_server.passed == bytewise_server.passed, "the server's bytes passed differently byte by byte");
    Require(piecewise.open() == bytewise.open(), "other streams open byte by byte");
    Require(piecewise.holding() == bytewise.holding(), "held differently byte by byte");
    Require(piecewise.untracked() == bytewise.untracked(), "tracked differently byte by byte");
  }
  return 0;
}
