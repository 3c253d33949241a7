// thread_owner.h: records which thread owns an object and checks it in debug builds.
//
// An EventLoop is owned by the thread that runs it; its loop-only entry points call
// `owner.check("call_soon")`, which in builds without NDEBUG aborts with a message naming the
// call when another thread makes it. Other threads must go through call_soon_threadsafe.
//
//   ThreadOwner owner;            // owned by the constructing thread
//   owner.bind_to_current_thread();  // hand-off: a worker thread takes over
//   owner.check("call_soon");
//
// Threads: bind/check from the owning thread; is_current() from any thread.
#ifndef BRRR_RUNTIME_THREAD_OWNER_H_
#define BRRR_RUNTIME_THREAD_OWNER_H_

#include <atomic>
#include <thread>

namespace brrr {

class ThreadOwner {
 public:
  ThreadOwner() : owner_(std::this_thread::get_id()) {}

  void bind_to_current_thread() { owner_.store(std::this_thread::get_id(), std::memory_order_relaxed); }

  bool is_current() const {
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

  // Aborts (debug builds) when called from a thread other than the owner.
  void check(const char* operation) const {
#ifndef NDEBUG
    if (!is_current()) fail(operation);
#else
    (void)operation;
#endif
  }

 private:
  [[noreturn]] static void fail(const char* operation);

  std::atomic<std::thread::id> owner_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_THREAD_OWNER_H_
