// pollux::timer::TimeDriver: a Driver with timers and no I/O.
//
//   timer::TimeDriver drv;
//   LocalExecutor ex(drv);          // declared after drv: destroyed first
//   auto entered = drv.enter();     // drv's TimerQueue is this thread's current one
//   ex.block_on(pollux::sleep(absl::Milliseconds(20)));
//
// Purpose
//   For executors that need sleep/timeout/interval but no io_uring (tests,
//   compute-only programs). It owns a TimerQueue and parks on a ThreadParker
//   (executor/thread_parker.h) with a timeout bounded by the next timer. The
//   io_uring driver embeds a TimerQueue the same way and bounds its ring wait
//   instead; the runtime enters it automatically.
//
//   park():
//     update_now + process; if a timer fired, return (its task is runnable).
//     Paused clock: if an unpark is pending (a task was woken from another
//     thread), return without moving time; else auto_advance() (jump to the
//     next timer and fire it), and only with no timer at all park until
//     unpark(). So a paused test runs through hours of timers instantly, but
//     only when nothing else is runnable.
//     Running clock: park_timeout(next_deadline - now), or park() with no
//     timers; then update_now + process.
//   poll_nonblocking(): update_now + process (timers fire even while tasks
//     keep the executor busy).
//
// Entering: Sleep finds its TimerQueue through the thread's current queue,
// which the executor does not set (executor/ knows nothing of time). Keep the
// guard from enter() (a timer::CurrentTimerQueueGuard) alive while the
// executor runs on this thread; `timer::CurrentTimerQueueGuard g(&drv.queue());`
// is the same thing spelled out.
//
// Lifetimes: the TimeDriver must outlive the executor that uses it (so every
// Sleep of that executor's tasks is dropped first).
//
// Thread-safety: like every Driver, park/poll_nonblocking/queue() on the owner
// thread only; the Unparker from unparker() is thread-safe and may outlive the
// driver.
#ifndef POLLUX_TIMER_TIME_DRIVER_H_
#define POLLUX_TIMER_TIME_DRIVER_H_

#include <atomic>
#include <memory>

#include "executor/driver.h"
#include "executor/thread_parker.h"
#include "future/internal/atomic.h"
#include "timer/timer_queue.h"

namespace pollux::timer {

class TimeDriver final : public Driver {
 public:
  TimeDriver();
  TimeDriver(const TimeDriver&) = delete;
  TimeDriver& operator=(const TimeDriver&) = delete;

  // Blocks until a timer fires or unpark() is called (see the header comment).
  void park() override;
  // Fires the timers that are due; never blocks.
  void poll_nonblocking() override;
  // Thread-safe; ends the current or next park().
  std::shared_ptr<Unparker> unparker() override { return unparker_; }

  // The driver's timer service (owner thread only).
  TimerQueue& queue() noexcept { return queue_; }
  // Makes queue() this thread's current TimerQueue until the guard dies.
  [[nodiscard]] CurrentTimerQueueGuard enter() noexcept { return CurrentTimerQueueGuard(&queue_); }

  // Diagnostics for tests: park() calls that blocked in the ThreadParker.
  size_t blocking_parks() const noexcept { return blocking_parks_; }

 private:
  // Forwards to the ThreadParker's unparker after recording that an unpark
  // happened, so a paused park() can tell "woken from outside" apart from
  // "idle" before it moves time.
  struct RecordingUnparker final : Unparker {
    explicit RecordingUnparker(std::shared_ptr<Unparker> inner) : inner(std::move(inner)) {}
    void unpark() noexcept override {
      // release: pairs with park()'s acquire exchange; the waker's inject
      // queue push (sequenced before this unpark) is then visible there.
      notified.store(true, std::memory_order_release);
      inner->unpark();
    }
    std::shared_ptr<Unparker> inner;
    pollux::detail::Atomic<bool> notified{false};
  };

  TimerQueue queue_;
  ThreadParker parker_;
  std::shared_ptr<RecordingUnparker> unparker_;
  size_t blocking_parks_ = 0;
};

}  // namespace pollux::timer

#endif  // POLLUX_TIMER_TIME_DRIVER_H_
