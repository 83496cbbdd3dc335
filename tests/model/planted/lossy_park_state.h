// PLANTED BUG (DESIGN §10: "a dropped re-check in the unparker"). A copy of
// detail::ParkState (executor/internal/park_state.h at bad095e) whose
// try_park() publishes PARKED without checking for a pending NOTIFIED:
// an unpark() that lands between the owner's last look at its queues and
// try_park() is overwritten, its unpark saw EMPTY and woke nobody, and the
// owner sleeps forever. The model checker must report a deadlock
// (tests/model/park_model_test.cc). Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_LOSSY_PARK_STATE_H_
#define POLLUX_TESTS_MODEL_PLANTED_LOSSY_PARK_STATE_H_

#include <atomic>

#include "future/internal/atomic.h"

namespace pollux::model::planted {

class LossyParkState {
 public:
  bool try_park() noexcept {
    // THE BUG: the real one is a compare-exchange EMPTY -> PARKED that
    // fails (and consumes the unpark) when it finds NOTIFIED.
    word_.store(kParked, std::memory_order_seq_cst);
    return true;
  }
  void unparked() noexcept { word_.store(kEmpty, std::memory_order_seq_cst); }
  [[nodiscard]] bool unpark() noexcept {
    return word_.exchange(kNotified, std::memory_order_seq_cst) == kParked;
  }
  bool take_notified() noexcept {
    int expected = kNotified;
    return word_.compare_exchange_strong(expected, kEmpty, std::memory_order_acquire);
  }

 private:
  enum : int { kEmpty, kParked, kNotified };
  detail::Atomic<int> word_{kEmpty};
};

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_LOSSY_PARK_STATE_H_
