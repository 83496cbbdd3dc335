#include "timer/sleep.h"

#include "future/assert.h"

namespace pollux {

namespace timer::detail {
const char kNoTimerQueueMessage[] =
    "sleep() needs a runtime with time enabled (Runtime::Builder().enable_time()) or a "
    "TimeDriver; no TimerQueue is current on this thread (timeout() and interval() are built "
    "on sleep(); a test with a TimeDriver sets it with `auto g = driver.enter();`)";
}  // namespace timer::detail

Sleep::Sleep(Sleep&& other) noexcept
    : deadline_(other.deadline_),
      state_(other.state_ == State::kDone ? State::kDone : State::kIdle) {
  // A fired-but-unpolled Sleep becomes kIdle: its first poll finds the
  // deadline passed (the clock never goes back) and completes.
  POLLUX_CHECK(!other.entry_.is_registered(),
               "a Sleep was moved after a Pending poll registered its timer; a future must not "
               "move once polled");
}

Sleep::~Sleep() {
  // Only a registered entry touches queue_: a queue destroyed first has
  // already unregistered it.
  if (entry_.is_registered()) {
    POLLUX_CHECK(queue_->is_owner_thread(),
                  "a registered Sleep was dropped on a thread other than its TimerQueue's");
    queue_->cancel(&entry_);
  }
}

Poll<void> Sleep::poll_slow(Context& cx) {
  POLLUX_CHECK(state_ != State::kDone, "Sleep polled after it returned Ready (reset() re-arms it)");
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (state_ == State::kIdle) {
    timer::TimerQueue* q = timer::current_timer_queue();
    POLLUX_CHECK(q != nullptr, timer::detail::kNoTimerQueueMessage);
    // The latest known clock reading first (free: sleep(0) and a deadline
    // built from timer::now() are at or before it); a fresh reading only
    // when that says "not yet" by less than a tick, so past deadlines never
    // register, while a server's per-message timeout (seconds ahead) reads
    // no clock here.
    const Instant seen = q->latest_reading();
    if (deadline_ <= seen ||
        (deadline_ - seen < timer::TimerQueue::kTick && deadline_ <= q->clock_now())) {
      state_ = State::kDone;
      return Ready{};
    }
    queue_ = q;
    pin_ = TaskPin::current();  // the entry lives in this worker's wheel from now on
    entry_.set_waker(cx.waker());
    if (deadline_ == Instant::max()) {
      state_ = State::kNever;  // kept for reset(); nothing can fire
    } else {
      q->insert(&entry_, deadline_);
      state_ = State::kRegistered;
    }
  } else if (state_ == State::kNever) {
    POLLUX_CHECK(timer::current_timer_queue() == queue_,
                  "a Sleep was polled on a thread other than its TimerQueue's");
    entry_.set_waker(cx.waker());
  } else {
    POLLUX_CHECK(timer::current_timer_queue() == queue_,
                  "a registered Sleep was polled on a thread other than its TimerQueue's");
    if (entry_.has_fired()) {
      state_ = State::kDone;
      pin_.reset();
      return Ready{};
    }
    entry_.set_waker(cx.waker());
  }
  cx.budget().refund();  // a real Pending: no progress was made
  return Pending{};
}

void Sleep::reset_slow(Instant deadline) noexcept {
  deadline_ = deadline;
  switch (state_) {
    case State::kIdle:
      break;
    case State::kRegistered:
      if (entry_.is_registered()) {
        POLLUX_CHECK(queue_->is_owner_thread(),
                      "a registered Sleep was reset on a thread other than its TimerQueue's");
        // Later: a store; earlier: moved at once (a past deadline fires at
        // the next tick). TimerQueue::reset.
        queue_->reset(&entry_, deadline);
      } else {
        state_ = State::kIdle;  // fired: re-evaluated on the next poll
        pin_.reset();
      }
      break;
    case State::kNever:
      if (deadline != Instant::max()) {
        POLLUX_CHECK(queue_->is_owner_thread(),
                      "a Sleep was reset on a thread other than its TimerQueue's");
        queue_->insert(&entry_, deadline);  // keeps the waker of the last poll
        state_ = State::kRegistered;
      }
      break;
    case State::kDone:
      state_ = State::kIdle;
      break;
  }
}

Sleep sleep_until(Instant deadline) noexcept { return Sleep(deadline); }

Sleep sleep(absl::Duration d) noexcept {
  const Instant now = timer::now();
  return Sleep(d <= absl::ZeroDuration() ? now : now + d);
}

}  // namespace pollux
