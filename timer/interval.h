// interval(period), interval_at(start, period): a stream of ticks at
// start, start + period, start + 2 * period, ...
//
//   pollux::Interval iv = pollux::interval(absl::Seconds(1));
//   for (;;) {
//     Instant scheduled = co_await iv.tick();   // the first tick is immediate
//     flush_stats();
//   }
//
// Each tick() is a future whose Output is the tick's SCHEDULED time (start +
// k * period), which is never later than the moment it completes. Ticks are
// measured on the timer clock (timer/timer_queue.h), so they follow a paused
// test clock. interval(period) starts at timer::now(), so its first tick
// completes on its first poll; interval_at(start, period) with a future
// `start` waits for it. period must be positive (checked).
//
// Missed ticks: Skip
//   When the consumer falls behind (its work between ticks, or a stalled
//   thread, outlasted a period), the overdue tick completes at once, reporting
//   its scheduled time; the ticks that fell due while it was overdue are
//   dropped, not replayed, and the following tick is the first start + k *
//   period strictly after now. E.g. period 10 ms, ticks at 0 and 10, then a
//   35 ms stall until 45: tick() returns 20 immediately, then 50 (not 30 and
//   40 in a burst). This is tokio's MissedTickBehavior::Skip.
//   Why Skip rather than tokio's default Burst: a burst of catch-up ticks
//   after a stall multiplies load exactly when the process is already behind
//   (a stalled event loop then spends its recovery on stale heartbeats or
//   flushes), and periodic work here (stats, keep-alives, retries) wants "at
//   most once per period, on the original grid" rather than a count of
//   ticks. Skip also keeps the grid, unlike Delay, so ticks stay aligned to
//   `start`. Code that needs every tick can compute how many were missed from
//   the returned scheduled times.
//
// Thread-safety: as Sleep: an Interval is ticked and dropped on the thread
// of the TimerQueue it registered with. It may move only while no tick() is
// pending on it (checked: it holds a Sleep), and must outlive its Tick futures.
//
// Cancellation: dropping a Tick future before Ready loses nothing: the
// Interval keeps its timer, and the next tick() completes at the same
// scheduled time (at once if it is already due). Dropping the Interval
// unregisters its timer.
#ifndef POLLUX_TIMER_INTERVAL_H_
#define POLLUX_TIMER_INTERVAL_H_

#include "absl/time/time.h"
#include "future/future.h"
#include "timer/instant.h"
#include "timer/sleep.h"

namespace pollux {

// Ticks at start + k * period; missed ticks are skipped (see above).
class Interval {
 public:
  // The future returned by tick(); Output = the tick's scheduled Instant.
  // Cancellation: see the header comment (dropping it loses nothing).
  class [[nodiscard]] Tick {
   public:
    using Output = Instant;
    explicit Tick(Interval* iv) noexcept : interval_(iv) {}
    Poll<Instant> poll(Context& cx) { return interval_->poll_tick(cx); }

   private:
    Interval* interval_;
  };

  // Ticks at start, start + period, ... (period > 0, checked).
  Interval(Instant start, absl::Duration period);
  Interval(Interval&&) noexcept = default;  // only while no tick is registered
  Interval& operator=(Interval&&) = delete;

  // A future for the next tick (see the header comment).
  [[nodiscard]] Tick tick() noexcept { return Tick(this); }
  // What Tick::poll does: Ready with the scheduled time of the next tick.
  // A leaf poll with the Sleep's budget protocol.
  Poll<Instant> poll_tick(Context& cx);
  // Restarts the grid: the next tick is at timer::now() + period.
  void reset() noexcept;

  absl::Duration period() const noexcept { return period_; }
  // The scheduled time of the next tick.
  Instant next_tick() const noexcept { return sleep_.deadline(); }

 private:
  Sleep sleep_;  // sleeps until the next scheduled tick
  absl::Duration period_;
};

// Ticks every `period` starting now (the first tick is immediate).
[[nodiscard]] Interval interval(absl::Duration period);
// Ticks every `period` starting at `start`.
[[nodiscard]] Interval interval_at(Instant start, absl::Duration period);

}  // namespace pollux

#endif  // POLLUX_TIMER_INTERVAL_H_
