// PLANTED BUG (DESIGN §10: "a release made relaxed"). A copy of the
// completion/join half of detail::TaskState (executor/internal/task_state.{h,cc},
// with its Snapshot) whose transition_to_complete() is relaxed instead of acq_rel:
// the result written before COMPLETE is not published to the JoinHandle
// that sees COMPLETE, and the join waker published before JOIN_WAKER is not
// acquired by the task side that wakes it. The model checker must report a
// data race on the result (or the join waker) RaceCell
// (tests/model/task_state_model_test.cc). Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_RELAXED_COMPLETE_TASK_STATE_H_
#define POLLUX_TESTS_MODEL_PLANTED_RELAXED_COMPLETE_TASK_STATE_H_

#include <atomic>
#include <cstdint>

#include "executor/internal/task_state.h"
#include "future/internal/atomic.h"

namespace pollux::model::planted {

class RelaxedCompleteTaskState {
  using Real = detail::TaskState;

 public:
  static constexpr uint64_t kRunning = Real::kRunning;
  static constexpr uint64_t kComplete = Real::kComplete;
  static constexpr uint64_t kNotified = Real::kNotified;
  static constexpr uint64_t kJoinInterest = Real::kJoinInterest;
  static constexpr uint64_t kJoinWaker = Real::kJoinWaker;
  static constexpr uint64_t kRefOne = Real::kRefOne;
  using RunResult = Real::RunResult;
  using Snapshot = Real::Snapshot;

  RelaxedCompleteTaskState() noexcept : word_(kNotified | kJoinInterest | 3 * kRefOne) {}

  Snapshot load() const noexcept { return Snapshot{word_.load(std::memory_order_acquire)}; }

  RunResult transition_to_running() noexcept {
    RunResult result = RunResult::kFailed;
    update([&](uint64_t cur, uint64_t& next) {
      if (cur & (kRunning | kComplete)) return false;
      next = (cur & ~kNotified) | kRunning;
      result = RunResult::kPoll;
      return true;
    });
    return result;
  }

  Snapshot transition_to_complete() noexcept {
    // THE BUG: the real one is acq_rel.
    return Snapshot{word_.fetch_xor(kRunning | kComplete, std::memory_order_relaxed)};
  }

  bool set_join_waker() noexcept {
    return !(update([](uint64_t cur, uint64_t& next) {
               if (cur & kComplete) return false;
               next = cur | kJoinWaker;
               return true;
             }) &
             kComplete);
  }

  bool ref_dec(uint64_t count = 1) noexcept {
    const uint64_t prev = word_.fetch_sub(count * kRefOne, std::memory_order_acq_rel);
    return (prev >> Real::kRefShift) == count;
  }

 private:
  template <class F>
  uint64_t update(F&& f) noexcept {
    uint64_t cur = word_.load(std::memory_order_acquire);
    for (;;) {
      uint64_t next;
      if (!f(cur, next)) return cur;
      if (word_.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return cur;
      }
    }
  }

  detail::Atomic<uint64_t> word_;
};

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_RELAXED_COMPLETE_TASK_STATE_H_
