// top_screen.h: `brrrctl top` on a terminal, drawn with ncurses: a title bar, one row per loop
// (and one for all loops) with sparklines of the last minute's rates, the latest stalls with
// their stack frames, the injections and throttles, and the busiest sockets; the keys on the
// last line. With several targets: a row per target (its loops together) and the fleet's total,
// then every target's stalls, injections, throttles and busiest sockets marked with its target;
// or one target's own view (TopScreenState::target). Everything is laid out again for the terminal's size at each Draw, so a resized
// terminal (KEY_RESIZE from ReadKey) is redrawn at its new size.
//
//   absl::StatusOr<std::unique_ptr<TopScreen>> screen = TopScreen::Open();
//   (*screen)->Draw(model.View(options), state);
//   int key = (*screen)->ReadKey(absl::Milliseconds(100));   // ERR when none came
//
// The sparklines are Unicode blocks when the locale's character set is UTF-8, ASCII otherwise.
//
// Threads: one thread, the one that opened it. One screen at a time (ncurses is global).
// Ownership: the screen owns the terminal's state from Open until it is destroyed, which
// puts the terminal back as it was.
#ifndef BRRR_CONTROL_TOP_SCREEN_H_
#define BRRR_CONTROL_TOP_SCREEN_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/brrrctl/top_model.h"

struct screen;  // ncurses' SCREEN

namespace brrr::control {

// What the screen shows besides the figures.
struct TopScreenState {
  top::SortKey sort = top::SortKey::kLoop;
  // The loops shown; empty: every loop.
  std::vector<uint32_t> loops;
  // Several targets: the one shown on its own (an index into the views); unset: all of them.
  std::optional<size_t> target;
  bool paused = false;
  absl::Duration interval = absl::Seconds(1);
  absl::Duration history = absl::Minutes(1);
  // Stack frames shown per stall.
  uint32_t frames = 5;
  // The sparklines' right edge.
  absl::Time now;
};

// ReadKey's answers besides characters (ncurses' codes, so that callers need not include it).
inline constexpr int kNoKey = -1;  // ERR
extern const int kKeyLeft;
extern const int kKeyRight;
extern const int kKeyResize;

class TopScreen {
 public:
  // Takes over the terminal on standard input and output. Errors (FailedPrecondition): there is
  // no terminal, or ncurses cannot draw on it: its type ($TERM) is unknown, or it cannot move
  // the cursor (TERM=dumb). The terminal is left as it was.
  static absl::StatusOr<std::unique_ptr<TopScreen>> Open();
  ~TopScreen();
  TopScreen(const TopScreen&) = delete;
  TopScreen& operator=(const TopScreen&) = delete;

  // `total`: the fleet's, drawn with several targets (none: one target's view after another).
  void Draw(const std::vector<top::TargetView>& views, const TopScreenState& state,
            const top::FleetTotal* total = nullptr);
  // The next key (a character, kKeyLeft, kKeyRight, kKeyResize after a resize), or kNoKey
  // when none came within `timeout`.
  int ReadKey(absl::Duration timeout);

 private:
  TopScreen(::screen* terminal, bool unicode) : terminal_(terminal), unicode_(unicode) {}

  ::screen* terminal_;
  bool unicode_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_TOP_SCREEN_H_
