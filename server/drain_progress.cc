#include "server/drain_progress.h"

#include "absl/time/time.h"
#include "runtime/line_output.h"

namespace brrr::server {
namespace {

std::string Text(Duration d) { return absl::FormatDuration(absl::Nanoseconds(d.count())); }

}  // namespace

const char* DrainPhaseName(DrainPhase phase) {
  switch (phase) {
    case DrainPhase::kServing:
      return "serving";
    case DrainPhase::kGrace:
      return "grace";
    case DrainPhase::kFinishing:
      return "finishing";
    case DrainPhase::kClosing:
      return "closing";
  }
  return "unknown";
}

void DrainProgress::Started(Duration grace, Duration timeout) {
  timeout_ns_.store(timeout.count());
  had_grace_.store(grace > Duration::zero());
  if (started_.exchange(true)) return;
  if (grace > Duration::zero()) {
    PrintToStdout(
        "brrr-echo: drain: not ready (/readyz 503, health NOT_SERVING); still accepting for %s (--drain_grace)\n",
        Text(grace).c_str());
  }
}

void DrainProgress::LoopStoppedAccepting() {
  if (stopped_accepting_.fetch_add(1) + 1 != loops_ || !had_grace_.load()) return;
  PrintToStdout("brrr-echo: drain: no longer accepting; open connections have up to %s (--drain_timeout)\n",
                Text(Duration(timeout_ns_.load())).c_str());
}

void DrainProgress::LoopPastDeadline(uint64_t open) {
  open_at_deadline_.fetch_add(open);
  past_deadline_.fetch_add(1);
  Settled();
}

void DrainProgress::LoopDrainedInTime() { Settled(); }

void DrainProgress::Settled() {
  // A loop that drained in time counts too: with several loops, one usually empties first.
  if (settled_.fetch_add(1) + 1 != loops_ || past_deadline_.load() == 0) return;
  const uint64_t total = open_at_deadline_.load();
  PrintToStdout(
      "brrr-echo: drain: deadline: closing %llu open connections (echoing what was read, then shutting the write "
      "side)\n",
      static_cast<unsigned long long>(total));
}

DrainPhase DrainProgress::phase() const {
  if (past_deadline_.load() > 0) return DrainPhase::kClosing;
  if (stopped_accepting_.load() >= loops_) return DrainPhase::kFinishing;
  if (started_.load()) return DrainPhase::kGrace;
  return DrainPhase::kServing;
}

}  // namespace brrr::server
