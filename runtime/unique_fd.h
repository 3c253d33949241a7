// unique_fd.h: owns a file descriptor and closes it on every way out.
//
//   UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
//   if (!fd.valid()) return absl::ErrnoToStatus(errno, path);
//   ... read(fd.get(), ...) ...              // closed when fd goes out of scope
//
// Threads: a value owned by one thread at a time.
#ifndef BRRR_RUNTIME_UNIQUE_FD_H_
#define BRRR_RUNTIME_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace brrr {

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() { return std::exchange(fd_, -1); }
  // Closes the descriptor held, if any, and holds `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_UNIQUE_FD_H_
