// brrrctl_flags.h: every flag of brrrctl, global and per command. Several commands share a flag
// (--loop, --count, --interval); each command's help (commands.h) says what it means there,
// and a flag given to a command that does not take it is a usage error.
#ifndef BRRR_CONTROL_BRRRCTL_FLAGS_H_
#define BRRR_CONTROL_BRRRCTL_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"
#include "control/brrrctl/cli_values.h"

// Global.
ABSL_DECLARE_FLAG(std::string, target);
ABSL_DECLARE_FLAG(std::string, targets_file);
ABSL_DECLARE_FLAG(std::string, token_file);
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(absl::Duration, timeout);

// Per command.
ABSL_DECLARE_FLAG(brrr::control::LoopList, loop);
ABSL_DECLARE_FLAG(uint32_t, count);
ABSL_DECLARE_FLAG(absl::Duration, interval);
ABSL_DECLARE_FLAG(absl::Duration, duration);
ABSL_DECLARE_FLAG(std::string, set);
ABSL_DECLARE_FLAG(uint32_t, limit);
ABSL_DECLARE_FLAG(brrr::control::Quantity, conn_rate);
ABSL_DECLARE_FLAG(brrr::control::Quantity, total_rate);
ABSL_DECLARE_FLAG(brrr::control::Quantity, accept_rate);
ABSL_DECLARE_FLAG(brrr::control::Quantity, max_connections);
ABSL_DECLARE_FLAG(bool, pause);
ABSL_DECLARE_FLAG(bool, resume);
ABSL_DECLARE_FLAG(bool, yes);
ABSL_DECLARE_FLAG(bool, include_recent);
ABSL_DECLARE_FLAG(bool, in_progress);
ABSL_DECLARE_FLAG(uint32_t, frames);
ABSL_DECLARE_FLAG(std::string, service);
ABSL_DECLARE_FLAG(std::string, peer);

#endif  // BRRR_CONTROL_BRRRCTL_FLAGS_H_
