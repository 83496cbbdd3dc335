#include "executor/thread_parker.h"

#include "absl/time/clock.h"

namespace pollux {

ThreadParker::ThreadParker() : state_(std::make_shared<State>()) {}

void ThreadParker::park() { state_->park(absl::InfiniteDuration()); }

void ThreadParker::park_timeout(absl::Duration timeout) { state_->park(timeout); }

void ThreadParker::State::park(absl::Duration timeout) {
  // Fast path: a notification is already there; consume it. acquire pairs
  // with unpark's exchange, so work pushed before the unpark is visible.
  int expected = kNotified;
  if (word.compare_exchange_strong(expected, kEmpty, std::memory_order_acquire)) return;

  std::unique_lock lock(mu);
  expected = kEmpty;
  // seq_cst: the owner's PARKED store and the waker's exchange must be
  // totally ordered with the waker's queue push and the owner's queue check.
  if (!word.compare_exchange_strong(expected, kParked, std::memory_order_seq_cst)) {
    // An unpark slipped in between: it left NOTIFIED; consume it.
    word.store(kEmpty, std::memory_order_seq_cst);
    return;
  }
  const bool timed = timeout != absl::InfiniteDuration();
  const absl::Time deadline = timed ? absl::Now() + timeout : absl::InfiniteFuture();
  for (;;) {
    if (!timed) {
      cv.wait(lock);
    } else {
      cv.wait_until(lock, absl::ToChronoTime(deadline));
    }
    expected = kNotified;
    // seq_cst: pairs with unpark's exchange (spurious wake-ups loop).
    if (word.compare_exchange_strong(expected, kEmpty, std::memory_order_seq_cst)) return;
    if (timed && absl::Now() >= deadline) {
      // Timed out: withdraw PARKED unless an unpark just replaced it.
      expected = kParked;
      if (!word.compare_exchange_strong(expected, kEmpty, std::memory_order_seq_cst)) {
        word.store(kEmpty, std::memory_order_seq_cst);  // it was NOTIFIED: consume it
      }
      return;
    }
  }
}

void ThreadParker::State::unpark() noexcept {
  // seq_cst: pairs with park's PARKED store (see the header).
  if (word.exchange(kNotified, std::memory_order_seq_cst) != kParked) return;
  // The parker holds `mu` from its PARKED store until it waits; taking the
  // lock here means the notify cannot fall between its store and its wait.
  { std::lock_guard lock(mu); }
  cv.notify_one();
}

}  // namespace pollux
