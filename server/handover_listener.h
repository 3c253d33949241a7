// handover_listener.h: the old side of a hand-over (brrr-echo --handover_socket=PATH): a UNIX
// socket at PATH where a new brrr-echo (--take_over=PATH) asks for this process's listening
// sockets (the protocol: server/listener_handover.h).
//
// The socket file is created with mode 0600 (only this user, and root, can connect), and a
// connecting process of another user is refused (SO_PEERCRED) in case the mode was widened.
// Listen refuses a PATH where another process listens, and replaces a stale file left by one
// that died. The file is removed when the listener stops, or when a hand-over completes.
//
// One hand-over at a time: while one is under way a second process is refused ("already
// handing over"); after one completes the socket is gone. The listener asks `collect` for
// duplicates of the listening sockets (the process keeps its own), sends them, and waits up
// to kTakeOverTimeout (30 s) for the new process to take them. Only once it has, and the RELEASED
// frame is sent, does it call `released`, which stops this process accepting (and drains).
// Whatever fails before that leaves this process serving as before, and says so on stderr; a
// new process that goes away after TAKEN and before RELEASED reaches it (it then exits 3) too,
// and the socket is made again at PATH. A connection that sends no HELLO is given up on as soon
// as another one connects.
//
//   HandoverCallbacks cb{.collect = [&] { return server->DuplicateListeners(); },
//                        .released = [&](pid_t pid) { server->Drain(); }};
//   auto listener = HandoverListener::Listen("/run/brrr/echo.sock", std::move(cb));
//   ...
//   (*listener)->Stop();   // before what the callbacks use goes away
//
// Threads: Listen and Stop from one thread; the callbacks run on the listener's own thread.
// Ownership: the listener owns its socket, its file and its thread.
#ifndef BRRR_SERVER_HANDOVER_LISTENER_H_
#define BRRR_SERVER_HANDOVER_LISTENER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "runtime/clock.h"
#include "server/listener_handover.h"

namespace brrr::server {

// How long the old process waits for the new one to take what it sent (to build its loops
// and start accepting) before it gives up and goes on serving.
inline constexpr Duration kTakeOverTimeout = std::chrono::seconds(30);

struct HandoverCallbacks {
  // Duplicates of every listener and their addresses (pid is filled in by the listener);
  // an error (FailedPrecondition "draining") is sent to the new process as the refusal.
  std::function<absl::StatusOr<ListenerSet>()> collect;
  // The new process `pid` holds the listeners: stop accepting and drain.
  std::function<void(pid_t pid)> released;
};

class HandoverListener {
 public:
  // Creates the socket at `path`. FailedPrecondition if another process listens there (or
  // the path is something else); the bind's error otherwise. `take_over_timeout`: how long a
  // new process may take to answer once it has the listeners (tests make it short).
  static absl::StatusOr<std::unique_ptr<HandoverListener>> Listen(const std::string& path,
                                                                  HandoverCallbacks callbacks,
                                                                  Duration take_over_timeout = kTakeOverTimeout);
  ~HandoverListener();  // stops
  HandoverListener(const HandoverListener&) = delete;
  HandoverListener& operator=(const HandoverListener&) = delete;

  const std::string& path() const { return path_; }
  // Ends a hand-over in progress (the new process is told nothing and gives up), stops the
  // thread and removes the socket file if it is still ours. Idempotent.
  void Stop();

 private:
  HandoverListener(std::string path, UniqueFd fd, UniqueFd wake, ino_t inode, HandoverCallbacks callbacks,
                   Duration take_over_timeout);
  void Run();
  // Serves one connection; true once the listeners are handed over (the thread then ends).
  bool Serve(UniqueFd conn);
  // Answers a connection that arrives while a hand-over is under way.
  void RefuseSecond();
  // What ended a wait on a hand-over connection.
  enum class Woken { kConnection, kNextConnection, kStop, kTimeout };
  // Waits until `conn` has something to read (a frame, or its close), until another connection
  // waits on the listener, until Stop() (the wake-up stays readable, so that Run ends too), or
  // until `deadline_ns`; the first of these that holds, in the order Stop, conn, another.
  Woken WaitOn(int conn, int64_t deadline_ns) const;
  // Removes the socket file if it is still the one this listener created, and closes it.
  void Unlink();
  // Waits up to `ms` for Stop(); true if it came.
  bool StopRequested(int ms) const;

  const std::string path_;
  UniqueFd fd_;
  UniqueFd wake_;  // an eventfd that Stop() writes
  ino_t inode_;    // of the socket file, so Unlink never removes another process's (the thread's while it runs)
  HandoverCallbacks callbacks_;
  const Duration take_over_timeout_;
  pid_t taking_ = 0;  // the listener thread's: the process a hand-over is under way to
  std::thread thread_;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_HANDOVER_LISTENER_H_
