// The worst exit code over several targets, in brrrctl's documented order of severity, and the
// stderr line that names the targets that were not ok.
#include "control/brrrctl/fleet_run.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace brrr::control {
namespace {

Outcome With(ExitCode code) { return {code, code == ExitCode::kOk ? "" : "what happened"}; }

TEST(SeverityTest, DocumentedOrder) {
  const std::vector<ExitCode> order = {ExitCode::kOk, ExitCode::kNotServing, ExitCode::kServerError,
                                       ExitCode::kUnauthenticated, ExitCode::kUnreachable, ExitCode::kUsage};
  for (size_t i = 1; i < order.size(); ++i) {
    EXPECT_LT(Severity(order[i - 1]), Severity(order[i])) << static_cast<int>(order[i]);
  }
}

TEST(WorstOutcomeTest, TheWorstCodeAndTheTargetsNotOk) {
  const std::vector<std::string> targets = {"a:1", "b:2", "c:3", "d:4"};
  Outcome all_ok = WorstOutcome(targets, {With(ExitCode::kOk), With(ExitCode::kOk), With(ExitCode::kOk), With(ExitCode::kOk)});
  EXPECT_TRUE(all_ok.ok());
  EXPECT_EQ(all_ok.message, "");

  Outcome mixed = WorstOutcome(targets, {With(ExitCode::kNotServing), With(ExitCode::kOk),
                                         With(ExitCode::kUnreachable), With(ExitCode::kServerError)});
  EXPECT_EQ(mixed.code, ExitCode::kUnreachable);
  EXPECT_EQ(mixed.message, "3 of 4 targets not ok: a:1 (exit 5), c:3 (exit 3), d:4 (exit 1)");

  EXPECT_EQ(WorstOutcome(targets, {With(ExitCode::kUnauthenticated), With(ExitCode::kServerError),
                                   With(ExitCode::kNotServing), With(ExitCode::kOk)})
                .code,
            ExitCode::kUnauthenticated);
  // A usage error is the command line's, not a target's: said as it is.
  Outcome usage = WorstOutcome(targets, {With(ExitCode::kUnreachable), Outcome::Usage("inject needs --duration"),
                                         With(ExitCode::kOk), With(ExitCode::kOk)});
  EXPECT_EQ(usage.code, ExitCode::kUsage);
  EXPECT_EQ(usage.message, "inject needs --duration");
}

TEST(ErrorJsonLineTest, TargetExitCodeAndEscapedMessage) {
  EXPECT_EQ(ErrorJsonLine("127.0.0.1:5001", {ExitCode::kUnreachable, "cannot reach \"it\""}),
            "{\"target\":\"127.0.0.1:5001\",\"error\":{\"exit_code\":3,\"message\":\"cannot reach \\\"it\\\"\"}}\n");
}

}  // namespace
}  // namespace brrr::control
