// port_watch.h: notices a process that joins the echo port after the server has started.
//
// brrr-echo's listeners are a SO_REUSEPORT group, and Linux lets any process of the same user
// join it at any time; the kernel then hands that process part of the new connections.
// ClaimPort and CheckSoleListener (port_claim.h) keep the port to one server at start; the
// watch looks every second after that (ForeignListeners: one sock_diag dump of the port's
// listeners), says on stderr when a listener that is not the server's joins or leaves, and
// publishes how many there are. brrr-echo watches unless --share_port asked to share. The watch
// opens its sock_diag socket when it is made and keeps it, so a server whose connections have
// taken every other descriptor still looks (opened anew only after a look that failed).
//
//   PortWatch watch(loop, address, InodesOf(listener_fds), counters.foreign_listeners);
//   watch.start();  // loop thread
//   watch.stop();   // loop thread, when the listeners close (the drain)
//
// Threads: everything on `loop`'s thread; `count` may be read from any thread.
#ifndef BRRR_SERVER_PORT_WATCH_H_
#define BRRR_SERVER_PORT_WATCH_H_

#include <cstdint>
#include <set>

#include "runtime/event_loop.h"
#include "runtime/single_writer.h"
#include "runtime/socket_address.h"
#include "runtime/unique_fd.h"

namespace brrr::server {

// How often the watch looks.
inline constexpr Duration kPortWatchEvery = std::chrono::seconds(1);

class PortWatch {
 public:
  // Watches `address` (the server's, with its port), whose listeners of this server are the
  // sockets with inodes `ours`. `count` gets the number of the others.
  PortWatch(EventLoop& loop, SocketAddress address, std::set<uint64_t> ours, SingleWriter<uint64_t>& count);
  PortWatch(const PortWatch&) = delete;
  PortWatch& operator=(const PortWatch&) = delete;

  // Looks now, then every kPortWatchEvery until stop().
  void start();
  void stop();

 private:
  void look();

  EventLoop& loop_;
  const SocketAddress address_;
  const std::set<uint64_t> ours_;
  SingleWriter<uint64_t>& count_;
  std::set<uint64_t> seen_;  // the others' inodes at the last look
  bool failure_reported_ = false;
  UniqueFd diag_;  // the sock_diag socket every look asks through
  TimerHandle next_;
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_PORT_WATCH_H_
