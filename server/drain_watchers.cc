#include "server/drain_watchers.h"

#include <utility>

namespace brrr::server {

uint64_t DrainWatchers::Add(std::function<void()> started) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  if (started_) {
    started();
  } else {
    watchers_.emplace(id, std::move(started));
  }
  return id;
}

void DrainWatchers::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(id);
}

void DrainWatchers::Started() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  for (auto& [id, started] : watchers_) started();
  watchers_.clear();
}

}  // namespace brrr::server
