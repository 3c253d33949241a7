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
// Threads: construct in main before any other thread starts; OnInterrupt and interrupted from
// any thread. The handler runs on the signal thread.
#ifndef BRRR_CONTROL_INTERRUPTS_H_
#define BRRR_CONTROL_INTERRUPTS_H_

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace brrr::control {

class Interrupts {
 public:
  Interrupts();
  ~Interrupts();
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  // While a Scope lives, the first SIGINT/SIGTERM calls its handler instead of exiting.
  class Scope {
   public:
    ~Scope();
    Scope(Scope&& other) noexcept;
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    Scope& operator=(Scope&&) = delete;

   private:
    friend class Interrupts;
    explicit Scope(Interrupts* owner) : owner_(owner) {}
    Interrupts* owner_;
  };
  // One scope at a time.
  [[nodiscard]] Scope OnInterrupt(std::function<void()> handler);

  // A signal arrived while a scope was open.
  bool interrupted() const { return interrupted_.load(); }

 private:
  void WaitForSignals();

  std::thread thread_;
  std::atomic<bool> interrupted_{false};
  std::mutex mu_;
  std::function<void()> handler_;  // guarded by mu_
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_INTERRUPTS_H_
