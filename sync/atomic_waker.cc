#include "sync/atomic_waker.h"

#include <utility>

#include "future/internal/thread.h"

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
    // An exchange, not a store. acq_rel: release hands the (now empty) slot
    // back to everyone; acquire pairs with the fetch_or of *every* take()
    // that found the slot busy, also those after the failed CAS above,
    // which read only the first. Each of them woke nobody and relies on our
    // wake: the task that polls again must see what its producer published
    // before that take(). A store would acquire none of them, and the
    // future's re-check could miss the last producer's work for good (the
    // model checker found that lost wake-up with two producers;
    // tests/model/atomic_waker_model_test.cc). The futures crate swaps here
    // for the same reason.
    state_.exchange(kWaiting, std::memory_order_acq_rel);
    std::move(mine).wake();
    return;
  }
  if (expected == kWaking) {
    // A take() holds the slot and is waking the previous waker: that may not
    // be this task's, so wake ours too (a spurious wake at worst).
    w.wake_by_ref();
    // The task will be polled again and register again, which only works
    // once that take() has let go of the slot: this is a spin-wait on it,
    // across polls (the futures crate's spin_loop hint). Under the model
    // checker it yields to the taker, which would otherwise never be
    // scheduled while the task re-polls without end.
    pollux::detail::spin_loop_hint();
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
