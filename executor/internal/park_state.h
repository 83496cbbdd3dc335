// ParkState: the {EMPTY, PARKED, NOTIFIED} word every parker in pollux uses
// to make an unpark cost no syscall while the owner is running.
//
// The owner, before it sleeps: try_park() (EMPTY -> PARKED; a pending
// NOTIFIED is consumed instead and it must not sleep), then re-checks every
// queue a waker pushes to, then sleeps, then unparked() once awake.
// A waker: pushes its work, then unpark(); only when that returns true (the
// owner was PARKED) does it pay for the syscall or notify that ends the
// sleep.
//
// Why it cannot lose a wake-up: the owner's PARKED store and its re-check of
// the queues, and the waker's push and its exchange, are store-then-load on
// both sides (Dekker). Both read-modify-writes are seq_cst, so either the
// owner's re-check sees the push, or the waker's exchange sees PARKED and
// wakes it. A read-modify-write, not a fence: ThreadSanitizer does not model
// fences (DESIGN §10). Likewise every way back to EMPTY that may consume a
// NOTIFIED is an exchange, never a store: the consumed unpark's work must
// become visible to the owner (acquire), or its next look at the queues may
// miss it and it sleeps on it. tests/model/park_model_test.cc checks this
// protocol as it is (it must pass, two wakers racing the owner's sleep and
// wake-up) and with try_park's check for a pending NOTIFIED removed (it
// must deadlock).
//
// Thread-safety: try_park/unparked on the owner thread; unpark from any.
#ifndef POLLUX_EXECUTOR_INTERNAL_PARK_STATE_H_
#define POLLUX_EXECUTOR_INTERNAL_PARK_STATE_H_

#include <atomic>

#include "future/internal/atomic.h"

namespace pollux::detail {

class ParkState {
 public:
  // EMPTY -> PARKED: true when the owner may sleep. False when an unpark
  // was pending (it is consumed: the owner runs instead of sleeping).
  bool try_park() noexcept {
    int expected = kEmpty;
    // seq_cst: pairs with unpark's exchange (see the header comment).
    if (word_.compare_exchange_strong(expected, kParked, std::memory_order_seq_cst)) return true;
    // It was NOTIFIED. An exchange, not a store, for the reason unparked()
    // gives: an unpark landing between the compare-exchange and here must
    // be consumed with an acquire too, or its work could go unseen.
    // seq_cst: pairs with unpark's exchange.
    (void)word_.exchange(kEmpty, std::memory_order_seq_cst);
    return false;
  }
  // Back to EMPTY after a sleep (or after deciding not to sleep); consumes
  // an unpark that raced with the sleep, whose wake-up (an eventfd count, a
  // notify) the sleeper drains or ignores.
  void unparked() noexcept {
    // An exchange, not a store: when it consumes an unpark that raced with
    // the sleep, its acquire half synchronises with that unpark's exchange,
    // so the work pushed before the unpark is visible to the owner's next
    // look at its queues. A store would drop the unpark without that edge:
    // the owner could miss the work and sleep on it (a lost wake-up that
    // tests/model/park_model_test.cc finds). seq_cst: pairs with unpark's
    // exchange; an unpark after this sees EMPTY and costs nothing.
    (void)word_.exchange(kEmpty, std::memory_order_seq_cst);
  }
  // Records the wake-up. True when the owner was PARKED: the caller must
  // then end its sleep (write the eventfd, notify the condition variable).
  [[nodiscard]] bool unpark() noexcept {
    // seq_cst: pairs with try_park's compare-exchange (see the header).
    return word_.exchange(kNotified, std::memory_order_seq_cst) == kParked;
  }
  // Consumes a pending NOTIFIED without sleeping. True when there was one.
  bool take_notified() noexcept {
    int expected = kNotified;
    // acquire: pairs with unpark's exchange, so work pushed before the
    // unpark is visible to the owner once it returns.
    return word_.compare_exchange_strong(expected, kEmpty, std::memory_order_acquire);
  }

 private:
  enum : int { kEmpty, kParked, kNotified };
  Atomic<int> word_{kEmpty};
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_PARK_STATE_H_
