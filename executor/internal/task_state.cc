#include "executor/internal/task_state.h"

#include "future/assert.h"

namespace pollux::detail {

namespace {
// Runs `f(current) -> optional next` in a CAS loop; returns the value seen
// when `f` declined (nullopt) or the value replaced.
template <class F>
TaskState::Snapshot update(Atomic<uint64_t>& word, F&& f) noexcept {
  // acquire (initial load and CAS failure): when `f` declines, the caller
  // acts on the state it saw without a successful RMW, e.g. a JoinHandle
  // whose unset_join_interest/unset_join_waker/set_join_waker finds COMPLETE
  // then reads or drops the result; this pairs with transition_to_complete's
  // release so the result written before COMPLETE is visible.
  uint64_t cur = word.load(std::memory_order_acquire);
  for (;;) {
    uint64_t next;
    if (!f(TaskState::Snapshot{cur}, next)) return TaskState::Snapshot{cur};
    // acq_rel: see the ordering paragraph of task_state.h.
    if (word.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
      return TaskState::Snapshot{cur};
    }
  }
}
}  // namespace

TaskState::RunResult TaskState::transition_to_running() noexcept {
  RunResult result = RunResult::kFailed;
  update(word_, [&](Snapshot cur, uint64_t& next) {
    POLLUX_DCHECK(cur.is_notified(), "task ran without being notified");
    if (!cur.is_idle()) {
      result = RunResult::kFailed;
      return false;
    }
    next = (cur.bits & ~kNotified) | kRunning;
    result = cur.is_cancelled() ? RunResult::kCancel : RunResult::kPoll;
    return true;
  });
  return result;
}

TaskState::IdleResult TaskState::transition_to_idle() noexcept {
  IdleResult result = IdleResult::kOk;
  update(word_, [&](Snapshot cur, uint64_t& next) {
    POLLUX_DCHECK(cur.is_running(), "transition_to_idle on a task that is not running");
    if (cur.is_cancelled()) {
      result = IdleResult::kCancelled;
      return false;
    }
    next = cur.bits & ~kRunning;
    if (cur.is_notified()) {
      result = IdleResult::kOkNotified;
    } else {
      // The owned-tasks list still holds a reference, so this is never the last.
      POLLUX_DCHECK(cur.ref_count() >= 2, "task reference count underflow");
      next -= kRefOne;
      result = IdleResult::kOk;
    }
    return true;
  });
  return result;
}

TaskState::Snapshot TaskState::transition_to_complete() noexcept {
  // acq_rel: release publishes the stored result to the JoinHandle's acquire
  // load; acquire sees a join waker published by set_join_waker.
  const Snapshot prev{word_.fetch_xor(kRunning | kComplete, std::memory_order_acq_rel)};
  POLLUX_DCHECK(prev.is_running() && !prev.is_complete(),
                "transition_to_complete on a task that is not running");
  return prev;
}

bool TaskState::transition_to_notified_by_ref() noexcept {
  bool submit = false;
  update(word_, [&](Snapshot cur, uint64_t& next) {
    if (cur.is_complete() || cur.is_notified()) {
      submit = false;
      return false;
    }
    if (cur.is_running()) {
      next = cur.bits | kNotified;  // the poller queues it again when it returns
      submit = false;
    } else {
      next = (cur.bits | kNotified) + kRefOne;  // the new queue entry's reference
      submit = true;
    }
    return true;
  });
  return submit;
}

TaskState::WakeByValResult TaskState::transition_to_notified_by_val() noexcept {
  WakeByValResult result = WakeByValResult::kDoNothing;
  update(word_, [&](Snapshot cur, uint64_t& next) {
    POLLUX_DCHECK(cur.ref_count() >= 1, "waking a task through a dead waker");
    if (cur.is_running()) {
      // The poll in progress holds a reference, so this one is never the last.
      next = (cur.bits | kNotified) - kRefOne;
      result = WakeByValResult::kDoNothing;
    } else if (cur.is_complete() || cur.is_notified()) {
      next = cur.bits - kRefOne;
      result = Snapshot{next}.ref_count() == 0 ? WakeByValResult::kDealloc
                                                : WakeByValResult::kDoNothing;
    } else {
      next = cur.bits | kNotified;  // the waker's reference becomes the queue entry's
      result = WakeByValResult::kSubmit;
    }
    return true;
  });
  return result;
}

bool TaskState::transition_to_notified_and_cancel() noexcept {
  bool submit = false;
  update(word_, [&](Snapshot cur, uint64_t& next) {
    if (cur.is_complete() || cur.is_cancelled()) {
      submit = false;
      return false;
    }
    if (cur.is_running()) {
      next = cur.bits | kCancelled | kNotified;
      submit = false;
    } else if (cur.is_notified()) {
      next = cur.bits | kCancelled;  // its queue entry will see CANCELLED
      submit = false;
    } else {
      next = (cur.bits | kCancelled | kNotified) + kRefOne;
      submit = true;
    }
    return true;
  });
  return submit;
}

bool TaskState::transition_to_shutdown() noexcept {
  bool drop_future = false;
  update(word_, [&](Snapshot cur, uint64_t& next) {
    if (cur.is_complete()) {
      drop_future = false;
      return false;
    }
    drop_future = !cur.is_running();
    next = cur.bits | kCancelled | kRunning;
    return true;
  });
  return drop_future;
}

bool TaskState::unset_join_interest() noexcept {
  const Snapshot seen = update(word_, [](Snapshot cur, uint64_t& next) {
    if (cur.is_complete()) return false;
    next = cur.bits & ~kJoinInterest;
    return true;
  });
  return !seen.is_complete();
}

bool TaskState::set_join_waker() noexcept {
  const Snapshot seen = update(word_, [](Snapshot cur, uint64_t& next) {
    POLLUX_DCHECK(!cur.has_join_waker(), "join waker set twice");
    if (cur.is_complete()) return false;
    next = cur.bits | kJoinWaker;
    return true;
  });
  return !seen.is_complete();
}

bool TaskState::unset_join_waker() noexcept {
  const Snapshot seen = update(word_, [](Snapshot cur, uint64_t& next) {
    if (cur.is_complete()) return false;
    next = cur.bits & ~kJoinWaker;
    return true;
  });
  return !seen.is_complete();
}

bool TaskState::ref_dec(uint64_t count) noexcept {
  // acq_rel: release orders this thread's use of the cell before the free;
  // acquire (on the last decrement) sees every other holder's writes.
  uint64_t prev = word_.fetch_sub(count * kRefOne, std::memory_order_acq_rel);
  POLLUX_DCHECK(refs(prev) >= count, "task reference count underflow");
  return refs(prev) == count;
}

}  // namespace pollux::detail
