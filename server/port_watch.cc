#include "server/port_watch.h"

#include <string>
#include <utility>
#include <vector>

#include "runtime/line_output.h"
#include "server/port_claim.h"

namespace brrr::server {

PortWatch::PortWatch(EventLoop& loop, SocketAddress address, std::set<uint64_t> ours, SingleWriter<uint64_t>& count)
    : loop_(loop), address_(std::move(address)), ours_(std::move(ours)), count_(count) {
  if (absl::StatusOr<UniqueFd> diag = OpenSockDiag(); diag.ok()) diag_ = *std::move(diag);
}

void PortWatch::start() { look(); }

void PortWatch::stop() { next_.cancel(); }

void PortWatch::look() {
  absl::StatusOr<UniqueFd> diag = diag_.valid() ? std::move(diag_) : OpenSockDiag();
  absl::StatusOr<std::vector<ForeignListener>> others =
      diag.ok() ? ForeignListeners(address_, ours_, diag->get()) : diag.status();
  if (others.ok()) diag_ = *std::move(diag);  // kept; after a failure it may hold the rest of a dump
  if (!others.ok()) {
    if (!failure_reported_) {
      failure_reported_ = true;
      PrintToStderr("brrr-echo: cannot look for other listeners on %s: %s\n", address_.ToString().c_str(),
                    std::string(others.status().message()).c_str());
    }
  } else {
    std::set<uint64_t> now;
    for (const ForeignListener& other : *others) now.insert(other.inode);
    count_.store(now.size());  // before the lines: whoever reads one finds the figure as it says
    for (const ForeignListener& other : *others) {
      if (seen_.count(other.inode) != 0) continue;
      PrintToStderr(
          "brrr-echo: a listener that is not this server's joined %s (socket inode %llu, user %u): the kernel now "
          "gives it part of the new connections (SO_REUSEPORT lets a process of the same user join; expected only "
          "from a brrr-echo started with --share_port)\n",
          address_.ToString().c_str(), static_cast<unsigned long long>(other.inode), other.uid);
    }
    for (uint64_t inode : seen_) {
      if (now.count(inode) == 0) {
        PrintToStderr("brrr-echo: the other listener on %s (socket inode %llu) is gone\n", address_.ToString().c_str(),
                      static_cast<unsigned long long>(inode));
      }
    }
    seen_ = std::move(now);
  }
  next_ = loop_.call_later(kPortWatchEvery, [this] { look(); }, "echo:port_watch");
}

}  // namespace brrr::server
