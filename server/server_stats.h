// server_stats.h: every figure the echo server publishes per loop, declared once (see
// runtime/figures.h), and what is made from the list: the snapshot (ServerStats), the
// storage each shard writes (ShardCounters), the sum over loops, run-time descriptions.
//
//   ShardCounters counters;                  // the shard's loop thread writes
//   counters.bytes_in.add(n);
//   ServerStats s = counters.snapshot();     // any thread, no lock
//   total += s;
//
// Threads: each shard (loop) owns a ShardCounters and is its only writer; snapshot() may be
// called from any thread without locks (see runtime/single_writer.h).
#ifndef BRRR_SERVER_SERVER_STATS_H_
#define BRRR_SERVER_SERVER_STATS_H_

#include <cstdint>

#include "runtime/figures.h"

// F(name, kind, unit, source, help)
#define BRRR_ECHO_FIGURES(F)                                                                                  \
  F(connections_active, Gauge, Count, Stored, "Connections open now.")                                       \
  F(connections_accepted, Counter, Count, Stored, "Connections accepted since start.")                         \
  F(connections_refused, Counter, Count, Stored, "Connections closed at once: --max_connections reached.")     \
  F(bytes_in, Counter, Bytes, Stored, "Bytes received from clients.")                                          \
  F(bytes_out, Counter, Bytes, Stored, "Bytes sent to clients.")                                               \
  F(messages_in, Counter, Count, Stored, "Receive completions (chunks in).")                                   \
  F(messages_out, Counter, Count, Stored, "Send completions (chunks out).")                                    \
  F(reads_paused, Counter, Count, Stored, "Times a connection stopped reading at its --high_water mark.")      \
  F(accept_errors, Counter, Count, Stored,                                                                     \
    "Accept failures (out of descriptors...); accepting pauses and retries.")                                  \
  F(reads_throttled, Counter, Count, Stored, "Times a connection stopped reading to keep to a throttle.")      \
  F(connections_closed_idle, Counter, Count, Stored, "Connections closed after --idle_timeout of silence.")     \
  F(connections_closed_error, Counter, Count, Stored, "Connections closed on an error (reset, broken pipe...).") \
  F(connections_closed_drain, Counter, Count, Stored, "Connections still open at the drain deadline, closed.")  \
  F(connections_closed_drain_clean, Counter, Count, Stored,                                                    \
    "Of those closed at the drain deadline: cleanly (everything read echoed, then end of stream; a client "    \
    "that sends on past the linger gets a reset from the kernel then).")                                       \
  F(connections_closed_drain_reset, Counter, Count, Stored,                                                    \
    "Of those closed at the drain deadline: with a reset (echoes not taken in time, or input past the linger).") \
  F(bytes_discarded, Counter, Bytes, Stored,                                                                   \
    "Bytes received after a connection shut its write side at the drain deadline: not echoed.")               \
  F(connections_closed_by_admin, Counter, Count, Stored, "Connections closed by the admin plane's CloseConnection.") \
  F(connections_closed_by_signal, Counter, Count, Stored,                                                      \
    "Connections closed at once by a second SIGTERM/SIGINT during a drain.")                                   \
  F(connections_closed_unwatchable, Counter, Count, Stored,                                                    \
    "Connections closed at once because the backend cannot watch their descriptor (select: FD_SETSIZE).")      \
  F(connections_reset_in_backlog, Counter, Count, Stored,                                                      \
    "Clients reset in a listener's backlog as a drain closed it: no descriptor was free to accept them.")      \
  F(foreign_listeners, Gauge, Count, Stored,                                                                   \
    "Listeners of other processes on the echo port beside this server's: they take part of the new "           \
    "connections (loop 0 looks every second; not with --share_port).")                                         \
  F(accepting, Gauge, Flag, Stored, "Whether the loop accepts new connections now (not paused or draining).")

namespace brrr::server {

struct ServerStats {
  BRRR_ECHO_FIGURES(BRRR_FIGURE_SNAPSHOT_MEMBER)

  // Adds another loop's figures (all are summed; `accepting` then counts loops accepting).
  ServerStats& operator+=(const ServerStats& other);
};

class ShardCounters {
 public:
  BRRR_ECHO_FIGURES(BRRR_FIGURE_STORAGE)

  ServerStats snapshot() const;
};

inline constexpr FigureInfo kEchoFigures[] = {BRRR_ECHO_FIGURES(BRRR_FIGURE_INFO)};

// Calls fn(const FigureInfo&, double value) for every figure of `s`, in list order.
template <typename Fn>
void ForEachFigure(const ServerStats& s, Fn&& fn) {
  BRRR_ECHO_FIGURES(BRRR_FIGURE_VISIT)
}

}  // namespace brrr::server

#endif  // BRRR_SERVER_SERVER_STATS_H_
