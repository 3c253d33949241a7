// side_ports.h: brrr-echo started on side ports (its admin plane, its metrics port) that were
// free a moment ago, and started again on new ones when another program took one in between.
//
//   testing::SidePorts ports;
//   std::unique_ptr<Process> server = testing::StartOnFreeSidePorts(
//       testing::Runfile("server/brrr-echo/brrr-echo"),
//       [](const testing::SidePorts& p) {
//         return std::vector<std::string>{"--port=0", "--admin_port=" + std::to_string(p.admin)};
//       },
//       &ports);
//   ASSERT_NE(server->ListeningPort(), 0) << server->err();
#ifndef BRRR_TESTS_TESTING_SIDE_PORTS_H_
#define BRRR_TESTS_TESTING_SIDE_PORTS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/testing/process.h"

namespace brrr::testing {

// The ports a brrr-echo serves beside its echo port, each from PickFreePort (two different ones).
struct SidePorts {
  uint16_t admin = 0;
  uint16_t metrics = 0;
};

// Starts `program` (a brrr-echo) with the arguments `args_for` makes of newly picked SidePorts
// (it uses those it needs) and `options`, and waits (up to 30 s) for its "listening on" line,
// which brrr-echo prints once every port it serves is bound. PickFreePort can only say that a
// port was free when picked: if the process exits first saying that one of its picked ports is
// in use ("Address already in use", naming the port), it is started again on new ones, up to 5
// starts in all. Returns the last process started, listening or not (its ListeningPort() tells
// the caller), and the ports it was given in *ports. Not for a process whose output goes
// elsewhere (ProcessOptions::output_fd): its error is not read here.
std::unique_ptr<Process> StartOnFreeSidePorts(const std::string& program,
                                              const std::function<std::vector<std::string>(const SidePorts&)>& args_for,
                                              SidePorts* ports, const ProcessOptions& options = {});

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_SIDE_PORTS_H_
