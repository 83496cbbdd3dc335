// TaskState: the one atomic word that holds a task's lifecycle bits and its
// reference count. Every transition is a single atomic read-modify-write.
//
// Bits (low) and their invariants:
//   RUNNING        the owner thread is polling the future (or dropping it).
//                  Only the thread that set it touches the future/stage.
//                  Also set while the task sits in its owner's run queue
//                  before its first poll, or after waking itself during a
//                  poll (see run_task): only that owner ever polls it, so it
//                  skips transition_to_running and only checks CANCELLED.
//   COMPLETE       the future is gone and the stage holds the result (or was
//                  consumed). Never cleared. COMPLETE implies !RUNNING.
//   NOTIFIED       the task is in a run queue, or (if RUNNING) must go back
//                  into one when the poll returns. A NOTIFIED idle task owns
//                  one reference held by its queue entry.
//   JOIN_INTEREST  a JoinHandle exists; the result must be kept for it.
//   JOIN_WAKER     the JoinHandle wrote a waker into the trailer; while set,
//                  only the task side may read it; the handle writes it only
//                  while the bit is clear. Never set once COMPLETE.
//   CANCELLED      abort() or shutdown asked for the future to be dropped.
// High bits: reference count (units of kRefOne). References are held by the
// owned-tasks list (until COMPLETE), a run-queue entry, the JoinHandle, and
// each Waker. The cell is freed when the count reaches zero.
//
// Ordering: every transition is acq_rel. Release publishes what this thread
// wrote to the cell before the transition (the future's state after a poll,
// the result before COMPLETE, the join waker before JOIN_WAKER); acquire makes
// the next thread that transitions see it. Pairs: transition_to_idle (rel) ->
// transition_to_running (acq); transition_to_complete (rel) -> JoinHandle's
// load of COMPLETE (acq); set_join_waker (rel) -> transition_to_complete (acq).
// ref_inc is relaxed: a reference is only ever created from an existing one,
// so there is nothing to publish (as with shared_ptr copies).
#ifndef POLLUX_EXECUTOR_INTERNAL_TASK_STATE_H_
#define POLLUX_EXECUTOR_INTERNAL_TASK_STATE_H_

#include <atomic>
#include <cstdint>

#include "future/assert.h"
#include "future/internal/atomic.h"

namespace pollux::detail {

class TaskState {
 public:
  static constexpr uint64_t kRunning = 1u << 0;
  static constexpr uint64_t kComplete = 1u << 1;
  static constexpr uint64_t kNotified = 1u << 2;
  static constexpr uint64_t kJoinInterest = 1u << 3;
  static constexpr uint64_t kJoinWaker = 1u << 4;
  static constexpr uint64_t kCancelled = 1u << 5;
  static constexpr uint64_t kRefShift = 6;
  static constexpr uint64_t kRefOne = uint64_t{1} << kRefShift;
  static constexpr uint64_t kFlagMask = kRefOne - 1;

  // One reading of the word, asked about by name (as tokio's Snapshot).
  struct Snapshot {
    uint64_t bits;
    bool is_running() const noexcept { return bits & kRunning; }
    bool is_complete() const noexcept { return bits & kComplete; }
    bool is_notified() const noexcept { return bits & kNotified; }
    bool is_cancelled() const noexcept { return bits & kCancelled; }
    bool has_join_interest() const noexcept { return bits & kJoinInterest; }
    bool has_join_waker() const noexcept { return bits & kJoinWaker; }
    // Neither being polled (or queued RUNNING) nor finished.
    bool is_idle() const noexcept { return !(bits & (kRunning | kComplete)); }
    uint64_t ref_count() const noexcept { return bits >> kRefShift; }
  };

  // A task queued by a wake: NOTIFIED with JOIN_INTEREST and three
  // references (the owned-tasks list, the run-queue entry, the handle).
  // Tests use it; spawned tasks start queued_for_first_poll() instead.
  TaskState() noexcept : word_(kNotified | kJoinInterest | 3 * kRefOne) {}

  // What a new task cell starts as: RUNNING instead of NOTIFIED, because it
  // is queued for its first poll, which then needs no compare-exchange (see
  // run_task; DESIGN §4: RUNNING is owned by that one queue entry), with
  // JOIN_INTEREST and the same three references. Before the cell is
  // published to anyone (relaxed: the push onto a run queue or the inject
  // queue's mutex publishes it).
  void set_queued_for_first_poll() noexcept {
    word_.store(kRunning | kJoinInterest | 3 * kRefOne, std::memory_order_relaxed);
  }

