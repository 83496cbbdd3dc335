// AtomicWaker: one waker slot that a future registers into and any thread
// wakes, without a lock: the building block of a hand-written cross-thread
// future.
//
//   struct Flag { std::atomic<bool> set{false}; sync::AtomicWaker waker; };
//
//   Poll<void> poll(Context& cx) {               // the waiting future
//     if (flag->set.load(std::memory_order_acquire)) return Ready{};
//     flag->waker.register_waker(cx.waker());
//     // Re-check after registering: a set() between the first check and
//     // the registration woke the *old* waker (or none).
//     if (flag->set.load(std::memory_order_acquire)) return Ready{};
//     return Pending{};
//   }
//   void set() {                                 // any thread
//     flag->set.store(true, std::memory_order_release);
//     flag->waker.wake();
//   }
//
// The protocol (as in the futures crate): the future checks its condition,
// registers, then checks again; the producer makes the condition true, then
// wakes. Whatever the interleaving, either the second check sees the
// condition or the wake finds the new waker (or wakes it right after the
// registration). Registering and waking at the same time never loses the
// wake and never wakes a waker that is being replaced.
//
// Thread-safety: register_waker from one task at a time (the future's
// owner); wake and take from any thread, concurrently with it and with each
// other.
#ifndef POLLUX_SYNC_ATOMIC_WAKER_H_
#define POLLUX_SYNC_ATOMIC_WAKER_H_

#include <cstdint>

#include "future/internal/atomic.h"
#include "future/internal/race_cell.h"
#include "future/waker.h"

namespace pollux::sync {

// One waker slot: registered by one task, woken from any thread without a lock
// (see above).
class AtomicWaker {
 public:
  AtomicWaker() = default;
  AtomicWaker(const AtomicWaker&) = delete;
  AtomicWaker& operator=(const AtomicWaker&) = delete;

  // Stores a clone of `w` (unless the stored one already wakes the same
  // task). If a wake raced with the registration, `w` is woken at once.
  void register_waker(const Waker& w) noexcept;
  // Wakes the registered waker, if any, and empties the slot.
  void wake() noexcept { take().wake(); }
  // Takes the registered waker out (empty when none is registered, or when
  // a registration in progress will see this wake and wake itself).
  [[nodiscard]] Waker take() noexcept;

 private:
  // kRegistering: a register_waker owns the slot. kWaking: a take() owns it.
  static constexpr uint32_t kWaiting = 0;
  static constexpr uint32_t kRegistering = 1;
  static constexpr uint32_t kWaking = 2;

  pollux::detail::Atomic<uint32_t> state_{kWaiting};
  pollux::detail::RaceCell<Waker> waker_;
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_ATOMIC_WAKER_H_
