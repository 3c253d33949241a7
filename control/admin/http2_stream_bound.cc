#include "control/admin/http2_stream_bound.h"

#include <algorithm>
#include <string_view>

namespace brrr::control {

namespace {

// RFC 9113 section 3.4: what a client sends first.
constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kFrameHeaderBytes = 9;

// Frame types and flags (RFC 9113 section 6).
constexpr uint8_t kData = 0x0;
constexpr uint8_t kHeaders = 0x1;
constexpr uint8_t kRstStream = 0x3;
constexpr uint8_t kSettings = 0x4;
constexpr uint8_t kGoaway = 0x7;
constexpr uint8_t kEndStream = 0x1;  // on DATA and HEADERS
constexpr uint8_t kAck = 0x1;        // on SETTINGS

}  // namespace

template <typename Admit>
size_t Http2StreamBound::Pass(Reading& reading, std::span<const uint8_t> bytes, Admit admit) {
  size_t at = 0;
  while (at < bytes.size() && !untracked_) {
    if (reading.preface_left > 0) {
      const size_t offset = kClientPreface.size() - reading.preface_left;
      const size_t n = std::min(reading.preface_left, bytes.size() - at);
      if (!std::equal(bytes.begin() + at, bytes.begin() + at + n, kClientPreface.begin() + offset)) {
        untracked_ = true;  // not HTTP/2: gRPC closes it; nothing here can be judged
        break;
      }
      reading.preface_left -= n;
      at += n;
    } else if (reading.body_left > 0) {
      const size_t n = std::min<size_t>(reading.body_left, bytes.size() - at);
      reading.body_left -= static_cast<uint32_t>(n);
      at += n;
    } else {
      if (bytes.size() - at < kFrameHeaderBytes) break;  // kept back until it is whole
      const uint8_t* h = bytes.data() + at;
      const FrameHeader frame{
          .length = uint32_t{h[0]} << 16 | uint32_t{h[1]} << 8 | h[2],
          .type = h[3],
          .flags = h[4],
          .stream = (uint32_t{h[5]} << 24 | uint32_t{h[6]} << 16 | uint32_t{h[7]} << 8 | h[8]) & 0x7fffffffu,
      };
      if (!admit(frame)) break;
      reading.body_left = frame.length;
      at += kFrameHeaderBytes;
    }
  }
  return untracked_ ? bytes.size() : at;
}

size_t Http2StreamBound::PassFromClient(std::span<const uint8_t> bytes) {
  holding_ = false;
  return Pass(client_, bytes, [this](const FrameHeader& frame) { return AdmitFromClient(frame); });
}

size_t Http2StreamBound::PassFromServer(std::span<const uint8_t> bytes) {
  return Pass(server_, bytes, [this](const FrameHeader& frame) {
    SeeFromServer(frame);
    return true;
  });
}

bool Http2StreamBound::AdmitFromClient(const FrameHeader& frame) {
  switch (frame.type) {
    case kHeaders:
      // A new stream: client streams are odd and rise (RFC 9113 section 5.1.1). Anything else
      // (trailers on an open stream, a reused or even id) opens nothing here; gRPC judges it.
      if (frame.stream % 2 == 1 && frame.stream > highest_client_stream_) {
        if (open_.size() >= max_open_) {
          holding_ = true;
          return false;
        }
        highest_client_stream_ = frame.stream;
        open_.insert(frame.stream);
      }
      return true;
    case kRstStream:
      open_.erase(frame.stream);
      return true;
    case kSettings:
      if ((frame.flags & kAck) != 0) settings_acknowledged_ = true;
      return true;
    default:
      return true;
  }
}

void Http2StreamBound::SeeFromServer(const FrameHeader& frame) {
  const bool ends = (frame.type == kHeaders || frame.type == kData) && (frame.flags & kEndStream) != 0;
  if (ends || frame.type == kRstStream) open_.erase(frame.stream);
  if (frame.type == kGoaway) server_went_away_ = true;
}

}  // namespace brrr::control
