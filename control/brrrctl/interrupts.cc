#include "control/brrrctl/interrupts.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

namespace brrr::control {
namespace {

// SIGUSR1 only wakes the signal thread so that it can end (the destructor sends it, after
// setting stopping_); one sent from outside is ignored, so that SIGINT and SIGTERM are never
// left blocked in every thread with nobody waiting for them.
sigset_t HandledSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  return signals;
}

}  // namespace

Interrupts::Interrupts() {
  sigset_t signals = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  thread_ = std::thread([this] { WaitForSignals(); });
}

Interrupts::~Interrupts() {
  stopping_.store(true);
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

void Interrupts::WaitForSignals() {
  sigset_t signals = HandledSignals();
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      if (stopping_.load()) return;
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (handlers_.empty()) {
      std::fflush(stdout);
      std::_Exit(128 + sig);
    }
    if (!interrupted_.exchange(true)) {
      for (auto& [id, handler] : handlers_) handler();
    }
  }
}

Interrupts::Scope Interrupts::OnInterrupt(std::function<void()> handler) {
  std::lock_guard<std::mutex> lock(mu_);
  // A stream that starts after the signal (another target's, still connecting) ends at once too.
  if (interrupted_.load()) handler();
  const uint64_t id = next_id_++;
  handlers_.emplace(id, std::move(handler));
  return Scope(this, id);
}

Interrupts::Scope::Scope(Scope&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}

Interrupts::Scope::~Scope() {
  if (owner_ == nullptr) return;
  std::lock_guard<std::mutex> lock(owner_->mu_);
  owner_->handlers_.erase(id_);
}

}  // namespace brrr::control
