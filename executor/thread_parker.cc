#include "executor/thread_parker.h"

#include "absl/time/clock.h"

namespace pollux {

ThreadParker::ThreadParker() : state_(std::make_shared<State>()) {}

bool ThreadParker::park(std::optional<absl::Duration> timeout) { return state_->park(timeout); }

bool ThreadParker::State::park(std::optional<absl::Duration> timeout) {
  // Fast path: a notification is already there; consume it.
  if (word.take_notified()) return true;
  if (timeout && *timeout <= absl::ZeroDuration()) return false;

  detail::MutexLock lock(mu);
  // From PARKED on, an unpark takes `mu` before it notifies; we hold `mu`
  // until the wait releases it, so the notify cannot fall in between.
  if (!word.try_park()) return true;  // an unpark slipped in: it is consumed
  const absl::Time deadline = timeout ? absl::Now() + *timeout : absl::InfiniteFuture();
  for (;;) {
    if (!timeout) {
      cv.wait(mu);
    } else {
      const absl::Duration left = deadline - absl::Now();
      if (left > absl::ZeroDuration()) cv.wait_for(mu, left);
    }
    if (word.take_notified()) return true;
    if (timeout && absl::Now() >= deadline) {
      // Timed out: withdraw PARKED, consuming an unpark that just came.
      word.unparked();
      return false;
    }
    // A spurious wake-up: still PARKED, wait again.
  }
}

void ThreadParker::State::unpark() noexcept {
  if (!word.unpark()) return;
  // The parker holds `mu` from its PARKED store until it waits; taking the
  // lock here means the notify cannot fall between its store and its wait.
  { detail::MutexLock lock(mu); }
  cv.notify_one();
}

}  // namespace pollux
