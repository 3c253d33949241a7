#include "tests/testing/pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace brrr::testing {
namespace {

// Runs `body` with O_NONBLOCK set on `fd`, then restores its flags (the file description may
// be a child's stdout too, and the child must see it as it was).
template <typename Body>
void NonBlocking(int fd, Body body) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  body();
  ::fcntl(fd, F_SETFL, flags);
}

}  // namespace

TestPipe::TestPipe() {
  if (::pipe2(fds_, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    std::abort();
  }
}

TestPipe::~TestPipe() {
  CloseReadEnd();
  if (fds_[1] >= 0) ::close(fds_[1]);
}

void TestPipe::CloseReadEnd() {
  if (fds_[0] >= 0) ::close(fds_[0]);
  fds_[0] = -1;
}

size_t TestPipe::Fill() {
  if (::fcntl(fds_[1], F_SETPIPE_SZ, 4096) < 0) {
    std::perror("F_SETPIPE_SZ");
    std::abort();
  }
  size_t filled = 0;
  NonBlocking(fds_[1], [&] {
    const std::string filler(256, '.');
    for (ssize_t n; (n = ::write(fds_[1], filler.data(), filler.size())) > 0;) filled += static_cast<size_t>(n);
  });
  return filled;
}

std::string TestPipe::ReadAvailable() {
  std::string out;
  NonBlocking(fds_[0], [&] {
    char buf[4096];
    for (ssize_t n; (n = ::read(fds_[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  });
  return out;
}

}  // namespace brrr::testing
