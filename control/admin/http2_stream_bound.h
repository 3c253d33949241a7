// http2_stream_bound.h: holds the client of one HTTP/2 connection to a number of streams open
// at once, from the first byte on, by reading the frame headers that pass each way (RFC 9113
// section 4.1) and nothing else.
//
// Why: the admin plane's gRPC (1.51) applies SETTINGS_MAX_CONCURRENT_STREAMS only once the
// client has acknowledged the server's SETTINGS. A client that never does can start any number
// of calls, each holding memory (about 12 KB) until its connection closes. The admin listener
// relays each connection (admin_relay.h) through this bound, so that gRPC never sees more
// streams open on one connection than the bound, whatever the client sends.
//
// How: a client's HEADERS frame on a stream id above every one it used opens a stream; the
// server's END_STREAM (on HEADERS or DATA, the end of a gRPC call) or a RST_STREAM either way
// closes it. The server's GOAWAY is noted (the relay ends an idle connection on it when the
// admin plane shuts down: admin_relay.h). When the client's next frame would open a stream past the bound, that frame
// and everything after it wait (PassFromClient passes the bytes before it) until the server has closed one. A delay, as
// a client that follows the SETTINGS would impose on itself; nothing is dropped, so the HPACK state of both ends stays
// whole. The bound counts a stream from its HEADERS, before gRPC has read it, so gRPC's own count never runs ahead of
// it.
//
// A client whose first bytes are not HTTP/2's preface is not tracked: its bytes all pass and
// gRPC closes the connection. Frame bodies are skipped, whatever their length.
//
//   Http2StreamBound bound(65);
//   size_t n = bound.PassFromClient(client_bytes);   // forward client_bytes[0, n) to gRPC, keep the rest
//   size_t m = bound.PassFromServer(server_bytes);   // forward server_bytes[0, m), keep the rest
//
// Both Pass calls keep back only what they cannot yet judge: a frame header not yet whole (at
// most 8 bytes), and on the client's side a held frame. Call them again with what was kept
// back followed by what came since.
//
// Threads: one thread at a time (the relay's).
#ifndef BRRR_CONTROL_ADMIN_HTTP2_STREAM_BOUND_H_
#define BRRR_CONTROL_ADMIN_HTTP2_STREAM_BOUND_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/container/flat_hash_set.h"

namespace brrr::control {

class Http2StreamBound {
 public:
  // `max_open`: streams the client may have open at once (at least 1).
  explicit Http2StreamBound(uint32_t max_open) : max_open_(max_open < 1 ? 1 : max_open) {}

  // How many of `bytes`, the client's next, may go on to the server now: the whole frames and
  // frame bodies among them, up to a frame that would open a stream past the bound or a frame
  // header not yet whole.
  size_t PassFromClient(std::span<const uint8_t> bytes);
  // How many of `bytes`, the server's next, may go on to the client now: all of them but a
  // frame header not yet whole. The streams they end make room for the client's.
  size_t PassFromServer(std::span<const uint8_t> bytes);

  // Streams open now.
  size_t open() const { return open_.size(); }
  // The client's bytes wait for a stream to end (as of the last PassFromClient).
  bool holding() const { return holding_; }
  // The client has acknowledged a SETTINGS frame of the server's (gRPC applies its own bound
  // from then on).
  bool settings_acknowledged() const { return settings_acknowledged_; }
  // The client's first bytes were not HTTP/2's preface: nothing is tracked or held.
  bool untracked() const { return untracked_; }
  // The server has sent a GOAWAY (it shuts down, or closes an idle connection).
  bool server_went_away() const { return server_went_away_; }

 private:
  // One direction's place in its stream of frames.
  struct Reading {
    size_t preface_left;     // bytes of the client's preface still to come (0 for the server)
    uint32_t body_left = 0;  // bytes of the current frame's body still to skip
  };
  struct FrameHeader {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
  };

  // Passes what it may of `bytes` in `reading`'s stream; `admit` judges each whole frame
  // header (false: hold it and what follows).
  template <typename Admit>
  size_t Pass(Reading& reading, std::span<const uint8_t> bytes, Admit admit);
  bool AdmitFromClient(const FrameHeader& frame);
  void SeeFromServer(const FrameHeader& frame);

  const uint32_t max_open_;
  Reading client_{.preface_left = 24};
  Reading server_{.preface_left = 0};
  absl::flat_hash_set<uint32_t> open_;  // at most max_open_
  uint32_t highest_client_stream_ = 0;
  bool holding_ = false;
  bool settings_acknowledged_ = false;
  bool untracked_ = false;
  bool server_went_away_ = false;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_HTTP2_STREAM_BOUND_H_
