// detail::SpinLock and detail::SpinLockHolder: a test-and-test-and-set lock
// for critical sections of a few instructions that several threads take
// (the multi_thread scheduler's OwnedTasks shards: a bind at every spawn, a
// remove at every completion, often on another worker than the bind).
//
// Against std::mutex: one exchange to lock and one store to unlock, and a
// contended lock spins instead of sleeping in a futex (measured: the shard
// mutex was a quarter of a 2-worker spawn-and-join, much of it futex waits).
// The holder only writes a few pointers, so a waiter spins briefly; after
// kSpinsBeforeYield rounds it yields the CPU, in case the holder was
// preempted. Built on the shim's Atomic and spin_loop_hint, so under
// --config=model it is a lock the checker sees (acquire/release edges, and
// a spin that yields to the holder).
//
// Thread-safety: that is what it is for. Not re-entrant. Annotated for
// clang's -Wthread-safety like detail::Mutex.
#ifndef POLLUX_FUTURE_INTERNAL_SPIN_LOCK_H_
#define POLLUX_FUTURE_INTERNAL_SPIN_LOCK_H_

#include <sched.h>

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "future/internal/atomic.h"
#include "future/internal/thread.h"

namespace pollux::detail {

class ABSL_LOCKABLE SpinLock {
 public:
  SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    for (;;) {
      // acquire: pairs with unlock()'s release, so the previous holder's
      // writes are visible inside the section.
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      // relaxed: only waiting for the lock to look free; the exchange above
      // does the acquire.
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < kSpinsBeforeYield) {
          spin_loop_hint();
        } else {
          ::sched_yield();
          spins = 0;
        }
      }
    }
  }
  void unlock() ABSL_UNLOCK_FUNCTION() {
    // release: pairs with lock()'s acquire.
    locked_.store(false, std::memory_order_release);
  }

 private:
  static constexpr int kSpinsBeforeYield = 128;
  Atomic<bool> locked_{false};
};

// Holds `lock` for its scope.
class ABSL_SCOPED_LOCKABLE SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock& lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) {
    lock_.lock();
  }
  ~SpinLockHolder() ABSL_UNLOCK_FUNCTION() { lock_.unlock(); }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace pollux::detail

#endif  // POLLUX_FUTURE_INTERNAL_SPIN_LOCK_H_
