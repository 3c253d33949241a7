// command_help.h: brrrctl's help texts (`brrrctl --help`, `brrrctl help COMMAND`), made from
// the command table (commands.h) and the global flags, so they cannot drift from the code.
//
// Threads: pure functions of constant tables.
#ifndef BRRR_CONTROL_COMMAND_HELP_H_
#define BRRR_CONTROL_COMMAND_HELP_H_

#include <string>
#include <vector>

#include "control/brrrctl/commands.h"

namespace brrr::control {

// The flags every command takes: --target, --token_file, --json, --timeout.
const std::vector<FlagUse>& GlobalFlags();

// Everything: usage, commands, global flags, value syntax, JSON, exit codes.
std::string GeneralHelp();
// One command: synopsis, what it does, its flags, and a pointer to the global ones.
std::string CommandHelp(const Command& command);
// The hint printed after a usage error.
std::string UsageHint(const Command* command);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_COMMAND_HELP_H_
