#include "control/brrrctl/fleet_run.h"

#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "control/brrrctl/message_json.h"
#include "control/brrrctl/output.h"

namespace brrr::control {
namespace {

std::string ErrorText(const Outcome& outcome) {
  return absl::StrCat("error (exit ", static_cast<int>(outcome.code), "): ", outcome.message, "\n");
}

// What one target's thread leaves for the printing.
struct TargetDone {
  Outcome outcome;
  std::string output;  // what the command printed (text, or wrapped JSON lines)
  std::unique_ptr<google::protobuf::Message> result;  // the last result message, if any
};

Outcome RunEach(FleetInvocation& invocation, const std::function<Outcome(Invocation&)>& run, const TotalMaker& total) {
  Fleet& fleet = invocation.fleet;
  std::vector<TargetDone> done(fleet.size());
  fleet.ForEach([&](size_t i) {
    TargetDone& d = done[i];
    Output out(
        invocation.json, fleet.target(i), [&d](absl::string_view text) { absl::StrAppend(&d.output, text); },
        [&d](const google::protobuf::Message& message) {
          d.result.reset(message.New());
          d.result->CopyFrom(message);
        });
    Invocation one{invocation.args, invocation.line, fleet.client(i), out, invocation.interrupts};
    d.outcome = run(one);
  });
  std::vector<Outcome> outcomes;
  for (TargetDone& d : done) {
    // Found before any call, the same on every target: said once, as with one target.
    if (d.outcome.code == ExitCode::kUsage) return d.outcome;
    outcomes.push_back(d.outcome);
  }

  std::unique_ptr<FleetTotal> sum = total ? total() : nullptr;
  size_t answering = 0;
  std::string text;
  for (size_t i = 0; i < done.size(); ++i) {
    const TargetDone& d = done[i];
    if (!invocation.json) absl::StrAppend(&text, i > 0 ? "\n" : "", "== ", fleet.target(i), " ==\n");
    text += d.output;
    if (!d.outcome.ok() && !d.outcome.message.empty()) {
      text += invocation.json ? ErrorJsonLine(fleet.target(i), d.outcome) : ErrorText(d.outcome);
    }
    if (d.result != nullptr) {
      ++answering;
      if (sum != nullptr) sum->Add(*d.result);
    }
  }
  if (sum != nullptr) {
    if (invocation.json) {
      absl::StrAppend(&text, "{\"total\":{\"targets\":", fleet.size(), ",\"answering\":", answering,
                      answering > 0 ? absl::StrCat(",", sum->JsonMembers()) : "", "}}\n");
    } else {
      absl::StrAppend(&text, "\n== total: ", answering, " of ", fleet.size(), " targets answering ==\n",
                      answering > 0 ? sum->Text() : "");
    }
  }
  WriteOut(invocation.stream, text);
  return WorstOutcome(fleet.targets(), outcomes);
}

Outcome StreamEach(FleetInvocation& invocation, const std::function<Outcome(Invocation&)>& run) {
  Fleet& fleet = invocation.fleet;
  std::mutex mu;  // one target's lines at a time
  std::vector<Outcome> outcomes(fleet.size());
  fleet.ForEach([&](size_t i) {
    const std::string& target = fleet.target(i);
    auto write = [&](absl::string_view text) {
      std::string lines;
      if (invocation.json) {
        lines = std::string(text);
      } else {
        for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
          absl::StrAppend(&lines, "[", target, "] ", line, "\n");
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      WriteOut(invocation.stream, lines);
    };
    Output out(invocation.json, target, write, nullptr);
    Invocation one{invocation.args, invocation.line, fleet.client(i), out, invocation.interrupts};
    outcomes[i] = run(one);
    if (!outcomes[i].ok() && outcomes[i].code != ExitCode::kUsage && !outcomes[i].message.empty()) {
      write(invocation.json ? ErrorJsonLine(target, outcomes[i]) : ErrorText(outcomes[i]));
    }
  });
  for (const Outcome& o : outcomes) {
    if (o.code == ExitCode::kUsage) return o;
  }
  return WorstOutcome(fleet.targets(), outcomes);
}

}  // namespace

int Severity(ExitCode code) {
  switch (code) {
    case ExitCode::kOk: return 0;
    case ExitCode::kNotServing: return 1;
    case ExitCode::kServerError: return 2;
    case ExitCode::kUnauthenticated: return 3;
    case ExitCode::kUnreachable: return 4;
    case ExitCode::kUsage: return 5;
    case ExitCode::kOutputFailed: return 6;  // not a target's: main's, over them all
  }
  return 5;
}

Outcome WorstOutcome(const std::vector<std::string>& targets, const std::vector<Outcome>& outcomes) {
  Outcome worst = Outcome::Ok();
  std::vector<std::string> not_ok;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    if (o.code == ExitCode::kUsage) return o;
    if (Severity(o.code) > Severity(worst.code)) worst.code = o.code;
    if (!o.ok()) not_ok.push_back(absl::StrCat(i < targets.size() ? targets[i] : "?", " (exit ", static_cast<int>(o.code), ")"));
  }
  if (!not_ok.empty()) {
    worst.message = absl::StrCat(not_ok.size(), " of ", outcomes.size(), " targets not ok: ", absl::StrJoin(not_ok, ", "));
  }
  return worst;
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Create(const std::vector<std::string>& targets,
                                                     const AdminClientOptions& options) {
  auto fleet = std::make_unique<Fleet>();
  fleet->targets_ = targets;
  for (const std::string& target : targets) {
    AdminClientOptions one = options;
    one.target = target;
    absl::StatusOr<std::unique_ptr<AdminClient>> client = AdminClient::Create(one);
    if (!client.ok()) return client.status();
    fleet->clients_.push_back(*std::move(client));
  }
  return fleet;
}

void AtOnce(size_t count, const std::function<void(size_t)>& fn) {
  std::vector<std::thread> threads;
  threads.reserve(count);
  for (size_t i = 0; i < count; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (std::thread& t : threads) t.join();
}

FleetRun OnEachTarget(std::function<Outcome(Invocation&)> run, TotalMaker total) {
  return [run = std::move(run), total = std::move(total)](FleetInvocation& invocation) {
    return RunEach(invocation, run, total);
  };
}

FleetRun StreamOnEachTarget(std::function<Outcome(Invocation&)> run) {
  return [run = std::move(run)](FleetInvocation& invocation) { return StreamEach(invocation, run); };
}

std::string ErrorJsonLine(const std::string& target, const Outcome& outcome) {
  return absl::StrCat("{\"target\":", JsonString(target), ",\"error\":{\"exit_code\":", static_cast<int>(outcome.code),
                      ",\"message\":", JsonString(outcome.message), "}}\n");
}

}  // namespace brrr::control
