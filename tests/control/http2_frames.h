// http2_frames.h: HTTP/2 frames written and read by hand (RFC 9113), for tests that speak to the
// admin plane below gRPC: what a client that ignores the rules sends, and what the server says.
// Header-only, test-only.
#ifndef BRRR_TESTS_CONTROL_HTTP2_FRAMES_H_
#define BRRR_TESTS_CONTROL_HTTP2_FRAMES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace brrr::testing {

inline constexpr uint8_t kH2Data = 0x0;
inline constexpr uint8_t kH2Headers = 0x1;
inline constexpr uint8_t kH2RstStream = 0x3;
inline constexpr uint8_t kH2Settings = 0x4;
inline constexpr uint8_t kH2Goaway = 0x7;
inline constexpr uint8_t kH2EndStream = 0x1;
inline constexpr uint8_t kH2Ack = 0x1;
inline constexpr uint8_t kH2EndHeaders = 0x4;

// What a client sends first (RFC 9113 section 3.4).
inline std::string H2Preface() { return "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"; }

// A frame: its 9-byte header and `body`.
inline std::string H2Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& body) {
  std::string frame;
  const uint32_t length = static_cast<uint32_t>(body.size());
  for (int shift : {16, 8, 0}) frame += static_cast<char>((length >> shift) & 0xff);
  frame += static_cast<char>(type);
  frame += static_cast<char>(flags);
  for (int shift : {24, 16, 8, 0}) frame += static_cast<char>((stream >> shift) & 0xff);
  return frame + body;
}

// The HEADERS of a call to `path` on stream `stream` (odd): HPACK literal fields, not indexed,
// with new names (RFC 7541 section 6.2.2).
inline std::string H2CallHeaders(uint32_t stream, const std::string& path = "/brrr.admin.v1.Admin/GetStats") {
  std::string fields;
  for (const auto& [name, value] :
       std::vector<std::pair<std::string, std::string>>{{":method", "POST"},
                                                        {":scheme", "http"},
                                                        {":path", path},
                                                        {":authority", "127.0.0.1"},
                                                        {"content-type", "application/grpc"},
                                                        {"te", "trailers"}}) {
    fields += '\0';
    fields += static_cast<char>(name.size());
    fields += name;
    fields += static_cast<char>(value.size());
    fields += value;
  }
  return H2Frame(kH2Headers, kH2EndHeaders, stream, fields);
}

// The request of a unary call whose message is empty, and the end of the client's half.
inline std::string H2EmptyRequest(uint32_t stream) {
  return H2Frame(kH2Data, kH2EndStream, stream, std::string(5, '\0'));  // gRPC: not compressed, length 0
}

// The frames in a byte stream from the server, as they complete.
class H2FrameReader {
 public:
  struct Header {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
    std::string body;
  };
  // Appends `bytes` and returns the frames now whole.
  std::vector<Header> Add(const std::string& bytes) {
    pending_ += bytes;
    std::vector<Header> frames;
    while (pending_.size() >= 9) {
      const auto* b = reinterpret_cast<const uint8_t*>(pending_.data());
      Header h{.length = uint32_t{b[0]} << 16 | uint32_t{b[1]} << 8 | b[2],
               .type = b[3],
               .flags = b[4],
               .stream = (uint32_t{b[5]} << 24 | uint32_t{b[6]} << 16 | uint32_t{b[7]} << 8 | b[8]) & 0x7fffffffu};
      if (pending_.size() < 9 + h.length) break;
      h.body = pending_.substr(9, h.length);
      pending_.erase(0, 9 + h.length);
      frames.push_back(h);
    }
    return frames;
  }

 private:
  std::string pending_;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_CONTROL_HTTP2_FRAMES_H_
