#include "server/brrr-echo/echo_administered.h"

namespace brrr {

std::vector<EventLoop*> EchoAdministered::loops() const {
  std::vector<EventLoop*> loops;
  for (size_t i = 0; i < server_.loop_count(); ++i) loops.push_back(&server_.shard(i).loop());
  return loops;
}

}  // namespace brrr
