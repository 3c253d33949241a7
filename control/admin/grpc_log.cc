#include "control/admin/grpc_log.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpc/support/log.h"
#include "runtime/line_output.h"

namespace brrr::control {
namespace {

char SeverityLetter(gpr_log_severity severity) {
  switch (severity) {
    case GPR_LOG_SEVERITY_DEBUG:
      return 'D';
    case GPR_LOG_SEVERITY_INFO:
      return 'I';
    case GPR_LOG_SEVERITY_ERROR:
      return 'E';
  }
  return '?';
}

void WriteGrpcLine(gpr_log_func_args* args) {
  const char* file = args->file != nullptr ? args->file : "?";
  if (const char* slash = std::strrchr(file, '/')) file = slash + 1;
  std::string line = absl::StrFormat("%c%s %d %s:%d] %s", SeverityLetter(args->severity),
                                     absl::FormatTime("%m%d %H:%M:%E6S", absl::Now(), absl::LocalTimeZone()),
                                     static_cast<int>(::syscall(SYS_gettid)), file, args->line,
                                     args->message != nullptr ? args->message : "");
  LineOutput::Process().Write(OutputStream::kStderr, std::move(line));
  if (args->severity == GPR_LOG_SEVERITY_ERROR) (void)LineOutput::Process().Flush(kGrpcErrorLinePatience);
}

}  // namespace

void RouteGrpcLogsThroughLineOutput() { gpr_set_log_function(WriteGrpcLine); }

}  // namespace brrr::control
