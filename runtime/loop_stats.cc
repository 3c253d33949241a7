#include "runtime/loop_stats.h"

namespace brrr {

LoopStats& LoopStats::operator+=(const LoopStats& other) {
  // Labels first: each follows its figure, compared before the figure takes the larger value.
#define BRRR_ADD_LABEL(...) BRRR_LABEL_ADD((*this), other, __VA_ARGS__)
  BRRR_LOOP_LABELS(BRRR_ADD_LABEL)
#undef BRRR_ADD_LABEL
#define BRRR_ADD_FIGURE(...) BRRR_FIGURE_ADD((*this), other, __VA_ARGS__)
  BRRR_LOOP_FIGURES(BRRR_ADD_FIGURE)
#undef BRRR_ADD_FIGURE
#define BRRR_ADD_HISTOGRAM(name, unit, help) name += other.name;
  BRRR_LOOP_HISTOGRAMS(BRRR_ADD_HISTOGRAM)
#undef BRRR_ADD_HISTOGRAM
  ++summed;
  return *this;
}

}  // namespace brrr
