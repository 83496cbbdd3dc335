// The model checker's detail::Mutex, detail::MutexLock and detail::CondVar
// (the --config=model side of future/internal/mutex.h), with the same API
// and the same thread-safety annotations.
//
// On a model thread during model::check: lock, unlock, wait and notify are
// scheduling points; a lock of a held mutex blocks the thread, a wait
// blocks it until a notify (wait_for: or until the checker chooses its
// timeout); unlock -> lock is a happens-before edge; every thread blocked
// is a reported deadlock. notify_one wakes each possible waiter in some
// execution. No spurious wake-ups are explored (callers loop anyway).
// Anywhere else they are a std::mutex and a std::condition_variable_any.
//
// An object must not be used inside and outside an execution at once.
#ifndef POLLUX_TESTS_MODEL_INSTRUMENTED_MUTEX_H_
#define POLLUX_TESTS_MODEL_INSTRUMENTED_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "tests/model/internal/hooks.h"

namespace pollux::detail {

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock(const char* file = __builtin_FILE(), int line = __builtin_LINE())
      ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    if (!model::internal::in_execution()) return mu_.lock();
    model::internal::mutex_lock(link_, this, {file, line});
  }
  void unlock(const char* file = __builtin_FILE(), int line = __builtin_LINE())
      ABSL_UNLOCK_FUNCTION() {
    if (!model::internal::in_execution()) return mu_.unlock();
    model::internal::mutex_unlock(link_, this, {file, line});
  }
  [[nodiscard]] bool try_lock(const char* file = __builtin_FILE(), int line = __builtin_LINE())
      ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (!model::internal::in_execution()) return mu_.try_lock();
    return model::internal::mutex_try_lock(link_, this, {file, line});
  }

 private:
  friend class CondVar;
  std::mutex mu_;
  model::internal::MutexLink link_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu, const char* file = __builtin_FILE(), int line = __builtin_LINE())
      ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu), file_(file), line_(line) {
    mu_.lock(file_, line_);
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(file_, line_); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
  const char* file_;
  int line_;
};

class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu`, sleeps until notified, then re-acquires it.
  void wait(Mutex& mu, const char* file = __builtin_FILE(), int line = __builtin_LINE())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!model::internal::in_execution()) return cv_.wait(mu.mu_);
    (void)model::internal::condvar_wait(link_, this, mu.link_, &mu, /*timed=*/false,
                                        {file, line});
  }
  // As wait(), but also returns after `timeout`. True when it timed out.
  bool wait_for(Mutex& mu, absl::Duration timeout, const char* file = __builtin_FILE(),
                int line = __builtin_LINE()) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!model::internal::in_execution()) {
      return cv_.wait_for(mu.mu_, absl::ToChronoNanoseconds(timeout)) == std::cv_status::timeout;
    }
    return model::internal::condvar_wait(link_, this, mu.link_, &mu, /*timed=*/true,
                                          {file, line});
  }
  void notify_one(const char* file = __builtin_FILE(), int line = __builtin_LINE()) noexcept {
    if (!model::internal::in_execution()) return cv_.notify_one();
    model::internal::condvar_notify(link_, this, /*all=*/false, {file, line});
  }
  void notify_all(const char* file = __builtin_FILE(), int line = __builtin_LINE()) noexcept {
    if (!model::internal::in_execution()) return cv_.notify_all();
    model::internal::condvar_notify(link_, this, /*all=*/true, {file, line});
  }

 private:
  std::condition_variable_any cv_;
  model::internal::CondVarLink link_;
};

}  // namespace pollux::detail

#endif  // POLLUX_TESTS_MODEL_INSTRUMENTED_MUTEX_H_
