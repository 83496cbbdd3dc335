// detail::Mutex, detail::MutexLock and detail::CondVar: the locks of pollux's
// shared state, annotated for clang's thread-safety analysis.
//
//   detail::Mutex mu_;
//   TaskList queue_ ABSL_GUARDED_BY(mu_);
//   { detail::MutexLock lock(mu_); queue_.push_back(t); }
//
// Mutex is ABSL_LOCKABLE, so `ABSL_GUARDED_BY(mu_)` on a member is checked
// at compile time by `--config=clang` (-Wthread-safety): touching guarded
// state without the lock is a build error, not a comment.
//
// What is underneath:
// - std::mutex and std::condition_variable_any (pthreads). Not absl::Mutex,
//   although the annotations are abseil's, for two measured reasons: on these
//   machines Debian's absl::Mutex costs 36 ns per uncontended lock+unlock
//   against 3.9 ns for std::mutex (a 20,000,000-round loop, -O2, one
//   pinned core), which every sync primitive and the executor's inject
//   queue would pay; and Debian's abseil is not built with ThreadSanitizer,
//   so TSan cannot see absl::Mutex's happens-before edges and reports every
//   guarded access as a race (verified with a two-thread counter);
// - under `--config=model` (POLLUX_MODEL) the model checker's own mutex and
//   condition variable (tests/model/): lock, unlock, wait and notify are
//   scheduling points, a blocked lock is a blocked thread, and "everyone
//   blocked" is a reported deadlock.
//
// CondVar::wait may wake spuriously; wait in a loop on a guarded predicate.
// Thread-safety: that is what they are for. Not re-entrant.
#ifndef POLLUX_FUTURE_INTERNAL_MUTEX_H_
#define POLLUX_FUTURE_INTERNAL_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

#if defined(POLLUX_MODEL)
#include "tests/model/instrumented.h"
#else

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace pollux::detail {

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  [[nodiscard]] bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu`, sleeps until notified (or spuriously), then re-acquires it.
  void wait(Mutex& mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { cv_.wait(mu.mu_); }
  // As wait(), but also returns after `timeout`. True when it timed out.
  bool wait_for(Mutex& mu, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return cv_.wait_for(mu.mu_, absl::ToChronoNanoseconds(timeout)) == std::cv_status::timeout;
  }
  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace pollux::detail

#endif  // POLLUX_MODEL

#endif  // POLLUX_FUTURE_INTERNAL_MUTEX_H_
