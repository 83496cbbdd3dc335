#include "sync/atomic_waker.h"

#include <utility>

namespace pollux::sync {

void AtomicWaker::register_waker(const Waker& w) noexcept {
  uint32_t expected = kWaiting;
  // acquire: pairs with take()'s release when it hands the slot back, so the
  // slot's old contents are ours to replace.
  if (state_.compare_exchange_strong(expected, kRegistering, std::memory_order_acquire,
                                     std::memory_order_acquire)) {
    Waker old;
    if (!waker_.get().will_wake(w)) old = std::exchange(waker_.get_mut(), w);
    expected = kRegistering;
    // acq_rel: release publishes the new waker to the next take(); acquire
    // (on failure) sees the state a racing take() left.
    if (state_.compare_exchange_strong(expected, kWaiting, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
      return;  // `old` is dropped here, outside any protocol step
    }
    // A take() ran while we registered (the state is REGISTERING|WAKING): it
    // left the slot to us, so wake the waker we just stored ourselves.
    Waker mine = std::move(waker_.get_mut());
    // release: hands the (now empty) slot back to everyone.
    state_.store(kWaiting, std::memory_order_release);
    std::move(mine).wake();
    return;
  }
  if (expected == kWaking) {
    // A take() holds the slot and is waking the previous waker: that may not
    // be this task's, so wake ours too (a spurious wake at worst).
    w.wake_by_ref();
  }
  // expected == kRegistering: another registration at the same time is a
  // misuse (one task registers); ignoring it loses nothing of ours.
}

Waker AtomicWaker::take() noexcept {
  // acq_rel: acquire pairs with register_waker's release (the stored waker
  // is complete); release tells a registration in progress that a wake came.
  const uint32_t prev = state_.fetch_or(kWaking, std::memory_order_acq_rel);
  if (prev != kWaiting) {
    // REGISTERING: that registration sees WAKING and wakes its own waker.
    // WAKING: another take() is at work.
    return Waker();
  }
  Waker w = std::move(waker_.get_mut());
  // release: pairs with register_waker's acquire.
  state_.fetch_and(~kWaking, std::memory_order_release);
  return w;
}

}  // namespace pollux::sync
