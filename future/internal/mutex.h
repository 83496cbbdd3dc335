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
// - normally absl::Mutex and absl::CondVar;
// - under ThreadSanitizer std::mutex and std::condition_variable_any, because
//   Debian's abseil is not built with TSan: TSan cannot see the happens-before
//   edges of its Mutex and reports every guarded access as a race (verified
//   with a two-thread counter under g++ and clang++);
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

#if defined(__SANITIZE_THREAD__)
#define POLLUX_MUTEX_STD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define POLLUX_MUTEX_STD 1
#endif
#endif

#if defined(POLLUX_MUTEX_STD)
#include <chrono>
#include <condition_variable>
#include <mutex>
#else
#include "absl/synchronization/mutex.h"
#endif

namespace pollux::detail {

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
#if defined(POLLUX_MUTEX_STD)
    mu_.lock();
#else
    mu_.Lock();
#endif
  }
  void unlock() ABSL_UNLOCK_FUNCTION() {
#if defined(POLLUX_MUTEX_STD)
    mu_.unlock();
#else
    mu_.Unlock();
#endif
  }
  [[nodiscard]] bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
#if defined(POLLUX_MUTEX_STD)
    return mu_.try_lock();
#else
    return mu_.TryLock();
#endif
  }

 private:
  friend class CondVar;
#if defined(POLLUX_MUTEX_STD)
  std::mutex mu_;
#else
  absl::Mutex mu_;
#endif
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
  void wait(Mutex& mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
#if defined(POLLUX_MUTEX_STD)
    cv_.wait(mu.mu_);
#else
    cv_.Wait(&mu.mu_);
#endif
  }
  // As wait(), but also returns after `timeout`. True when it timed out.
  bool wait_for(Mutex& mu, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
#if defined(POLLUX_MUTEX_STD)
    return cv_.wait_for(mu.mu_, absl::ToChronoNanoseconds(timeout)) == std::cv_status::timeout;
#else
    return cv_.WaitWithTimeout(&mu.mu_, timeout);
#endif
  }
  void notify_one() noexcept {
#if defined(POLLUX_MUTEX_STD)
    cv_.notify_one();
#else
    cv_.Signal();
#endif
  }
  void notify_all() noexcept {
#if defined(POLLUX_MUTEX_STD)
    cv_.notify_all();
#else
    cv_.SignalAll();
#endif
  }

 private:
#if defined(POLLUX_MUTEX_STD)
  std::condition_variable_any cv_;
#else
  absl::CondVar cv_;
#endif
};

}  // namespace pollux::detail

#endif  // POLLUX_MODEL

#endif  // POLLUX_FUTURE_INTERNAL_MUTEX_H_
