// outcome.h: how a brrrctl command ends: the exit code scripts branch on, and for a failure
// the message brrrctl prints on stderr.
//
//   if (!duration.ok()) return Outcome::Usage("--duration=1.5ms: not a whole number of milliseconds");
//   return Outcome::Ok();
//
// The exit codes are brrrctl's contract (brrrctl --help lists them); never renumber them.
#ifndef BRRR_CONTROL_OUTCOME_H_
#define BRRR_CONTROL_OUTCOME_H_

#include <string>
#include <utility>

namespace brrr::control {

enum class ExitCode : int {
  kOk = 0,
  // The server answered with an error (INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED...).
  kServerError = 1,
  // Unknown command or flag, a bad value, an unreadable --token_file.
  kUsage = 2,
  // No connection to --target (UNAVAILABLE or DEADLINE_EXCEEDED before the server answered).
  kUnreachable = 3,
  // The server wants a token, or another one (UNAUTHENTICATED).
  kUnauthenticated = 4,
  // `health`: the server answered, and it is not SERVING (draining, for one).
  kNotServing = 5,
  // The output could not be written (stdout: a full disk, an I/O error): brrrctl's main exits
  // with it whatever the command returned (output.h).
  kOutputFailed = 6,
};

struct Outcome {
  ExitCode code = ExitCode::kOk;
  // What happened, for stderr (without the "brrrctl: " prefix); empty when there is nothing to say.
  std::string message;

  static Outcome Ok() { return {}; }
  static Outcome Usage(std::string message) { return {ExitCode::kUsage, std::move(message)}; }
  static Outcome ServerError(std::string message) { return {ExitCode::kServerError, std::move(message)}; }

  bool ok() const { return code == ExitCode::kOk; }
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_OUTCOME_H_
