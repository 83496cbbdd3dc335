#include "executor/internal/task_state.h"

#include "future/assert.h"

namespace pollux::detail {

TaskState::Snapshot TaskState::transition_to_complete() noexcept {
  // acq_rel: release publishes the stored result to the JoinHandle's acquire
  // load; acquire sees a join waker published by set_join_waker.
  const Snapshot prev{word_.fetch_xor(kRunning | kComplete, std::memory_order_acq_rel)};
  POLLUX_DCHECK(prev.is_running() && !prev.is_complete(),
                "transition_to_complete on a task that is not running");
  return prev;
}

bool TaskState::transition_to_notified_and_cancel() noexcept {
  bool submit = false;
  update_word(word_, [&](Snapshot cur, uint64_t& next) {
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
  update_word(word_, [&](Snapshot cur, uint64_t& next) {
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
  const Snapshot seen = update_word(word_, [](Snapshot cur, uint64_t& next) {
    if (cur.is_complete()) return false;
    next = cur.bits & ~kJoinInterest;
    return true;
  });
  return !seen.is_complete();
}

bool TaskState::set_join_waker() noexcept {
  const Snapshot seen = update_word(word_, [](Snapshot cur, uint64_t& next) {
    POLLUX_DCHECK(!cur.has_join_waker(), "join waker set twice");
    if (cur.is_complete()) return false;
    next = cur.bits | kJoinWaker;
    return true;
  });
  return !seen.is_complete();
}

bool TaskState::unset_join_waker() noexcept {
  const Snapshot seen = update_word(word_, [](Snapshot cur, uint64_t& next) {
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
