// interrupts.h: what SIGINT and SIGTERM do in brrrctl. While a stream runs (watch, stalls)
// they end it cleanly: the stream is cancelled and brrrctl exits 0. At any other time they end
// brrrctl at once, as they would by default (exit status 128 + the signal's number).
//
//   int main(int argc, char** argv) {
//     Interrupts interrupts;   // first: gRPC's threads must start with the signals blocked
//     ...
//     auto context = client.StreamContext();
//     Interrupts::Scope scope = interrupts.OnInterrupt([&] { context->TryCancel(); });
//     while (reader->Read(&message)) ...
//     if (interrupts.interrupted()) ...   // ended by the signal: success
//
// How: the signals are blocked in every thread and taken by one thread with sigwait.
//
// Several scopes may be open at once (brrrctl on several targets runs a stream per target, each
// on its own thread): the signal calls every open scope's handler.
//
// Threads: construct in main before any other thread starts; OnInterrupt and interrupted from
// any thread. The handlers run on the signal thread.
#ifndef BRRR_CONTROL_INTERRUPTS_H_
#define BRRR_CONTROL_INTERRUPTS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace brrr::control {

class Interrupts {
 public:
  Interrupts();
  ~Interrupts();
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  // While a Scope lives, the first SIGINT/SIGTERM calls its handler instead of exiting (and a
  // scope opened after that signal calls its handler at once).
  class Scope {
   public:
    ~Scope();
    Scope(Scope&& other) noexcept;
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    Scope& operator=(Scope&&) = delete;

   private:
    friend class Interrupts;
    Scope(Interrupts* owner, uint64_t id) : owner_(owner), id_(id) {}
    Interrupts* owner_;
    uint64_t id_;
  };
  [[nodiscard]] Scope OnInterrupt(std::function<void()> handler);

  // A signal arrived while a scope was open.
  bool interrupted() const { return interrupted_.load(); }

 private:
  void WaitForSignals();

  std::thread thread_;
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> stopping_{false};  // set by the destructor before it wakes the thread
  std::mutex mu_;
  std::map<uint64_t, std::function<void()>> handlers_;  // guarded by mu_, by scope
  uint64_t next_id_ = 0;                                // guarded by mu_
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_INTERRUPTS_H_