  Snapshot load() const noexcept {
    // acquire: pairs with the acq_rel transitions; the caller then reads the
    // stage or trailer those transitions published.
    return Snapshot{word_.load(std::memory_order_acquire)};
  }
  static uint64_t refs(uint64_t s) noexcept { return s >> kRefShift; }

  enum class RunResult { kPoll, kCancel, kFailed };
  // Queue entry -> RUNNING (clears NOTIFIED). kFailed when the task is already
  // running or complete (the caller just drops the entry's reference);
  // kCancel when CANCELLED is set (the caller drops the future).
  RunResult transition_to_running() noexcept;

  enum class IdleResult { kOk, kOkNotified, kCancelled };
  // RUNNING -> idle after a Pending poll. kOk: the queue entry's reference
  // was released here. kOkNotified: woken during the poll; the reference
  // stays with the caller, who re-queues the task. kCancelled: still RUNNING;
  // the caller drops the future and completes.
  IdleResult transition_to_idle() noexcept;

  // RUNNING -> COMPLETE. Returns the state before the transition.
  Snapshot transition_to_complete() noexcept;

  // Wake keeping the caller's reference. True when the caller must queue the
  // task; a new reference for that queue entry was taken here.
  bool transition_to_notified_by_ref() noexcept;

  enum class WakeByValResult { kDoNothing, kSubmit, kDealloc };
  // Wake consuming the caller's reference: kSubmit hands that reference to a
  // queue entry; kDealloc means it was the last one.
  WakeByValResult transition_to_notified_by_val() noexcept;

  // abort(): sets CANCELLED unless complete. True when the caller must queue
  // the (idle) task; a new reference for that entry was taken here.
  bool transition_to_notified_and_cancel() noexcept;

  // Shutdown on the owner thread: sets CANCELLED, and RUNNING too when the
  // task is idle, in which case it returns true and the caller drops the
  // future and completes the task.
  bool transition_to_shutdown() noexcept;

  // JoinHandle side. Each fails (returns false) when the task is COMPLETE,
  // in which case the handle owns the result.
  bool unset_join_interest() noexcept;
  bool set_join_waker() noexcept;
  bool unset_join_waker() noexcept;

  void ref_inc() noexcept {
    // relaxed: see the header comment (references come from references).
    word_.fetch_add(kRefOne, std::memory_order_relaxed);
  }
  // True when this released the last reference (the caller frees the cell).
  bool ref_dec(uint64_t count = 1) noexcept;

 private:
  // Runs `f(current, next)` in a CAS loop; returns the value seen when `f`
  // declined (returned false) or the value replaced.
  template <class F>
  static Snapshot update_word(Atomic<uint64_t>& word, F&& f) noexcept;

  Atomic<uint64_t> word_;
};

// The transitions of every poll and wake, inline: each is one CAS on the
// task's word, and a call around it cost about as much again.

template <class F>
inline TaskState::Snapshot TaskState::update_word(Atomic<uint64_t>& word, F&& f) noexcept {
  // acquire (initial load and CAS failure): when `f` declines, the caller
  // acts on the state it saw without a successful RMW, e.g. a JoinHandle
  // whose unset_join_interest/unset_join_waker/set_join_waker finds COMPLETE
  // then reads or drops the result; this pairs with transition_to_complete's
  // release so the result written before COMPLETE is visible.
  uint64_t cur = word.load(std::memory_order_acquire);
  for (;;) {
    uint64_t next;
    if (!f(TaskState::Snapshot{cur}, next)) return TaskState::Snapshot{cur};
    // acq_rel: see the ordering paragraph at the top of this header.
    if (word.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
      return TaskState::Snapshot{cur};
    }
  }
}

inline TaskState::RunResult TaskState::transition_to_running() noexcept {
  RunResult result = RunResult::kFailed;
  update_word(word_, [&](Snapshot cur, uint64_t& next) {
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

inline TaskState::IdleResult TaskState::transition_to_idle() noexcept {
  IdleResult result = IdleResult::kOk;
  update_word(word_, [&](Snapshot cur, uint64_t& next) {
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

inline bool TaskState::transition_to_notified_by_ref() noexcept {
  bool submit = false;
  update_word(word_, [&](Snapshot cur, uint64_t& next) {
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

inline TaskState::WakeByValResult TaskState::transition_to_notified_by_val() noexcept {
  WakeByValResult result = WakeByValResult::kDoNothing;
  update_word(word_, [&](Snapshot cur, uint64_t& next) {
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

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_TASK_STATE_H_
