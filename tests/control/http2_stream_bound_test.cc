// Http2StreamBound: which of a client's bytes pass, frame by frame, and which wait for a stream
// to end; split anywhere, the same bytes pass.
#include "control/admin/http2_stream_bound.h"

#include <cstdint>
#include <span>
#include <string>

#include "gtest/gtest.h"
#include "tests/control/http2_frames.h"

namespace brrr::control {
namespace {

using testing::H2CallHeaders;
using testing::H2EmptyRequest;
using testing::H2Frame;
using testing::H2Preface;
using testing::kH2Ack;
using testing::kH2Data;
using testing::kH2EndStream;
using testing::kH2Headers;
using testing::kH2RstStream;
using testing::kH2Settings;

std::span<const uint8_t> Bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

std::string ClientStart() { return H2Preface() + H2Frame(kH2Settings, 0, 0, ""); }

// The server's end of a call: trailers with END_STREAM.
std::string Trailers(uint32_t stream) { return H2Frame(kH2Headers, kH2EndStream | 0x4, stream, "x"); }

TEST(Http2StreamBoundTest, EverythingPassesWithinTheBound) {
  Http2StreamBound bound(2);
  const std::string client = ClientStart() + H2CallHeaders(1) + H2EmptyRequest(1) + H2CallHeaders(3);
  EXPECT_EQ(bound.PassFromClient(Bytes(client)), client.size());
  EXPECT_EQ(bound.open(), 2u);
  EXPECT_FALSE(bound.holding());
  EXPECT_FALSE(bound.untracked());
}

TEST(Http2StreamBoundTest, TheCallPastTheBoundWaitsUntilOneEnds) {
  Http2StreamBound bound(2);
  const std::string first = ClientStart() + H2CallHeaders(1) + H2EmptyRequest(1) + H2CallHeaders(3);
  const std::string rest = H2CallHeaders(5) + H2EmptyRequest(5) + H2EmptyRequest(3);
  EXPECT_EQ(bound.PassFromClient(Bytes(first + rest)), first.size());
  EXPECT_TRUE(bound.holding());
  EXPECT_EQ(bound.open(), 2u);
  // Asked again with nothing new, it still holds them.
  EXPECT_EQ(bound.PassFromClient(Bytes(rest)), 0u);
  EXPECT_TRUE(bound.holding());
  // The server's response headers end nothing; its trailers do.
  const std::string response = H2Frame(kH2Headers, 0x4, 1, "h") + H2Frame(kH2Data, 0, 1, "12345");
  EXPECT_EQ(bound.PassFromServer(Bytes(response)), response.size());
  EXPECT_EQ(bound.PassFromClient(Bytes(rest)), 0u);
  EXPECT_EQ(bound.PassFromServer(Bytes(Trailers(1))), Trailers(1).size());
  EXPECT_EQ(bound.open(), 1u);
  EXPECT_EQ(bound.PassFromClient(Bytes(rest)), rest.size());
  EXPECT_FALSE(bound.holding());
  EXPECT_EQ(bound.open(), 2u);
}

TEST(Http2StreamBoundTest, AResetEitherWayEndsAStream) {
  Http2StreamBound bound(1);
  const std::string start = ClientStart() + H2CallHeaders(1);
  EXPECT_EQ(bound.PassFromClient(Bytes(start)), start.size());
  EXPECT_EQ(bound.PassFromClient(Bytes(H2CallHeaders(3))), 0u);
  const std::string client_reset = H2Frame(kH2RstStream, 0, 1, std::string(4, '\x08'));  // CANCEL
  EXPECT_EQ(bound.PassFromClient(Bytes(client_reset)), client_reset.size());
  EXPECT_EQ(bound.open(), 0u);
  EXPECT_EQ(bound.PassFromClient(Bytes(H2CallHeaders(3))), H2CallHeaders(3).size());
  EXPECT_EQ(bound.PassFromClient(Bytes(H2CallHeaders(5))), 0u);
  const std::string server_reset = H2Frame(kH2RstStream, 0, 3, std::string(4, '\x07'));  // REFUSED_STREAM
  EXPECT_EQ(bound.PassFromServer(Bytes(server_reset)), server_reset.size());
  EXPECT_EQ(bound.PassFromClient(Bytes(H2CallHeaders(5))), H2CallHeaders(5).size());
}

// Trailers from the client on an open stream, a stream id used before, or an even one: none
// opens a stream here (gRPC judges them), so none waits.
TEST(Http2StreamBoundTest, OnlyAHeadersFrameOnANewOddStreamOpensOne) {
  Http2StreamBound bound(1);
  const std::string client = ClientStart() + H2CallHeaders(3) + H2Frame(kH2Headers, kH2EndStream | 0x4, 3, "t") +
                             H2CallHeaders(1) + H2CallHeaders(2) + H2CallHeaders(3);
  EXPECT_EQ(bound.PassFromClient(Bytes(client)), client.size());
  EXPECT_EQ(bound.open(), 1u);
  EXPECT_EQ(bound.PassFromClient(Bytes(H2CallHeaders(5))), 0u);
}

// A frame's body is skipped whatever it holds (here what looks like HEADERS frames), and a
// frame header passes only once it is whole.
TEST(Http2StreamBoundTest, BodiesAreSkippedAndHeadersWaitUntilWhole) {
  Http2StreamBound bound(1);
  std::string lookalike;
  for (uint32_t stream = 11; stream < 200; stream += 2) lookalike += H2CallHeaders(stream);
  const std::string client = ClientStart() + H2CallHeaders(1) + H2Frame(kH2Data, 0, 1, lookalike);
  EXPECT_EQ(bound.PassFromClient(Bytes(client)), client.size());
  EXPECT_EQ(bound.open(), 1u);
  const std::string next = H2CallHeaders(3);
  EXPECT_EQ(bound.PassFromClient(Bytes(next.substr(0, 8))), 0u);
  EXPECT_FALSE(bound.holding());  // not judged yet
  EXPECT_EQ(bound.PassFromClient(Bytes(next.substr(0, 9))), 0u);
  EXPECT_TRUE(bound.holding());
}

// However the bytes are split (here one at a time, as a relay that keeps back what did not
// pass would feed them), the same pass and the same wait.
TEST(Http2StreamBoundTest, SplitAnywhereTheSameBytesPass) {
  const std::string client = ClientStart() + H2CallHeaders(1) + H2EmptyRequest(1) + H2CallHeaders(3) +
                             H2CallHeaders(5) + H2Frame(kH2Settings, kH2Ack, 0, "") + H2EmptyRequest(5);
  const std::string server = H2Frame(kH2Settings, 0, 0, "") + Trailers(1) + Trailers(3);
  for (size_t split_server_at : {size_t{0}, size_t{5}, server.size()}) {
    Http2StreamBound whole(2);
    const size_t whole_passed = whole.PassFromClient(Bytes(client));

    Http2StreamBound bytewise(2);
    std::string kept;
    size_t passed = 0;
    for (char c : client) {
      kept += c;
      const size_t n = bytewise.PassFromClient(Bytes(kept));
      passed += n;
      kept.erase(0, n);
    }
    EXPECT_EQ(passed, whole_passed);
    EXPECT_EQ(bytewise.open(), whole.open());
    EXPECT_TRUE(bytewise.holding());
    EXPECT_FALSE(bytewise.settings_acknowledged());  // the ACK comes after the held frame

    std::string server_kept;
    for (size_t at = 0; at < server.size(); at += (split_server_at == 0 ? 1 : split_server_at)) {
      server_kept += server.substr(at, split_server_at == 0 ? 1 : split_server_at);
      server_kept.erase(0, bytewise.PassFromServer(Bytes(server_kept)));
    }
    EXPECT_TRUE(server_kept.empty());
    EXPECT_EQ(bytewise.open(), 0u);
    EXPECT_EQ(bytewise.PassFromClient(Bytes(kept)), kept.size());
    EXPECT_TRUE(bytewise.settings_acknowledged());
    EXPECT_EQ(bytewise.open(), 1u);
  }
}

// A client that does not speak HTTP/2 is not judged: gRPC closes the connection.
TEST(Http2StreamBoundTest, WhatIsNotHttp2PassesUntracked) {
  Http2StreamBound bound(1);
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + H2CallHeaders(1) + H2CallHeaders(3);
  EXPECT_EQ(bound.PassFromClient(Bytes(request)), request.size());
  EXPECT_TRUE(bound.untracked());
  EXPECT_EQ(bound.open(), 0u);
  EXPECT_EQ(bound.PassFromClient(Bytes(H2CallHeaders(5))), H2CallHeaders(5).size());
}

// The preface may come in pieces; a wrong byte anywhere in it is caught.
TEST(Http2StreamBoundTest, ThePrefaceIsCheckedAcrossPieces) {
  Http2StreamBound good(1);
  const std::string preface = H2Preface();
  EXPECT_EQ(good.PassFromClient(Bytes(preface.substr(0, 10))), 10u);
  EXPECT_EQ(good.PassFromClient(Bytes(preface.substr(10) + H2CallHeaders(1) + H2CallHeaders(3))),
            preface.size() - 10 + H2CallHeaders(1).size());
  EXPECT_FALSE(good.untracked());

  Http2StreamBound bad(1);
  EXPECT_EQ(bad.PassFromClient(Bytes(preface.substr(0, 10))), 10u);
  std::string wrong = preface.substr(10);
  wrong[3] = 'X';
  EXPECT_EQ(bad.PassFromClient(Bytes(wrong)), wrong.size());
  EXPECT_TRUE(bad.untracked());
}

}  // namespace
}  // namespace brrr::control
