// timeout(f, d), timeout_at(f, t), timeout_on(sleep, f): run a future with a
// deadline.
//
//   absl::StatusOr<int> r = co_await pollux::timeout(read_number(), absl::Seconds(1));
//   if (absl::IsDeadlineExceeded(r.status())) ...
//
//   Sleep idle = pollux::sleep_until(Instant::max());  // one per connection
//   for (;;) {
//     idle.reset(timer::tick_now() + absl::Seconds(75));  // later: a store
//     auto r = co_await pollux::timeout_on(idle, stream.read(std::move(buf)));
//
// timeout() and timeout_at() own their Sleep: each registers a timer on its
// first poll and unregisters it when the inner future wins. timeout_on()
// borrows one the caller keeps across operations and leaves it armed, so a
// deadline pushed back on every message costs a store (Sleep::reset to a
// later deadline) instead of a wheel insert and cancel per operation (issue
// 17: about a fifth of an echo server's user-space instructions).
//
// Output
//   With T = the inner future's output:
//     T = void                 -> absl::Status        (OK, or DeadlineExceeded)
//     T = absl::Status         -> absl::Status        (the inner status, or DeadlineExceeded)
//     T = absl::StatusOr<U>    -> absl::StatusOr<U>   (the inner result, or DeadlineExceeded)
//     any other object type T  -> absl::StatusOr<T>
//   So DeadlineExceeded is folded into an inner Status/StatusOr instead of
//   nesting them. Its message is "operation timed out after <d>", with `d`
//   the duration given to timeout() (for timeout_at, the time from creation
//   to the deadline).
//
// Polling
//   Each poll polls the inner future first, so a value that is ready wins
//   over an expired deadline (even timeout(f, absl::ZeroDuration())), then the
//   Sleep for the deadline (timer/sleep.h: lazy, registered on the first
//   poll, deadline rounded up to the next 1 ms tick, never early). If the
//   inner future used up the task's coop budget in this poll, the Sleep is
//   polled with an unlimited budget (as tokio does), so a busy inner future
//   cannot starve its own deadline. The deadline is counted from the call to
//   timeout() (timer::now() + d), not from the first poll.
//
//   On expiry the inner future is destroyed at once, before poll returns
//   DeadlineExceeded (cancelling it with its own semantics); when the inner
//   future wins, the timer is unregistered at once. A poll that throws
//   destroys both and the exception propagates. Needs a TimerQueue on the
//   polling thread, like sleep().
//
// Thread-safety: as Sleep: polled and dropped on the thread of the TimerQueue
// it registered with.
//
// Cancellation: dropping a Timeout before Ready drops the inner future
// (cancelling it with its own semantics: check its "Cancellation" paragraph
// for what it loses) and unregisters an owned timer (timeout_on's borrowed
// Sleep stays armed; dropping that Sleep unregisters it). The same holds on
// expiry: a timed-out operation may have had side effects (e.g. consumed
// input) that its own cancellation semantics describe.
#ifndef POLLUX_TIMER_TIMEOUT_H_
#define POLLUX_TIMER_TIMEOUT_H_

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "future/assert.h"
#include "future/future.h"
#include "future/poll_into.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timer_queue.h"

namespace pollux {

namespace detail {
// Maps the inner output T to the Timeout's output (see the header comment).
template <class T>
struct TimeoutOutput {
  using type = absl::StatusOr<T>;
};
template <>
struct TimeoutOutput<void> {
  using type = absl::Status;
};
template <>
struct TimeoutOutput<absl::Status> {
  using type = absl::Status;
};
template <class U>
struct TimeoutOutput<absl::StatusOr<U>> {
  using type = absl::StatusOr<U>;
};
}  // namespace detail

namespace detail {
// Where a Timeout's Sleep lives: in the Timeout (timeout, timeout_at), or
// with the caller, shared by successive operations (timeout_on).
struct OwnedSleep {
  explicit OwnedSleep(Instant deadline) noexcept : sleep(std::in_place, deadline) {}
  Sleep& get() noexcept { return *sleep; }
  void release() noexcept { sleep.reset(); }  // unregisters it
  std::optional<Sleep> sleep;
};
struct BorrowedSleep {
  Sleep& get() noexcept { return *sleep; }
  void release() noexcept {}  // stays armed for the caller's next operation
  Sleep* sleep;
};
}  // namespace detail

// The future timeout(f, d), timeout_at(f, t) and timeout_on(sleep, f)
// return: f's output, or DeadlineExceeded (see above).
template <Future F, class SleepSlot = detail::OwnedSleep>
class [[nodiscard]] Timeout {
  using Inner = output_t<F>;
  static_assert(std::is_void_v<Inner> || std::is_object_v<Inner>,
                "timeout() needs a future whose Output is void or an object type");

