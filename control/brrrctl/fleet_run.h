// fleet_run.h: brrrctl on several admin planes (--target=A,B,C or --targets_file): a client per
// target, a command run on every target at once (one unreachable target costs one --timeout,
// not one per target), each target's result printed in the order the targets were given, the
// total over the targets that answered, and the worst exit code.
//
// Text: a header line per target, then what the command prints for one server; a target that
// fails prints its error under its header, and the others go on. Read commands end with the
// total (fleet_totals.h):
//   == 127.0.0.1:5001 ==
//   ...the usual output...
//
//   == 127.0.0.1:5002 ==
//   error (exit 3): cannot reach the admin plane at 127.0.0.1:5002: ...
//
//   == total: 1 of 2 targets answering ==
//   ...
// JSON (--json): one object per line per target, in target order, then the total's:
//   {"target":"127.0.0.1:5001","result":{...the message one target prints...}}
//   {"target":"127.0.0.1:5002","error":{"exit_code":3,"message":"cannot reach ..."}}
//   {"total":{"targets":2,"answering":1,...}}
//
// The exit code is the worst of the targets' (Severity). A usage error is found before any call
// and ends brrrctl as with one target.
//
//   absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::Create(targets, options);
//   std::vector<TargetSnapshot<admin::Stats>> stats = SnapshotEach<admin::Stats>(
//       **fleet, [](AdminClient& client, grpc::ClientContext* context, admin::Stats* stats) {
//         return client.admin().GetStats(context, {}, stats);
//       });
//
// Threads: a Fleet is used by one thread, which ForEach and the runners fan out to a thread
// per target; each target's client and Output are used by that target's thread only.
#ifndef BRRR_CONTROL_FLEET_RUN_H_
#define BRRR_CONTROL_FLEET_RUN_H_

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/brrrctl/admin_client.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_totals.h"
#include "control/brrrctl/outcome.h"

namespace brrr::control {

// How bad an exit code is, for the worst of several targets: ok (0) < not serving (5) < server
// error (1) < unauthenticated (4) < unreachable (3) < usage (2).
int Severity(ExitCode code);

// The worst of the targets' outcomes, and for stderr the targets that were not ok
// ("targets not ok: 127.0.0.1:5002 (exit 3)"); a usage error as it is.
Outcome WorstOutcome(const std::vector<std::string>& targets, const std::vector<Outcome>& outcomes);

// Runs fn(i) for i in [0, count) at once, each on a thread of its own; returns once all have.
void AtOnce(size_t count, const std::function<void(size_t)>& fn);

// An admin client per target.
class Fleet {
 public:
  // Errors (InvalidArgument), as AdminClient::Create's: the first target's client that cannot
  // be made (an unreadable --token_file, a timeout that is not positive).
  static absl::StatusOr<std::unique_ptr<Fleet>> Create(const std::vector<std::string>& targets,
                                                       const AdminClientOptions& options);

  size_t size() const { return clients_.size(); }
  const std::string& target(size_t i) const { return clients_[i]->target(); }
  const std::vector<std::string>& targets() const { return targets_; }
  AdminClient& client(size_t i) { return *clients_[i]; }

  // Runs fn(i) for every target at once, each on a thread of its own; returns once all have.
  void ForEach(const std::function<void(size_t)>& fn) { AtOnce(size(), fn); }

 private:
  std::vector<std::string> targets_;
  std::vector<std::unique_ptr<AdminClient>> clients_;
};

// One target's answer to a unary call.
template <typename Message>
struct TargetSnapshot {
  std::string target;
  Outcome outcome;  // kOk: `message` holds the answer
  Message message;
};

// One unary call on every target at once, in target order: e.g. GetStats for each refresh of a
// view of the fleet.
template <typename Message>
std::vector<TargetSnapshot<Message>> SnapshotEach(
    Fleet& fleet, const std::function<grpc::Status(AdminClient&, grpc::ClientContext*, Message*)>& rpc) {
  std::vector<TargetSnapshot<Message>> snapshots(fleet.size());
  fleet.ForEach([&](size_t i) {
    TargetSnapshot<Message>& s = snapshots[i];
    s.target = fleet.target(i);
    AdminClient& client = fleet.client(i);
    s.outcome = client.Call([&](grpc::ClientContext* context) { return rpc(client, context, &s.message); });
  });
  return snapshots;
}

// What a command runs with on several targets.
struct FleetInvocation {
  // Positional arguments after the command's name.
  std::vector<std::string> args;
  const CommandLine& line;
  Fleet& fleet;
  bool json = false;
  Interrupts& interrupts;
  std::FILE* stream = stdout;
};

using FleetRun = std::function<Outcome(FleetInvocation&)>;
using TotalMaker = std::function<std::unique_ptr<FleetTotal>()>;

// A command of one call per target (info, stats, throttle, drain...): `run` on every target at
// once, each target's output printed in target order once all have answered, then the total
// that `total` makes (none when it is empty).
FleetRun OnEachTarget(std::function<Outcome(Invocation&)> run, TotalMaker total = nullptr);

// A stream per target (stalls): `run` on every target at once, each on its own thread; each
// message printed as it comes, JSON lines wrapped with the target, text lines prefixed with
// "[HOST:PORT] "; a target's error when its stream ends.
FleetRun StreamOnEachTarget(std::function<Outcome(Invocation&)> run);

// The JSON line of a target's error: {"target":"...","error":{"exit_code":3,"message":"..."}}.
std::string ErrorJsonLine(const std::string& target, const Outcome& outcome);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_FLEET_RUN_H_
