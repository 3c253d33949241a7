#include "server/server_stats.h"

namespace brrr::server {

ServerStats& ServerStats::operator+=(const ServerStats& o) {
  connections_accepted += o.connections_accepted;
  connections_active += o.connections_active;
  connections_refused += o.connections_refused;
  connections_closed_idle += o.connections_closed_idle;
  connections_closed_error += o.connections_closed_error;
  connections_closed_drain += o.connections_closed_drain;
  connections_closed_by_admin += o.connections_closed_by_admin;
  accept_errors += o.accept_errors;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  messages_in += o.messages_in;
  messages_out += o.messages_out;
  reads_paused += o.reads_paused;
  reads_throttled += o.reads_throttled;
  loops_accepting += o.loops_accepting;
  return *this;
}

ServerStats ShardCounters::snapshot() const {
  ServerStats s;
  s.connections_accepted = connections_accepted.load();
  s.connections_active = connections_active.load();
  s.connections_refused = connections_refused.load();
  s.connections_closed_idle = connections_closed_idle.load();
  s.connections_closed_error = connections_closed_error.load();
  s.connections_closed_drain = connections_closed_drain.load();
  s.connections_closed_by_admin = connections_closed_by_admin.load();
  s.accept_errors = accept_errors.load();
  s.bytes_in = bytes_in.load();
  s.bytes_out = bytes_out.load();
  s.messages_in = messages_in.load();
  s.messages_out = messages_out.load();
  s.reads_paused = reads_paused.load();
  s.reads_throttled = reads_throttled.load();
  s.loops_accepting = accepting.load() ? 1 : 0;
  return s;
}

}  // namespace brrr::server
