#include "control/admin/admin_relay.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace brrr::control {

absl::StatusOr<RelayedConnection::Opened> RelayedConnection::Open(UniqueFd client, std::string peer,
                                                                  uint32_t max_streams) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    return absl::ErrnoToStatus(errno, "admin plane: socketpair for a connection");
  }
  Opened opened{.connection = std::unique_ptr<RelayedConnection>(
                    new RelayedConnection(std::move(client), UniqueFd(pair[0]), std::move(peer), max_streams)),
                .grpc_fd = pair[1]};
  return opened;
}

RelayedConnection::RelayedConnection(UniqueFd client, UniqueFd grpc, std::string peer, uint32_t max_streams)
    : client_(std::move(client)), grpc_(std::move(grpc)), peer_(std::move(peer)), bound_(max_streams) {}

void RelayedConnection::Interest(pollfd* client, pollfd* grpc) const {
  const bool from_client = !grpc_gone() && !to_grpc_.source_ended && to_grpc_.room();
  const bool from_grpc = !to_client_.source_ended && to_client_.room();
  // A client held with its buffer full is not read, so its end of input would go unseen.
  const bool end_of_held_client = !grpc_gone() && !to_grpc_.source_ended && !to_grpc_.room() && bound_.holding();
  client->events = static_cast<short>((from_client ? POLLIN : 0) | (end_of_held_client ? POLLRDHUP : 0) |
                                      (to_client_.to_write() ? POLLOUT : 0));
  grpc->events = static_cast<short>((from_grpc ? POLLIN : 0) | (!grpc_gone() && to_grpc_.to_write() ? POLLOUT : 0));
  // Both are watched even with nothing wanted of them, for their hang-up: a client's reset ends
  // the connection, and gRPC's close starts the linger although its last bytes cannot be read
  // while the client does not read. gRPC's end is left out once it has hung up and nothing is
  // wanted of it, so that the hang-up is not reported again and again.
  client->fd = client_.get();
  grpc->fd = grpc_gone() && grpc->events == 0 ? -1 : grpc_.get();
  client->revents = grpc->revents = 0;
}

bool RelayedConnection::OnReady(short client_events, short grpc_events, Clock::time_point now) {
  // The client reset the connection, or it is closed both ways.
  if ((client_events & (POLLERR | POLLHUP)) != 0) return false;
  if ((client_events & POLLIN) != 0 && !Fill(client_.get(), to_grpc_)) return false;
  // A held client with its buffer full has ended its input: what it sent is dropped below.
  if ((client_events & POLLRDHUP) != 0 && !to_grpc_.room()) to_grpc_.source_ended = true;
  if ((grpc_events & (POLLIN | POLLHUP | POLLERR)) != 0 && !Fill(grpc_.get(), to_client_)) {
    to_client_.source_ended = true;  // gRPC's end failed: what was read still goes to the client
  }
  if (to_client_.source_ended || (grpc_events & (POLLHUP | POLLERR)) != 0) GrpcGone(now);

  to_client_.passed += bound_.PassFromServer(to_client_.unjudged());
  if (to_client_.source_ended) to_client_.passed = to_client_.filled;  // a last header that never became whole
  if (!grpc_gone()) {
    to_grpc_.passed += bound_.PassFromClient(to_grpc_.unjudged());
    // Shutting down, with no call open after gRPC's GOAWAY: what the client sends from now on
    // could only start calls that gRPC refuses, and its end of input is what closes the connection.
    if (end_once_idle_ && bound_.server_went_away() && bound_.open() == 0) to_grpc_.source_ended = true;
    // The client will send nothing more. What the bound still holds would wait for streams that
    // may be waiting for those very bytes, for ever, and the connection with them: it is dropped
    // (with a last frame header that never became whole), and the end passed on. gRPC closes
    // the connection at the end of its input, which it would have done anyway.
    if (to_grpc_.source_ended) to_grpc_.filled = to_grpc_.passed;
    if (!Drain(grpc_.get(), to_grpc_)) {
      GrpcGone(now);
    } else if (to_grpc_.source_ended && to_grpc_.drained() && !grpc_input_ended_) {
      ::shutdown(grpc_.get(), SHUT_WR);  // the client's end of input, passed on
      grpc_input_ended_ = true;
    }
  }
  if (!Drain(client_.get(), to_client_)) return false;

  const bool holding = !grpc_gone() && bound_.holding();
  if (holding && !was_holding_) started_holding_ = true;
  was_holding_ = holding;
  if (grpc_gone() && to_client_.source_ended && to_client_.drained()) return false;
  return !(grpc_gone() && now >= *linger_until_);
}

bool RelayedConnection::TakeStartedHolding() { return std::exchange(started_holding_, false); }

void RelayedConnection::GrpcGone(Clock::time_point now) {
  if (grpc_gone()) return;
  linger_until_ = now + kLinger;
  to_grpc_.written = to_grpc_.passed = to_grpc_.filled = 0;  // for a server that is gone
}

bool RelayedConnection::Fill(int from, Pipe& pipe) {
  if (pipe.filled == kBufferBytes && pipe.written > 0) {
    std::memmove(pipe.bytes.get(), pipe.bytes.get() + pipe.written, pipe.filled - pipe.written);
    pipe.passed -= pipe.written;
    pipe.filled -= pipe.written;
    pipe.written = 0;
  }
  if (pipe.filled == kBufferBytes || pipe.source_ended) return true;
  ssize_t n = ::recv(from, pipe.bytes.get() + pipe.filled, kBufferBytes - pipe.filled, MSG_DONTWAIT);
  if (n > 0) {
    pipe.filled += static_cast<size_t>(n);
  } else if (n == 0) {
    pipe.source_ended = true;
  } else if (errno != EAGAIN && errno != EINTR) {
    return false;
  }
  return true;
}

bool RelayedConnection::Drain(int to, Pipe& pipe) {
  while (pipe.to_write()) {
    ssize_t n = ::send(to, pipe.bytes.get() + pipe.written, pipe.passed - pipe.written, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    pipe.written += static_cast<size_t>(n);
  }
  if (pipe.passed == 0) return true;
  // All that passed has gone: what waits moves to the front.
  std::memmove(pipe.bytes.get(), pipe.bytes.get() + pipe.passed, pipe.filled - pipe.passed);
  pipe.filled -= pipe.passed;
  pipe.written = pipe.passed = 0;
  return true;
}

}  // namespace brrr::control
