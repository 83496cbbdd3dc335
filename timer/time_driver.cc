#include "timer/time_driver.h"

#include <algorithm>
#include <optional>

namespace pollux::timer {

namespace {
// A far deadline just costs an extra wake-up; it keeps the wrapped Park's
// timeout far from any overflow.
constexpr absl::Duration kMaxParkTimeout = absl::Hours(1);
}  // namespace

TimeDriver::TimeDriver() : own_parker_(std::make_unique<ThreadParker>()), inner_(own_parker_.get()) {}

TimeDriver::TimeDriver(Park& inner) : inner_(&inner) {}

bool TimeDriver::park(std::optional<absl::Duration> timeout) {
  if (nothing_can_fire()) {
    // No timer registered and the clock not paused: nothing to fire, so no
    // wheel walk and no reading before the park. The one reading after it
    // keeps now() (the tick's cached time that spawns stamp tasks with)
    // fresh.
    ++blocking_parks_;
    const bool woke = inner_->park(timeout);
    queue_.update_now();
    return woke;
  }
  queue_.update_now();
  if (queue_.process() > 0) return true;
  if (queue_.is_paused()) {
    // Anything real (I/O completed, a wake from another thread) comes
    // before time jumps.
    if (inner_->park(absl::ZeroDuration())) return true;
    if (queue_.auto_advance()) return true;  // jumped to the next timer and fired it
    // No timer that can ever fire: only I/O or another thread can make
    // progress. Block, like an unpaused park with no timers.
    ++blocking_parks_;
    const bool woke = inner_->park(timeout);
    queue_.process();  // a paused clock does not move, but advance() may have
    return woke;
  }
  std::optional<absl::Duration> wait = timeout;
  if (const std::optional<Instant> next = queue_.next_deadline()) {
    const absl::Duration until = std::min(std::max(*next - queue_.now(), absl::ZeroDuration()),
                                          kMaxParkTimeout);
    wait = wait ? std::min(*wait, until) : until;
  }
  ++blocking_parks_;
  bool woke = inner_->park(wait);
  queue_.update_now();
  if (queue_.process() > 0) woke = true;
  return woke;
}

void TimeDriver::poll_now() {
  inner_->poll_now();
  queue_.update_now();
  if (nothing_can_fire()) return;
  queue_.process();
}

}  // namespace pollux::timer
