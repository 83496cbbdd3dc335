// Baton: how one model thread hands the right to run to another.
//
// give() makes the holder's next take() return; take() sleeps until then.
// The hand-off is a release/acquire pair, so everything the giver did (to
// the checker's state and to the model's memory) is visible to the taker.
//
// A bare futex, with no spinning: the pool runs on one CPU (see
// Execution), where spinning only delays the thread being handed to, and
// a give() followed by the giver's own take() is one context switch.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_BATON_H_
#define POLLUX_TESTS_MODEL_INTERNAL_BATON_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace pollux::model::internal {

class Baton {
 public:
  void give() noexcept {
    // release: pairs with take()'s acquire exchange.
    given_.store(1, std::memory_order_release);
    syscall(SYS_futex, &given_, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
  void take() noexcept {
    // acquire: pairs with give()'s release store.
    while (given_.exchange(0, std::memory_order_acquire) == 0) {
      syscall(SYS_futex, &given_, FUTEX_WAIT_PRIVATE, 0, nullptr, nullptr, 0);
    }
  }

 private:
  std::atomic<uint32_t> given_{0};
};

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_BATON_H_
