// brrrctl_run.h: brrrctl run as a child process, and what the brrrctl tests read from its
// output, for the tests in brrrctl_*_test.cc.
//
//   TEST_F(BrrrctlTest, Foo) {
//     Start();                                      // brrr-echo with its admin plane (AdminFixture)
//     CtlRun r = Ctl({"info", "--json"});           // brrrctl --target=<that admin plane> info --json
//     ASSERT_EQ(r.code, 0) << r;
//     admin::ServerInfo info = FromJson<admin::ServerInfo>(Lines(r.out).at(0));
//
// Threading: each run waits for its brrrctl (at most 30 s) on the calling thread.
#ifndef BRRR_TESTS_CONTROL_BRRRCTL_RUN_H_
#define BRRR_TESTS_CONTROL_BRRRCTL_RUN_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/process.h"

namespace brrr::testing {

// What one brrrctl run did.
struct CtlRun {
  int code = -1000;  // -1000: still running after 30 s
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const CtlRun& r) {
  return os << "exit " << r.code << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
}

// Runs brrrctl with `args` and waits for it to exit (30 s at the most).
inline CtlRun Brrrctl(const std::vector<std::string>& args) {
  Process process(Runfile("control/brrrctl/brrrctl"), args);
  std::optional<int> code = process.Wait(std::chrono::seconds(30));
  return {code.value_or(-1000), process.out(), process.err()};
}

// `text` cut into lines, without their newlines.
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// Whether `part` occurs in `text`.
inline bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Parses with protobuf's JSON parser, which refuses field names the message does not have.
template <typename Message>
Message FromJson(const std::string& line) {
  Message message;
  auto status = google::protobuf::util::JsonStringToMessage(line, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << line;
  return message;
}

// Writes `content` to `name` in the test's temporary directory; returns its path.
inline std::string WriteFile(const std::string& name, const std::string& content) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

// The local port of a client socket.
inline uint16_t LocalPort(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

// The shared fixture (a real brrr-echo and a channel to it), plus brrrctl aimed at it.
class BrrrctlTest : public AdminFixture {
 protected:
  std::string Address() const { return AdminAddress(); }

  CtlRun Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), "--target=" + Address());
    return Brrrctl(args);
  }
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_CONTROL_BRRRCTL_RUN_H_
