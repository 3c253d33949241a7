// take_over.h: the new side of a hand-over (brrr-echo --take_over=PATH): connect to a running
// brrr-echo's hand-over socket, receive its listening sockets (checked: see
// server/listener_handover.h), start serving on them, then commit.
//
//   auto taking = TakeOver::Connect("/run/brrr/echo.sock");   // nothing changes for the old one yet
//   options.adopted_listeners = taking->TakeEchoListeners();  // EchoServer::Create adopts them
//   ... start the server (it accepts on the sockets alongside the old process) ...
//   absl::Status done = taking->Commit();   // TAKEN, then RELEASED: the old one stops accepting
//   // or taking->Decline("why"): the old one goes on serving
//
// Until Commit returns OK the old process serves as before: if anything fails, the new one
// declines (or just exits; the old one sees the connection close) and the old one is unharmed.
// If Commit fails, the old process has not let go and is still accepting: the new one must
// stop accepting (drain what it accepted) and exit. An old process that exits (is killed,
// crashes) before it lets go accepts no more either: Commit then returns OK, and
// old_process_exited() says so; the sockets are the new one's alone, the queued clients with
// them (the old process is known by a pidfd from the connection's SO_PEERCRED, so a reused pid
// cannot pass for it).
//
// Threads: one thread at a time. Ownership: holds the connection and the received sockets
// until they are taken.
#ifndef BRRR_SERVER_TAKE_OVER_H_
#define BRRR_SERVER_TAKE_OVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/clock.h"
#include "server/listener_handover.h"

namespace brrr::server {

// How long the new process waits for each answer of the old one.
inline constexpr Duration kHandoverAnswerTimeout = std::chrono::seconds(10);

class TakeOver {
 public:
  // Connects, says HELLO and receives the offer and its listeners. NotFound when nothing
  // listens at `path`, or the process there exits before it has offered them (killed, crashed:
  // seen by its pidfd, up to 2 s after the connection failed); FailedPrecondition when the old process refuses (another
  // protocol version, already handing over, draining) or speaks another version; InvalidArgument when a received socket
  // is not the listener the offer names (address mismatch); Unavailable when the old process, still running, does not
  // answer in time or closes the connection.
  static absl::StatusOr<std::unique_ptr<TakeOver>> Connect(const std::string& path,
                                                           Duration timeout = kHandoverAnswerTimeout);

  const std::string& path() const { return path_; }
  // What was received (descriptors still held here until taken).
  const ListenerSet& listeners() const { return set_; }
  ListenerSet& mutable_listeners() { return set_; }

  // The echo listeners' descriptors, handed to the caller (who owns them from now).
  std::vector<int> TakeEchoListeners();

  // Says TAKEN and waits for RELEASED. OK: the old process no longer accepts, and drains or
  // has exited (old_process_exited()). Unavailable: it did not release them (it closed the
  // connection, gave up waiting, or was stopped) and still runs, so it may still be accepting.
  absl::Status Commit(Duration timeout = kHandoverAnswerTimeout);
  // After Commit returned OK: the old process exited instead of releasing the listeners.
  bool old_process_exited() const { return old_process_exited_; }
  // Tells the old process why it keeps its listeners (it logs the reason). Best effort.
  void Decline(const std::string& why);

 private:
  TakeOver(std::string path, UniqueFd conn, ListenerSet set, UniqueFd old_process)
      : path_(std::move(path)), conn_(std::move(conn)), set_(std::move(set)), old_process_(std::move(old_process)) {}

  std::string path_;
  UniqueFd conn_;
  ListenerSet set_;
  UniqueFd old_process_;  // a pidfd of the process at the other end of conn_, or invalid
  bool old_process_exited_ = false;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_TAKE_OVER_H_
