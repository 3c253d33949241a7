// admin_relay.h: one admin connection, relayed between its client's TCP socket and gRPC.
//
// The admin listener (admin_listener.h) hands gRPC one end of a socket pair instead of the
// client's socket, and relays the bytes between the two through an Http2StreamBound
// (http2_stream_bound.h): so one connection never has more calls open in gRPC than the bound,
// even from a client that ignores the server's SETTINGS, and the listener knows exactly when
// a connection ends (gRPC closes its end and tells no one otherwise).
//
//   absl::StatusOr<RelayedConnection::Opened> opened = RelayedConnection::Open(std::move(client), peer, 65);
//   grpc::AddInsecureChannelFromFd(server, opened->grpc_fd);
//   ... each time round a poll(2) loop:
//   opened->connection->Interest(&fds[i], &fds[i + 1]);
//   ... poll ...
//   if (!opened->connection->OnReady(fds[i].revents, fds[i + 1].revents, now)) { /* ended: destroy it */ }
//
// Ends: the client's end of input is passed on as the end of gRPC's once every byte before it
// has gone, but for what the bound still holds then: that is dropped, since the streams it
// waits for may be waiting for those very bytes (gRPC closes a connection at the end of its
// input anyway). gRPC's end (it closed its descriptor) ends the connection once the bytes gRPC
// wrote before it have gone to the client, or after kLinger if the client does not take them;
// an error either way ends it at once. At a shutdown (EndOnceIdle), the client's input also ends
// as soon as gRPC has said GOAWAY and no call is open: gRPC 1.51 would otherwise keep an idle
// connection, and its own shutdown with it, until the client acknowledged the PING sent with the
// GOAWAY, which a client between calls (brrrctl top, a grpcurl channel) does not read. gRPC then
// closes its end, and its last bytes go on to the client as above.
//
// Bytes wait in a buffer of kBufferBytes each way, and the relay reads no more from a side while
// its buffer is full: a client that sends without end while it cannot pass fills its socket and
// then its own, as TCP would with gRPC itself.
//
// Threads: one thread (the listener's). Ownership: owns the client's socket and its end of the
// pair; gRPC owns grpc_fd from the moment it is handed over.
#ifndef BRRR_CONTROL_ADMIN_ADMIN_RELAY_H_
#define BRRR_CONTROL_ADMIN_ADMIN_RELAY_H_

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "control/admin/http2_stream_bound.h"
#include "runtime/unique_fd.h"

namespace brrr::control {

class RelayedConnection {
 public:
  using Clock = std::chrono::steady_clock;
  // Bytes buffered each way: a frame header is 9 and gRPC's frames are at most 16 KiB.
  static constexpr size_t kBufferBytes = 16 * 1024;
  // How long bytes gRPC wrote before it closed its end may wait for a client that does not read.
  static constexpr std::chrono::seconds kLinger{10};

  struct Opened {
    std::unique_ptr<RelayedConnection> connection;
    int grpc_fd;  // the pair's other end, for gRPC (close-on-exec, non-blocking)
  };
  // Relays `client` (a connected, non-blocking socket) to a new socket pair, holding it to
  // `max_streams` open at once. Errors: the socket pair cannot be made (errno's status: out
  // of descriptors, most likely); `client` is closed then.
  static absl::StatusOr<Opened> Open(UniqueFd client, std::string peer, uint32_t max_streams);

  RelayedConnection(const RelayedConnection&) = delete;
  RelayedConnection& operator=(const RelayedConnection&) = delete;

  // Fills the pollfd entries of the client's socket and of the relay's end of the pair.
  void Interest(pollfd* client, pollfd* grpc) const;
  // Moves what it can after poll(2) reported `client_events` and `grpc_events` (0 each when
  // only time passed). False: the connection has ended; destroying it closes both sockets.
  bool OnReady(short client_events, short grpc_events, Clock::time_point now);
  // When the connection ends by itself unless something happens first (nullopt: not by time).
  std::optional<Clock::time_point> deadline() const { return linger_until_; }

  // gRPC has closed its end (its descriptor's number may name another connection's from now on).
  bool grpc_gone() const { return linger_until_.has_value(); }
  // The client's address, for the log.
  const std::string& peer() const { return peer_; }
  const Http2StreamBound& bound() const { return bound_; }
  // Whether the client's bytes began to wait for a stream to end since the last call (each
  // wait is reported once).
  bool TakeStartedHolding();
  // The admin plane shuts down: from now on the client's input ends once gRPC has said GOAWAY
  // and no call is open (see above). OnReady looks, also when called with no events.
  void EndOnceIdle() { end_once_idle_ = true; }
  bool ending_once_idle() const { return end_once_idle_; }

 private:
  // Bytes on their way from one socket to the other: [written, passed) may go, [passed, filled)
  // wait for the bound's judgement.
  struct Pipe {
    std::unique_ptr<uint8_t[]> bytes = std::make_unique<uint8_t[]>(kBufferBytes);
    size_t written = 0;
    size_t passed = 0;
    size_t filled = 0;
    bool source_ended = false;  // its source said end of input
    bool room() const { return filled < kBufferBytes || written > 0; }
    bool to_write() const { return written < passed; }
    bool drained() const { return written == filled; }
    std::span<const uint8_t> unjudged() const { return {bytes.get() + passed, filled - passed}; }
  };

  RelayedConnection(UniqueFd client, UniqueFd grpc, std::string peer, uint32_t max_streams);
  // Reads what `from` has into `pipe`. False on an error (the connection ends).
  static bool Fill(int from, Pipe& pipe);
  // Writes what `pipe` has passed to `to`. False on an error.
  static bool Drain(int to, Pipe& pipe);
  // gRPC has closed its end (or it failed): the client's bytes have nowhere to go, gRPC's last
  // ones get until `now` + kLinger to reach the client.
  void GrpcGone(Clock::time_point now);

  UniqueFd client_;
  UniqueFd grpc_;  // the relay's end of the pair
  std::string peer_;
  Http2StreamBound bound_;
  Pipe to_grpc_;
  Pipe to_client_;
  bool grpc_input_ended_ = false;                  // the client's end has been passed on (shutdown SHUT_WR)
  bool end_once_idle_ = false;                     // EndOnceIdle()
  std::optional<Clock::time_point> linger_until_;  // set once gRPC has closed its end: grpc_gone()
  bool was_holding_ = false;
  bool started_holding_ = false;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_ADMIN_RELAY_H_
