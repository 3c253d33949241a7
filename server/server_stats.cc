#include "server/server_stats.h"

namespace brrr::server {

ServerStats& ServerStats::operator+=(const ServerStats& other) {
#define BRRR_ADD_FIGURE(...) BRRR_FIGURE_ADD((*this), other, __VA_ARGS__)
  BRRR_ECHO_FIGURES(BRRR_ADD_FIGURE)
#undef BRRR_ADD_FIGURE
  return *this;
}

ServerStats ShardCounters::snapshot() const {
  ServerStats s;
#define BRRR_LOAD_FIGURE(...) BRRR_FIGURE_LOAD(s, (*this), __VA_ARGS__)
  BRRR_ECHO_FIGURES(BRRR_LOAD_FIGURE)
#undef BRRR_LOAD_FIGURE
  return s;
}

}  // namespace brrr::server
