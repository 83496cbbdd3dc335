// PLANTED BUG (the release of a signal registry slot). A copy of
// detail::SignalSlot (runtime/internal/signal_slot.h) whose release() does
// not wait for the handlers inside the slot: a handler that loaded the fd
// just before the release writes to it after the caller closed it (in real
// life: a byte into whatever file reused the number). The model checker must
// report it (tests/model/signal_slot_model_test.cc). Never use outside that
// test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_UNWAITED_SIGNAL_SLOT_H_
#define POLLUX_TESTS_MODEL_PLANTED_UNWAITED_SIGNAL_SLOT_H_

#include <atomic>

#include "future/internal/atomic.h"

namespace pollux::model::planted {

class UnwaitedSignalSlot {
 public:
  template <class Write>
  bool deliver(Write&& write) noexcept {
    users_.fetch_add(1, std::memory_order_seq_cst);
    const int fd = fd_.load(std::memory_order_seq_cst);
    if (fd >= 0) {
      pending_.store(true, std::memory_order_seq_cst);
      write(fd);
    }
    users_.fetch_sub(1, std::memory_order_release);
    return fd >= 0;
  }
  bool claim(int fd) noexcept {
    int expected = -1;
    return fd_.compare_exchange_strong(expected, fd, std::memory_order_seq_cst,
                                       std::memory_order_relaxed);
  }
  // THE BUG: no wait for users_ == 0.
  void release() noexcept {
    fd_.store(-1, std::memory_order_seq_cst);
    pending_.store(false, std::memory_order_seq_cst);
  }
  bool take_pending() noexcept { return pending_.exchange(false, std::memory_order_seq_cst); }

 private:
  detail::Atomic<int> fd_{-1};
  detail::Atomic<bool> pending_{false};
  detail::Atomic<unsigned> users_{0};
};

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_UNWAITED_SIGNAL_SLOT_H_
