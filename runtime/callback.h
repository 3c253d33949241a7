// callback.h: a move-only `void()` callable with inline storage, the unit of work the event
// loop queues.
//
// std::function needs copyable targets and a coroutine-resume or a lambda that owns a socket
// is not copyable. Callback stores targets of up to kInlineSize bytes in place (a coroutine
// handle, a few pointers) and larger ones on the heap. Small trivially copyable targets move
// with a memcpy, which keeps the ready queue's push and pop cheap.
//
//   Callback cb = [conn = std::move(conn)] { conn->flush(); };
//   cb();
//
// Threads: none of its own; a Callback is moved between threads only by the loop's locked
// cross-thread queue.
#ifndef BRRR_RUNTIME_CALLBACK_H_
#define BRRR_RUNTIME_CALLBACK_H_

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace brrr {

class Callback {
 public:
  static constexpr std::size_t kInlineSize = 32;

  Callback() noexcept = default;

  template <typename F>
    requires(!std::is_same_v<std::decay_t<F>, Callback> && std::is_invocable_r_v<void, std::decay_t<F>&>)
  Callback(F&& f) {  // NOLINT(google-explicit-constructor): lambdas convert implicitly
    using Target = std::decay_t<F>;
    if constexpr (fits_inline<Target>()) {
      ::new (static_cast<void*>(storage_)) Target(std::forward<F>(f));
      invoke_ = [](void* storage) { (*std::launder(static_cast<Target*>(storage)))(); };
      if constexpr (!(std::is_trivially_copyable_v<Target> && std::is_trivially_destructible_v<Target>)) {
        manage_ = [](void* dst, void* src) {
          if (src != nullptr) {
            Target* from = std::launder(static_cast<Target*>(src));
            ::new (dst) Target(std::move(*from));
            from->~Target();
          } else {
            std::launder(static_cast<Target*>(dst))->~Target();
          }
        };
      }
    } else {
      Target* heap = new Target(std::forward<F>(f));
      std::memcpy(storage_, &heap, sizeof heap);
      invoke_ = [](void* storage) { (*load_pointer<Target>(storage))(); };
      manage_ = [](void* dst, void* src) {
        if (src != nullptr) {
          std::memcpy(dst, src, sizeof(Target*));
        } else {
          delete load_pointer<Target>(dst);
        }
      };
    }
  }

  Callback(Callback&& other) noexcept { take(other); }

  Callback& operator=(Callback&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }

  Callback(const Callback&) = delete;
  Callback& operator=(const Callback&) = delete;

  ~Callback() { reset(); }

  explicit operator bool() const noexcept { return invoke_ != nullptr; }

  // Calls the target. Precondition: not empty.
  void operator()() { invoke_(storage_); }

  // Destroys the target, leaving the Callback empty.
  void reset() noexcept {
    if (manage_ != nullptr) manage_(storage_, nullptr);
    invoke_ = nullptr;
    manage_ = nullptr;
  }

 private:
  using Invoke = void (*)(void* storage);
  // src != nullptr: move-construct *dst from *src and destroy *src. src == nullptr: destroy *dst.
  using Manage = void (*)(void* dst, void* src);

  template <typename Target>
  static constexpr bool fits_inline() {
    return sizeof(Target) <= kInlineSize && alignof(Target) <= alignof(std::max_align_t) &&
           std::is_nothrow_move_constructible_v<Target>;
  }

  template <typename Target>
  static Target* load_pointer(void* storage) {
    Target* p;
    std::memcpy(&p, storage, sizeof p);
    return p;
  }

  void take(Callback& other) noexcept {
    if (other.manage_ != nullptr) {
      other.manage_(storage_, other.storage_);
    } else {
      std::memcpy(storage_, other.storage_, kInlineSize);
    }
    invoke_ = other.invoke_;
    manage_ = other.manage_;
    other.invoke_ = nullptr;
    other.manage_ = nullptr;
  }

  // Zeroed: take() copies all of it for trivially copyable targets, which may be smaller
  // (g++ -O2 rightly flags copying bytes that were never written).
  alignas(std::max_align_t) unsigned char storage_[kInlineSize] = {};
  Invoke invoke_ = nullptr;
  Manage manage_ = nullptr;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_CALLBACK_H_
