// PLANTED BUG (the register/wake hand-off of sync::AtomicWaker). A copy of
// sync::AtomicWaker (sync/atomic_waker.{h,cc} at 6ce9449) whose take()
// backs off only from another take() (WAKING), not from a registration in
// progress (REGISTERING): it moves the waker out of the slot while
// register_waker is replacing it. The slot is plain data handed over by the
// state word, so that is a data race (a torn or freed waker in real life);
// the model checker must report it (tests/model/atomic_waker_model_test.cc).
//
// (Why not a lost wake: with the protocol's re-check, a wake that races a
// registration is always seen by the re-check, whose state access acquires
// the take()'s. A register_waker that forgets to wake its own waker when a
// take() came in between is caught only in a future that does not re-check.)
// Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_RACY_ATOMIC_WAKER_H_
#define POLLUX_TESTS_MODEL_PLANTED_RACY_ATOMIC_WAKER_H_

#include <cstdint>
#include <utility>

#include "future/internal/atomic.h"
#include "future/internal/race_cell.h"
#include "future/waker.h"

namespace pollux::model::planted {

class RacyAtomicWaker {
 public:
  RacyAtomicWaker() = default;
  RacyAtomicWaker(const RacyAtomicWaker&) = delete;
  RacyAtomicWaker& operator=(const RacyAtomicWaker&) = delete;

  void register_waker(const Waker& w) noexcept {
    uint32_t expected = kWaiting;
    if (state_.compare_exchange_strong(expected, kRegistering, std::memory_order_acquire,
                                       std::memory_order_acquire)) {
      Waker old;
      if (!waker_.get().will_wake(w)) old = std::exchange(waker_.get_mut(), w);
      expected = kRegistering;
      if (state_.compare_exchange_strong(expected, kWaiting, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
        return;
      }
      Waker mine = std::move(waker_.get_mut());
      state_.store(kWaiting, std::memory_order_release);
      std::move(mine).wake();
      return;
    }
    if (expected == kWaking) w.wake_by_ref();
  }
  void wake() noexcept { take().wake(); }
  [[nodiscard]] Waker take() noexcept {
    const uint32_t prev = state_.fetch_or(kWaking, std::memory_order_acq_rel);
    // THE BUG: the real one returns an empty waker unless prev == kWaiting:
    // a REGISTERING slot belongs to the registration (which sees WAKING and
    // wakes its own waker).
    if (prev & kWaking) return Waker();
    Waker w = std::move(waker_.get_mut());
    state_.fetch_and(~kWaking, std::memory_order_release);
    return w;
  }

 private:
  static constexpr uint32_t kWaiting = 0;
  static constexpr uint32_t kRegistering = 1;
  static constexpr uint32_t kWaking = 2;

  pollux::detail::Atomic<uint32_t> state_{kWaiting};
  pollux::detail::RaceCell<Waker> waker_;
};

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_RACY_ATOMIC_WAKER_H_
