// pipe.h: a pipe for tests of output nobody reads: shrunk to one page and filled, so that the
// next write to it blocks until the test reads.
//
//   TestPipe output;
//   output.Fill();                        // a writer's next write() now waits for a reader
//   options.output_fd = output.write_end();
//   std::string what = output.ReadAvailable();
//
// Threads: one test thread; the writers are other threads or processes.
#ifndef BRRR_TESTS_TESTING_PIPE_H_
#define BRRR_TESTS_TESTING_PIPE_H_

#include <cstddef>
#include <string>

namespace brrr::testing {

class TestPipe {
 public:
  TestPipe();  // both ends close-on-exec (a child gets the write end by dup2)
  ~TestPipe();  // closes the ends still open
  TestPipe(const TestPipe&) = delete;
  TestPipe& operator=(const TestPipe&) = delete;

  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  // Writes to the pipe then fail with EPIPE.
  void CloseReadEnd();

  // Shrinks the pipe to one page (4096 bytes) and fills it with '.': a write then blocks until
  // the test reads. Returns the bytes written to fill it.
  size_t Fill();
  // What the pipe holds now, without waiting for more.
  std::string ReadAvailable();

 private:
  int fds_[2] = {-1, -1};
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_PIPE_H_
