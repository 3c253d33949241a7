// server_stats.h: what an echo server counts, per loop, readable from any thread.
//
// Each shard (loop) owns a ShardCounters and is its only writer; snapshot() may be called from
// any thread without locks (see runtime/single_writer.h).
#ifndef BRRR_SERVER_SERVER_STATS_H_
#define BRRR_SERVER_SERVER_STATS_H_

#include <cstdint>

#include "runtime/single_writer.h"

namespace brrr::server {

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_active = 0;
  uint64_t connections_refused = 0;   // closed at once: --max_connections reached
  uint64_t connections_closed_idle = 0;
  uint64_t connections_closed_error = 0;  // reset, broken pipe...
  uint64_t connections_closed_drain = 0;  // still open at the drain deadline
  uint64_t connections_closed_by_admin = 0;  // the admin plane's CloseConnection
  uint64_t accept_errors = 0;         // EMFILE, ENFILE...: accepting pauses and retries
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t messages_in = 0;   // chunks received (one receive completion each)
  uint64_t messages_out = 0;  // sends completed
  uint64_t reads_paused = 0;  // times a connection stopped reading at its high-water mark
  uint64_t reads_throttled = 0;  // times a connection stopped reading to keep to a rate
  uint64_t loops_accepting = 0;  // loops whose accept loop runs (0 or 1 for one loop)

  ServerStats& operator+=(const ServerStats& o);
};

class ShardCounters {
 public:
  SingleWriter<uint64_t> connections_accepted;
  SingleWriter<uint64_t> connections_active;
  SingleWriter<uint64_t> connections_refused;
  SingleWriter<uint64_t> connections_closed_idle;
  SingleWriter<uint64_t> connections_closed_error;
  SingleWriter<uint64_t> connections_closed_drain;
  SingleWriter<uint64_t> connections_closed_by_admin;
  SingleWriter<uint64_t> accept_errors;
  SingleWriter<uint64_t> bytes_in;
  SingleWriter<uint64_t> bytes_out;
  SingleWriter<uint64_t> messages_in;
  SingleWriter<uint64_t> messages_out;
  SingleWriter<uint64_t> reads_paused;
  SingleWriter<uint64_t> reads_throttled;
  SingleWriter<bool> accepting;  // the accept loop runs (not paused, not draining)

  ServerStats snapshot() const;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_SERVER_STATS_H_
