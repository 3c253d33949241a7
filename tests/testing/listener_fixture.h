// listener_fixture.h: a parameterized test fixture (the parameter is a backend's name) with one
// event loop on that backend and a listening socket on 127.0.0.1, for tests that drive the
// runtime's socket layer by hand: accept a connection, then run the loop until something
// happened. Skips backends that cannot start here; checks that no descriptor leaked.
//
//   class ReceiverTest : public testing::ListenerFixture {
//     EventLoopOptions LoopOptions() const override { return {.receive_buffer_size = 4096}; }
//   };
//   TEST_P(ReceiverTest, ...) { BlockingClient c(port()); Socket s = Accept(); RunUntil(...); }
#ifndef BRRR_TESTS_TESTING_LISTENER_FIXTURE_H_
#define BRRR_TESTS_TESTING_LISTENER_FIXTURE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/socket.h"

namespace brrr::testing {

class ListenerFixture : public ::testing::TestWithParam<std::string> {
 protected:
  // The loop's options (before the backend is set); a test suite overrides it.
  virtual EventLoopOptions LoopOptions() const { return {}; }

  void SetUp() override;
  void TearDown() override;

  uint16_t port() { return listener_.local_address()->port(); }
  // Accepts one connection (bounded: 30 s).
  Socket Accept();
  // Runs the loop until `done` (bounded: 30 s; a timeout fails the test). There is no
  // "run for a while": a test waits for the event it expects.
  void RunUntil(const std::function<bool()>& done);

  std::unique_ptr<EventLoop> loop_;
  Socket listener_;
  int fds_before_ = -1;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_LISTENER_FIXTURE_H_
