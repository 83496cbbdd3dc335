// pollux::timer::TimeDriver: the one time layer over any Park (an I/O
// backend, or a plain ThreadParker when there is no I/O).
//
//   timer::TimeDriver drv;          // over its own ThreadParker: timers, no I/O
//   LocalExecutor ex(drv);          // declared after drv: destroyed first
//   auto entered = drv.enter();     // drv's TimerQueue is this thread's current one
//   ex.block_on(pollux::sleep(absl::Milliseconds(20)));
//
//   timer::TimeDriver timed(backend);   // over an I/O backend (what Runtime does)
//
// Purpose
//   It owns a TimerQueue (timer/timer_queue.h) and bounds every park of the
//   wrapped Park by the wheel's next expiry. It is the only copy of the paused
//   test clock's policy (DESIGN §5):
//
//   park():
//     update_now + process; if a timer fired, return (its task is runnable).
//     Paused clock: first look at the wrapped Park without blocking
//     (park(zero)); if it delivered anything (I/O, an unpark from another
//     thread), return without moving time, so a timeout around real I/O in
//     flight does not fire early. Else jump to the next timer and fire it
//     (auto_advance). Only with no timer that can fire does it block in the
//     wrapped Park, exactly like an unpaused park with no timers: never a
//     busy loop.
//     Running clock: park the wrapped Park until the next deadline (or with
//     no limit when no timer is set); then update_now + process.
//   poll_now(): the wrapped Park's poll_now, then update_now + process
//   (timers fire even while tasks keep the executor busy).
//   With no timer registered and the clock running, a tick can fire
//   nothing: park() skips process() and the reading before the wrapped
//   park (one clock read per tick instead of two, no wheel walk), and
//   poll_now() skips process(). now() is still updated once per tick.
//
// Entering: Sleep finds its TimerQueue through the thread's RuntimeContext,
// which runtime/ enters; without a runtime, keep the guard from enter() (a
// timer::CurrentTimerQueueGuard) alive while the executor runs.
//
// Lifetimes: the TimeDriver must outlive the executor that uses it (so every
// Sleep of that executor's tasks is dropped first), and the wrapped Park must
// outlive the TimeDriver.
//
// Thread-safety: like every Park, park/poll_now/queue() on the owner thread
// only; the Unparker from unparker() (the wrapped Park's) is thread-safe and
// may outlive the driver.
#ifndef POLLUX_TIMER_TIME_DRIVER_H_
#define POLLUX_TIMER_TIME_DRIVER_H_

#include <cstddef>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "executor/driver.h"
#include "executor/thread_parker.h"
#include "timer/timer_queue.h"

namespace pollux::timer {

// A Park that adds timers to any Park: owns a TimerQueue, bounds every park by
// it.
class TimeDriver final : public Park {
 public:
  // Timers over its own ThreadParker (no I/O).
  TimeDriver();
  // Timers over `inner` (which must outlive this driver).
  explicit TimeDriver(Park& inner);
  TimeDriver(const TimeDriver&) = delete;
  TimeDriver& operator=(const TimeDriver&) = delete;

  // Blocks until a timer fires, the wrapped Park delivers something, or
  // unpark() (see the header comment). `timeout` bounds it further.
  bool park(std::optional<absl::Duration> timeout) override;
  // Delivers ready I/O and fires the timers that are due; never blocks.
  void poll_now() override;
  // The wrapped Park's: thread-safe; ends the current or next park().
  std::shared_ptr<Unparker> unparker() override { return inner_->unparker(); }
  absl::Status status() const override { return inner_->status(); }

  // The driver's timer service (owner thread only).
  TimerQueue& queue() noexcept { return queue_; }
  // Makes queue() this thread's current TimerQueue until the guard dies.
  [[nodiscard]] CurrentTimerQueueGuard enter() noexcept { return CurrentTimerQueueGuard(&queue_); }

  // Diagnostics for tests: park() calls that may have blocked in the
  // wrapped Park (not the zero-timeout looks of a paused clock).
  size_t blocking_parks() const noexcept { return blocking_parks_; }

 private:
  bool nothing_can_fire() const noexcept {
    return queue_.active_timers() == 0 && !queue_.is_paused();
  }

  std::unique_ptr<ThreadParker> own_parker_;  // when there is no I/O
  Park* inner_;
  TimerQueue queue_;
  size_t blocking_parks_ = 0;
};

}  // namespace pollux::timer

#endif  // POLLUX_TIMER_TIME_DRIVER_H_
