// sleep(d), sleep_until(t): futures that complete once a point in time has
// passed on the driver's clock.
//
//   co_await pollux::sleep(absl::Milliseconds(20));
//   co_await pollux::sleep_until(deadline);
//
// Purpose
//   Sleep is the leaf timer future; timeout() and interval() are built on it.
//   It is lazy: creating it only computes the deadline (sleep(d) reads
//   timer::now() once, so the deadline is counted from creation, as in tokio;
//   d <= 0 means "already due"). The first poll registers an intrusive entry
//   with the current thread's TimerQueue (timer/timer_queue.h): O(1), no
//   allocation, no syscall. The deadline is rounded up to the next 1 ms tick,
//   so a Sleep never completes before its deadline and, while the driver ticks
//   at least once a millisecond, at most one tick after it. A deadline that
//   has already passed when it is first polled (sleep(0), a past Instant)
//   completes on that poll without registering. (The first poll compares
//   with the latest clock reading its queue knows of, the tick's or a later
//   timer::now(), and reads the clock only for a deadline less than a tick
//   after that; a deadline from elsewhere that passed during a tick that
//   has run over a millisecond registers and fires at the next tick.) `sleep_until(Instant::max())`
//   (and sleep(absl::InfiniteDuration())) never completes and registers
//   nothing, so it neither holds a wheel slot nor drags a paused clock to the
//   end of time; reset() to a real deadline registers it.
//
// Polling
//   A Sleep is a leaf resource future: each poll starts with the coop budget
//   check (`try_take`, else wake_by_ref + Pending) and refunds the unit when
//   it returns a real Pending. It keeps one clone of the waker, replaced only
//   when the task changes (Waker::will_wake). After Ready it must not be
//   polled again unless reset() re-armed it.
//
// No runtime
//   Polling a Sleep on a thread with no current TimerQueue is a programming
//   error that fails loudly (POLLUX_CHECK, always on) with the message
//   "sleep() needs a runtime with time enabled (Runtime::Builder()
//   .enable_time()) or a TimeDriver ...", never a crash or a hang. Since the
//   output is void there is no Status to return it in. Creating one there is
//   fine (its deadline then comes from the real clock, Instant::now()).
//
// Thread-safety
//   A Sleep is polled, reset and dropped on the thread whose TimerQueue it
//   registered with (checked in every build). While registered it pins its
//   task (TaskPin, executor/context.h), so a multi_thread runtime keeps the
//   task on the worker whose wheel holds the entry. The
//   TimerQueue must outlive polls of the Sleep; dropping a Sleep after its
//   queue is gone is safe (the queue unregistered it).
//
// Moving: like every future, a Sleep may move only before it is first polled
// (checked: moving a registered Sleep aborts).
//
// Cancellation: dropping a Sleep before Ready unregisters its timer (O(1)) and
// drops its waker clone; nothing else happens and nothing is lost. A new
// sleep_until(same deadline) behaves as the dropped one would have.
#ifndef POLLUX_TIMER_SLEEP_H_
#define POLLUX_TIMER_SLEEP_H_

#include <cstdint>
#include <type_traits>

#include "absl/time/time.h"
#include "executor/context.h"
#include "future/assert.h"
#include "future/future.h"
#include "timer/instant.h"
#include "timer/timer_queue.h"

namespace pollux {

namespace timer::detail {
// The message of the always-on check when a Sleep is polled with no TimerQueue.
extern const char kNoTimerQueueMessage[];
}  // namespace timer::detail

// A future that completes once its deadline passed on the driver's clock (see
// above).
class [[nodiscard]] Sleep {
 public:
  using Output = void;

  // A sleep until `deadline` on the queue's clock; registers nothing yet.
  explicit Sleep(Instant deadline) noexcept : deadline_(deadline) {}
  // Only before the first Pending poll (checked: a registered Sleep cannot move).
  Sleep(Sleep&& other) noexcept;
  Sleep(const Sleep&) = delete;
  Sleep& operator=(const Sleep&) = delete;
  Sleep& operator=(Sleep&&) = delete;
  // Unregisters the timer if it is still registered (O(1)).
  ~Sleep();

  // Ready once the deadline has passed (see the header comment).
  Poll<void> poll(Context& cx) {
    // Inline, the common case: a registered timer that has not fired,
    // polled again (a Timeout's deadline while its operation waits) keeps
    // the waker and stays Pending. The unit of budget such a poll would take
    // it would refund (a real Pending), so none is touched while any is left.
    if (state_ == State::kRegistered && !entry_.has_fired() && cx.budget().remaining() > 0) {
      POLLUX_CHECK(timer::current_timer_queue() == queue_,
                   "a registered Sleep was polled on a thread other than its TimerQueue's");
      entry_.set_waker(cx.waker());
      return Pending{};
    }
    return poll_slow(cx);
  }

  // The deadline this Sleep waits for.
  Instant deadline() const noexcept { return deadline_; }
  // True once it returned Ready or its timer fired (the deadline has passed).
  bool is_elapsed() const noexcept {
    return state_ == State::kDone || (state_ == State::kRegistered && entry_.has_fired());
  }
  // Re-arms for `deadline`, like tokio's Sleep::reset: a registered timer is
  // moved to the new deadline (O(1), keeping its waker, so a task already
  // waiting on it is woken at the new time; a later deadline is only
  // recorded, and the wheel re-files the entry when the earlier one comes,
  // so pushing a deadline back on every message costs a store:
  // TimerQueue::reset, timeout_on); a Sleep that completed or fired becomes
  // pollable again and registers on its next poll.
  void reset(Instant deadline) noexcept {
    // Inline, the common case: a registered timer pushed back (a server's
    // deadline, once per message) is two stores.
    if (state_ == State::kRegistered && deadline >= deadline_ && entry_.is_registered()) {
      POLLUX_CHECK(queue_->is_owner_thread(),
                   "a registered Sleep was reset on a thread other than its TimerQueue's");
      deadline_ = deadline;
      queue_->reset_later(&entry_, deadline);
      return;
    }
    reset_slow(deadline);
  }

 private:
  Poll<void> poll_slow(Context& cx);
  void reset_slow(Instant deadline) noexcept;

  enum class State : uint8_t {
    kIdle,        // not registered; the next poll compares the deadline and registers
    kRegistered,  // entry_ is registered with queue_, or fired
    kNever,       // deadline Instant::max(): waker kept, nothing registered
    kDone,        // returned Ready
  };

  Instant deadline_;
  timer::TimerQueue* queue_ = nullptr;  // set in kRegistered and kNever
  State state_ = State::kIdle;
  timer::TimerQueue::Entry entry_;
  // Held in kRegistered and kNever: the entry (or the queue reset() would
  // insert into) belongs to one worker's wheel (DESIGN §4, "Pinning").
  TaskPin pin_;
};
static_assert(std::is_standard_layout_v<Sleep>);

// Completes once `deadline` has passed on the current thread's timer clock.
[[nodiscard]] Sleep sleep_until(Instant deadline) noexcept;
// Completes once `d` has passed since this call (deadline = timer::now() + d;
// saturating, so absl::InfiniteDuration() never completes).
[[nodiscard]] Sleep sleep(absl::Duration d) noexcept;

}  // namespace pollux

#endif  // POLLUX_TIMER_SLEEP_H_
