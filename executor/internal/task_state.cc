#include "executor/internal/task_state.h"

#include "future/assert.h"

namespace pollux::detail {

namespace {
// Runs `f(current) -> optional next` in a CAS loop; returns the value seen
// when `f` declined (nullopt) or the value replaced.
template <class F>
uint64_t update(Atomic<uint64_t>& word, F&& f) noexcept {
  // acquire (initial load and CAS failure): when `f` declines, the caller
  // acts on the state it saw without a successful RMW, e.g. a JoinHandle
  // whose unset_join_interest/unset_join_waker/set_join_waker finds COMPLETE
  // then reads or drops the result; this pairs with transition_to_complete's
  // release so the result written before COMPLETE is visible.
  uint64_t cur = word.load(std::memory_order_acquire);
  for (;;) {
    uint64_t next;
    if (!f(cur, next)) return cur;
    // acq_rel: see the ordering paragraph of task_state.h.
    if (word.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
      return cur;
    }
  }
}
}  // namespace

TaskState::RunResult TaskState::transition_to_running() noexcept {
  RunResult result = RunResult::kFailed;
  update(word_, [&](uint64_t cur, uint64_t& next) {
    POLLUX_DCHECK(cur & kNotified, "task ran without being notified");
    if (cur & (kRunning | kComplete)) {
      result = RunResult::kFailed;
      return false;
    }
    next = (cur & ~kNotified) | kRunning;
    result = (cur & kCancelled) ? RunResult::kCancel : RunResult::kPoll;
    return true;
  });
  return result;
}

TaskState::IdleResult TaskState::transition_to_idle() noexcept {
  IdleResult result = IdleResult::kOk;
  update(word_, [&](uint64_t cur, uint64_t& next) {
    POLLUX_DCHECK(cur & kRunning, "transition_to_idle on a task that is not running");
    if (cur & kCancelled) {
      result = IdleResult::kCancelled;
      return false;
    }
    next = cur & ~kRunning;
    if (cur & kNotified) {
      result = IdleResult::kOkNotified;
    } else {
      // The owned-tasks list still holds a reference, so this is never the last.
      POLLUX_DCHECK(refs(cur) >= 2, "task reference count underflow");
      next -= kRefOne;
      result = IdleResult::kOk;
    }
    return true;
  });
  return result;
}

uint64_t TaskState::transition_to_complete() noexcept {
  // acq_rel: release publishes the stored result to the JoinHandle's acquire
  // load; acquire sees a join waker published by set_join_waker.
  uint64_t prev = word_.fetch_xor(kRunning | kComplete, std::memory_order_acq_rel);
  POLLUX_DCHECK((prev & kRunning) && !(prev & kComplete),
                "transition_to_complete on a task that is not running");
  return prev;
}

bool TaskState::transition_to_notified_by_ref() noexcept {
  bool submit = false;
  update(word_, [&](uint64_t cur, uint64_t& next) {
    if (cur & (kComplete | kNotified)) {
      submit = false;
      return false;
    }
    if (cur & kRunning) {
      next = cur | kNotified;
      submit = false;
    } else {
      next = (cur | kNotified) + kRefOne;
      submit = true;
    }
    return true;
  });
  return submit;
}

TaskState::WakeByValResult TaskState::transition_to_notified_by_val() noexcept {
  WakeByValResult result = WakeByValResult::kDoNothing;
  update(word_, [&](uint64_t cur, uint64_t& next) {
    POLLUX_DCHECK(refs(cur) >= 1, "waking a task through a dead waker");
    if (cur & kRunning) {
      // The poll in progress holds a reference, so this one is never the last.
      next = (cur | kNotified) - kRefOne;
      result = WakeByValResult::kDoNothing;
    } else if (cur & (kComplete | kNotified)) {
      next = cur - kRefOne;
      result = refs(next) == 0 ? WakeByValResult::kDealloc : WakeByValResult::kDoNothing;
    } else {
      next = cur | kNotified;  // the waker's reference becomes the queue entry's
      result = WakeByValResult::kSubmit;
    }
    return true;
  });
  return result;
}

bool TaskState::transition_to_notified_and_cancel() noexcept {
  bool submit = false;
  update(word_, [&](uint64_t cur, uint64_t& next) {
    if (cur & (kComplete | kCancelled)) {
      submit = false;
      return false;
    }
    if (cur & kRunning) {
      next = cur | kCancelled | kNotified;
      submit = false;
    } else if (cur & kNotified) {
      next = cur | kCancelled;
      submit = false;
    } else {
      next = (cur | kCancelled | kNotified) + kRefOne;
      submit = true;
    }
    return true;
  });
  return submit;
}

bool TaskState::transition_to_shutdown() noexcept {
  bool drop_future = false;
  update(word_, [&](uint64_t cur, uint64_t& next) {
    if (cur & kComplete) {
      drop_future = false;
      return false;
    }
    drop_future = !(cur & kRunning);
    next = cur | kCancelled | kRunning;
    return true;
  });
  return drop_future;
}

bool TaskState::unset_join_interest() noexcept {
  uint64_t seen = update(word_, [](uint64_t cur, uint64_t& next) {
    if (cur & kComplete) return false;
    next = cur & ~kJoinInterest;
    return true;
  });
  return !(seen & kComplete);
}

bool TaskState::set_join_waker() noexcept {
  uint64_t seen = update(word_, [](uint64_t cur, uint64_t& next) {
    POLLUX_DCHECK(!(cur & kJoinWaker), "join waker set twice");
    if (cur & kComplete) return false;
    next = cur | kJoinWaker;
    return true;
  });
  return !(seen & kComplete);
}

bool TaskState::unset_join_waker() noexcept {
  uint64_t seen = update(word_, [](uint64_t cur, uint64_t& next) {
    if (cur & kComplete) return false;
    next = cur & ~kJoinWaker;
    return true;
  });
  return !(seen & kComplete);
}

bool TaskState::ref_dec(uint64_t count) noexcept {
  // acq_rel: release orders this thread's use of the cell before the free;
  // acquire (on the last decrement) sees every other holder's writes.
  uint64_t prev = word_.fetch_sub(count * kRefOne, std::memory_order_acq_rel);
  POLLUX_DCHECK(refs(prev) >= count, "task reference count underflow");
  return refs(prev) == count;
}

}  // namespace pollux::detail