 public:
  using Output = typename detail::TimeoutOutput<Inner>::type;

  // Runs `fut` until `deadline`; the error names the time from `start` to it.
  Timeout(F fut, Instant deadline, Instant start)
    requires std::is_same_v<SleepSlot, detail::OwnedSleep>
      : inner_(std::in_place, std::move(fut)),
        sleep_(deadline),
        deadline_(deadline),
        start_(start) {}
  // Runs `fut` until `sleep` completes (timeout_on).
  Timeout(F fut, Sleep& sleep, Instant start)
    requires std::is_same_v<SleepSlot, detail::BorrowedSleep>
      : inner_(std::in_place, std::move(fut)),
        sleep_{&sleep},
        deadline_(sleep.deadline()),
        start_(start) {}

  // Ready with the inner output (wrapped, see above) or DeadlineExceeded.
  Poll<Output> poll(Context& cx) {
    std::optional<Output> out;
    return poll_from(poll_into(cx, out), out);
  }

  // poll(), with the output built in `out` (future/poll_into.h). A Status
  // or StatusOr output is the inner future's own, polled straight into
  // `out`; any other is wrapped with one move.
  bool poll_into(Context& cx, std::optional<Output>& out) {
    POLLUX_DCHECK(inner_.has_value(), "timeout() future polled after it returned Ready");
    try {
      // Unlimited reports UINT32_MAX, so it never counts as spent.
      const bool had_budget = cx.budget().remaining() > 0;
      if (poll_inner(cx, out)) {
        finish();
        return true;
      }
      Poll<void> expired = Pending{};
      if (had_budget && cx.budget().remaining() == 0) {
        // The inner future spent the budget: the deadline must still be seen.
        Budget unconstrained = Budget::unlimited();
        Context sub(cx.waker(), unconstrained);
        expired = sleep_.get().poll(sub);
      } else {
        expired = sleep_.get().poll(cx);
      }
      if (expired.is_pending()) return false;
    } catch (...) {
      finish();
      throw;
    }
    finish();  // the inner future is dropped before the error is returned
    // Only now: a server arms a timeout per message, and nearly none expire.
    const absl::Duration after = std::max(deadline_ - start_, absl::ZeroDuration());
    out.emplace(absl::DeadlineExceededError(
        absl::StrCat("operation timed out after ", absl::FormatDuration(after))));
    return true;
  }

  // The deadline (on the timer clock).
  Instant deadline() const noexcept { return deadline_; }

 private:
  // Polls the inner future; on Ready its output, wrapped, is in `out`.
  bool poll_inner(Context& cx, std::optional<Output>& out) {
    if constexpr (std::is_same_v<Inner, Output>) {
      return pollux::poll_into(*inner_, cx, out);
    } else if constexpr (std::is_void_v<Inner>) {
      if (inner_->poll(cx).is_pending()) return false;
      out.emplace(absl::OkStatus());
      return true;
    } else {
      std::optional<Inner> inner_out;
      if (!pollux::poll_into(*inner_, cx, inner_out)) return false;
      out.emplace(absl::in_place, std::move(*inner_out));
      return true;
    }
  }

  // Drops the inner future and unregisters an owned timer.
  void finish() noexcept {
    inner_.reset();
    sleep_.release();
  }

  std::optional<F> inner_;
  SleepSlot sleep_;
  Instant deadline_;
  Instant start_;  // the error names deadline_ - start_
};

// Runs `fut` for at most `d` from now (timer::now() + d). See the header comment.
template <Future F>
[[nodiscard]] Timeout<F> timeout(F fut, absl::Duration d) {
  const Instant now = timer::now();
  return Timeout<F>(std::move(fut), d <= absl::ZeroDuration() ? now : now + d, now);
}

// Runs `fut` until `deadline` on the timer clock. See the header comment.
// The error names the time from the tick's time (timer::tick_now(): no
// clock read) to the deadline, at least zero.
template <Future F>
[[nodiscard]] Timeout<F> timeout_at(F fut, Instant deadline) {
  return Timeout<F>(std::move(fut), deadline, timer::tick_now());
}

// Runs `fut` until `sleep` completes, leaving `sleep` armed when `fut` wins
// (see the header comment). `sleep` must outlive the returned future and
// stay where it is once polled (a Sleep never moves after its first poll);
// reset() it before each use (once it has expired it must be reset before
// it is polled again). The error names the time from this call to its
// deadline, from the tick's time (no clock read).
template <Future F>
[[nodiscard]] Timeout<F, detail::BorrowedSleep> timeout_on(Sleep& sleep, F fut) {
  return Timeout<F, detail::BorrowedSleep>(std::move(fut), sleep, timer::tick_now());
}

}  // namespace pollux

#endif  // POLLUX_TIMER_TIMEOUT_H_
