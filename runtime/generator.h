// generator.h: Generator<T>, a coroutine driven by its caller (a Python generator).
//
// Unlike a Task, a generator has nothing to do with the event loop: each next() (or step of
// a range-for) runs the body until its next co_yield, on the caller's stack.
//
//   Generator<int> count_to(int n) { for (int i = 1; i <= n; ++i) co_yield i; }
//   for (int i : count_to(9)) std::cout << i;   // 1..9
//   auto g = count_to(2); g.next();              // std::optional<int>(1)
//
// An exception thrown in the body propagates out of next() / operator++.
// Threads: whichever thread drives it, one at a time.
#ifndef BRRR_RUNTIME_GENERATOR_H_
#define BRRR_RUNTIME_GENERATOR_H_

#include <coroutine>
#include <exception>
#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>

namespace brrr {

template <typename T>
class [[nodiscard]] Generator {
 public:
  struct promise_type {
    std::optional<T> current;
    std::exception_ptr error;

    Generator get_return_object() {
      return Generator(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    template <typename U>
      requires std::is_constructible_v<T, U&&>
    std::suspend_always yield_value(U&& value) {
      current.emplace(std::forward<U>(value));
      return {};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
    // A generator cannot await: it is not driven by the loop.
    template <typename U>
    std::suspend_never await_transform(U&&) = delete;
  };
  using Handle = std::coroutine_handle<promise_type>;

  Generator(Generator&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Generator& operator=(Generator&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;
  ~Generator() {
    if (handle_) handle_.destroy();
  }

  // Runs the body to its next co_yield: the value, or nullopt when the body has finished.
  std::optional<T> next() {
    if (!advance()) return std::nullopt;
    return std::move(handle_.promise().current);
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    explicit iterator(Generator* g) : generator_(g) {}
    T& operator*() const { return *generator_->handle_.promise().current; }
    iterator& operator++() {
      if (!generator_->advance()) generator_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return generator_ == nullptr; }

   private:
    Generator* generator_ = nullptr;
  };

  iterator begin() {
    if (!advance()) return iterator();
    return iterator(this);
  }
  std::default_sentinel_t end() { return {}; }

 private:
  explicit Generator(Handle h) : handle_(h) {}

  // Resumes the body; false once it has finished.
  bool advance() {
    if (!handle_ || handle_.done()) return false;
    handle_.promise().current.reset();
    handle_.resume();
    if (handle_.promise().error) std::rethrow_exception(std::exchange(handle_.promise().error, {}));
    return !handle_.done();
  }

  Handle handle_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_GENERATOR_H_
