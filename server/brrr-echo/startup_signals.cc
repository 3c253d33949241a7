#include "server/brrr-echo/startup_signals.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "runtime/line_output.h"

namespace brrr {

StartupSignals::StartupSignals(const sigset_t& signals)
    : signals_(::signalfd(-1, &signals, SFD_CLOEXEC)), stop_(::eventfd(0, EFD_CLOEXEC)) {
  if (!signals_.valid() || !stop_.valid()) {
    PrintToStderr("brrr-echo: cannot watch for signals while starting (%s): a stop signal waits until it serves\n",
                  std::strerror(errno));
    return;
  }
  watcher_ = std::thread([this] { Watch(); });
}

StartupSignals::~StartupSignals() { Stop(); }

void StartupSignals::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (watcher_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    watcher_.join();
  }
  // Not the server's to count: closed before its descriptor budget measures what is open.
  signals_.reset();
  stop_.reset();
}

void StartupSignals::Watch() {
  pollfd fds[2] = {{.fd = signals_.get(), .events = POLLIN, .revents = 0},
                   {.fd = stop_.get(), .events = POLLIN, .revents = 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents == 0) return;  // Stop
    signalfd_siginfo info{};
    if (::read(signals_.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) continue;
    const int sig = static_cast<int>(info.ssi_signo);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      // Serving begins: the signal is the serving thread's to take.
      ::kill(::getpid(), sig);
      return;
    }
    PrintToStdout("brrr-echo: %s while starting: stopping before serving anything\n", strsignal(sig));
    LineOutput::Process().Flush(LineOutput::kExitPatience);  // a queued line dies with the process
    // The default action, from this thread: the only one with the signal unblocked. mu_ stays
    // held, so Stop (and serving) waits for the end.
    ::signal(sig, SIG_DFL);
    sigset_t just_this;
    sigemptyset(&just_this);
    sigaddset(&just_this, sig);
    pthread_sigmask(SIG_UNBLOCK, &just_this, nullptr);
    ::raise(sig);
    ::_exit(128 + sig);  // not reached: the default action of each stop signal ends the process
  }
}

}  // namespace brrr
