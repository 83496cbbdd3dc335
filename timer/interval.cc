#include "timer/interval.h"

#include <cstdint>

#include "future/assert.h"
#include "timer/timer_queue.h"

namespace pollux {

Interval::Interval(Instant start, absl::Duration period) : sleep_(start), period_(period) {
  POLLUX_CHECK(period > absl::ZeroDuration(), "interval() needs a positive period");
}

Poll<Instant> Interval::poll_tick(Context& cx) {
  if (sleep_.poll(cx).is_pending()) return Pending{};
  const Instant scheduled = sleep_.deadline();
  // The Sleep's poll checked that this thread has a TimerQueue.
  const Instant now = timer::now();
  Instant next = scheduled + period_;
  if (now > next) {
    // Skip: drop the ticks that fell due while this one was overdue; the next
    // is the first point of the grid strictly after now.
    absl::Duration rem;
    const int64_t periods = absl::IDivDuration(now - scheduled, period_, &rem);
    next = scheduled + period_ * (periods + 1);
  }
  sleep_.reset(next);
  return Ready(scheduled);
}

void Interval::reset() noexcept { sleep_.reset(timer::now() + period_); }

Interval interval(absl::Duration period) { return Interval(timer::now(), period); }

Interval interval_at(Instant start, absl::Duration period) { return Interval(start, period); }

}  // namespace pollux
