#include "tests/testing/side_ports.h"

#include <chrono>

#include "tests/testing/net.h"

namespace brrr::testing {
namespace {

constexpr int kStarts = 5;

// Whether `process` has exited saying that `port` was in use when it bound it (the admin plane:
// "cannot listen on 127.0.0.1:PORT: the port is in use: Address already in use"; the metrics
// port: "cannot serve metrics on 127.0.0.1:PORT: ... Address already in use").
bool ExitedOnAPortInUse(Process& process, uint16_t port) {
  if (!process.Wait(std::chrono::seconds(1)).has_value()) return false;
  const std::string err = process.err();
  return err.find("Address already in use") != std::string::npos &&
         err.find(":" + std::to_string(port) + ": ") != std::string::npos;
}

}  // namespace

std::unique_ptr<Process> StartOnFreeSidePorts(const std::string& program,
                                              const std::function<std::vector<std::string>(const SidePorts&)>& args_for,
                                              SidePorts* ports, const ProcessOptions& options) {
  std::unique_ptr<Process> process;
  for (int start = 1;; ++start) {
    ports->admin = PickFreePort();
    ports->metrics = PickFreePort();  // never the same as admin: PickFreePort gives no port twice
    process = std::make_unique<Process>(program, args_for(*ports), options);
    if (process->ListeningPort() != 0 || start == kStarts) return process;
    if (!ExitedOnAPortInUse(*process, ports->admin) && !ExitedOnAPortInUse(*process, ports->metrics)) {
      return process;
    }
  }
}

}  // namespace brrr::testing
