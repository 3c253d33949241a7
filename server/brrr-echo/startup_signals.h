// startup_signals.h: SIGINT, SIGTERM and SIGHUP while brrr-echo starts, before it serves.
//
// main blocks the stop signals in every thread from early on: once the server serves, one
// thread takes them with sigwait and drains. A start can take seconds before that (a take-over
// waits up to 10 s for the running process to answer, a start afresh up to 2 s for the ports
// of a process that has just died), and a signal blocked meanwhile would wait for all of it.
// Until serving begins nothing is served, so nothing is lost by stopping at once: a watcher
// thread takes the signal, says so on stdout, and ends the process as the signal's default
// action would (its parent sees it killed by that signal, as it would have been without
// brrr-echo's handling). What the start had made goes with the process: its listeners close,
// a running process it was taking over from serves on (the connection to it closes), and a
// --handover_socket it had opened stays behind as a stale file that the next start replaces.
//
//   StartupSignals startup(stop_signals);  // right after blocking them in every thread
//   ... take over, create the server, start the admin plane ...
//   startup.Stop();                         // before the server accepts: from then on a stop
//   server.Start();                         // signal waits for the serving thread's sigwait
//
// Threads: construct and Stop from one thread (main's), with the signals blocked in every thread.
#ifndef BRRR_SERVER_BRRR_ECHO_STARTUP_SIGNALS_H_
#define BRRR_SERVER_BRRR_ECHO_STARTUP_SIGNALS_H_

#include <signal.h>

#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "runtime/unique_fd.h"

namespace brrr {

class StartupSignals {
 public:
  // Takes `signals` (blocked in every thread already) until Stop. If it cannot watch (no
  // signalfd or eventfd: out of descriptors), it does not, and says so on stderr; the signals
  // then wait for the serving thread as before.
  explicit StartupSignals(const sigset_t& signals);
  ~StartupSignals();  // Stop()
  StartupSignals(const StartupSignals&) = delete;
  StartupSignals& operator=(const StartupSignals&) = delete;

  // Ends the watch and closes its two descriptors. A signal the watcher took as Stop came is
  // sent to the process again, so it waits, pending, for whoever takes the signals next.
  // Idempotent.
  void Stop();

 private:
  void Watch();

  UniqueFd signals_;  // a signalfd of the stop signals
  UniqueFd stop_;     // an eventfd: Stop was called
  std::mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace brrr

#endif  // BRRR_SERVER_BRRR_ECHO_STARTUP_SIGNALS_H_
