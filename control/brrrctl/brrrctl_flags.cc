#include "control/brrrctl/brrrctl_flags.h"

#include "absl/flags/flag.h"

// The help strings here are generic; `brrrctl help COMMAND` prints each command's own.
ABSL_FLAG(std::string, target, "127.0.0.1:5001",
          "The admin plane: HOST:PORT of brrr-echo --admin_port; several, comma-separated");
ABSL_FLAG(std::string, targets_file, "", "A file of admin planes, one HOST:PORT per line");
ABSL_FLAG(std::string, token_file, "", "A file holding the admin token, sent as \"authorization: Bearer <token>\"");
ABSL_FLAG(bool, json, false, "One JSON object per line");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(5), "Deadline of each call, and of connecting for streams");

ABSL_FLAG(brrr::control::LoopList, loop, {}, "Loop indexes, comma-separated");
ABSL_FLAG(uint32_t, count, 0, "How many");
ABSL_FLAG(absl::Duration, interval, absl::ZeroDuration(), "Time between two samples or runs");
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(), "How long each injected run lasts");
ABSL_FLAG(std::string, set, "all", "Which sockets: all, read, write or neither");
ABSL_FLAG(uint32_t, limit, 0, "At most this many sockets");
ABSL_FLAG(brrr::control::Quantity, conn_rate, {}, "Bytes per second per connection; 0: unlimited");
ABSL_FLAG(brrr::control::Quantity, total_rate, {}, "Bytes per second over all connections; 0: unlimited");
ABSL_FLAG(brrr::control::Quantity, accept_rate, {}, "New connections per second; 0: unlimited");
ABSL_FLAG(brrr::control::Quantity, max_connections, {}, "Connections open at once");
ABSL_FLAG(bool, pause, false, "Pause accepting");
ABSL_FLAG(bool, resume, false, "Resume accepting");
ABSL_FLAG(bool, yes, false, "Drain every one of several targets");
ABSL_FLAG(bool, include_recent, false, "Send the stalls each loop remembers first");
ABSL_FLAG(bool, in_progress, false, "Also show stalls while they last, at each stack sample");
ABSL_FLAG(uint32_t, frames, 8, "Stack frames shown per stall");
ABSL_FLAG(std::string, service, "", "The service to check; empty: the server as a whole");
ABSL_FLAG(std::string, peer, "", "The connection's peer address, HOST:PORT");
