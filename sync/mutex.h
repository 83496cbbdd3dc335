// sync::Mutex<T>: an async mutex that guards a T, FIFO-fair.
//
//   sync::Mutex<std::vector<int>> m(std::vector<int>{});
//   {
//     sync::MutexGuard<std::vector<int>> g = co_await m.lock();
//     g->push_back(1);
//   }  // unlocked here; the next waiter in line gets it
//
// For state shared by tasks across an await. (For a short critical section
// with no await inside, a plain lock is cheaper.) Built on a one-permit
// Semaphore: waiters are served strictly in the order they queued, and
// lock() that finds it free costs one compare-exchange, unlock with nobody
// waiting another (no syscall).
//
// Cancellation: dropping a Lock future before Ready loses its place in the
// queue; if it had just been handed the lock, the lock passes to the next
// waiter. Nothing else happens.
//
// Thread-safety: lock()/try_lock() from any thread; a guard may be dropped
// on another thread than the one that locked. The Mutex must outlive its
// guards and Lock futures.
#ifndef POLLUX_SYNC_MUTEX_H_
#define POLLUX_SYNC_MUTEX_H_

#include <optional>
#include <utility>

#include "future/future.h"
#include "sync/semaphore.h"

namespace pollux::sync {

template <class T>
class Mutex;

// Holds a Mutex's lock and gives access to its T; unlocks when destroyed.
template <class T>
class [[nodiscard]] MutexGuard {
 public:
  MutexGuard(MutexGuard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  MutexGuard& operator=(MutexGuard&&) = delete;
  ~MutexGuard() {
    if (m_ != nullptr) m_->sem_.release(1);
  }
  T& operator*() const noexcept { return m_->value_; }
  T* operator->() const noexcept { return &m_->value_; }

 private:
  friend class Mutex<T>;
  explicit MutexGuard(Mutex<T>* m) noexcept : m_(m) {}
  Mutex<T>* m_;
};

// An async FIFO-fair mutex guarding a T (see above).
template <class T>
class Mutex {
 public:
  // The future lock() returns: Ready with the MutexGuard.
  class [[nodiscard]] Lock {
   public:
    using Output = MutexGuard<T>;
    Poll<MutexGuard<T>> poll(Context& cx) {
      if (acquire_.poll_raw(cx).is_pending()) return Pending{};
      return Ready(MutexGuard<T>(m_));  // never closed: a Mutex does not close
    }

   private:
    friend class Mutex;
    explicit Lock(Mutex* m) noexcept : m_(m), acquire_(m->sem_.acquire(1)) {}
    Mutex* m_;
    Acquire acquire_;
  };

  template <class... Args>
  explicit Mutex(Args&&... args) : value_(std::forward<Args>(args)...) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Waits for the lock (FIFO).
  Lock lock() noexcept { return Lock(this); }
  // The lock now, or nullopt (also when others are queued for it).
  std::optional<MutexGuard<T>> try_lock() noexcept {
    if (!sem_.try_take(1)) return std::nullopt;
    return MutexGuard<T>(this);
  }
  // Direct access when no one else can hold it (e.g. during setup).
  T& get_mut() noexcept { return value_; }

 private:
  friend class MutexGuard<T>;
  Semaphore sem_{1};
  T value_;
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_MUTEX_H_
