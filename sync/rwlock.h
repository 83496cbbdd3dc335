// sync::RwLock<T>: many readers or one writer, fair and write-preferring.
//
//   sync::RwLock<Config> cfg(Config{});
//   { auto r = co_await cfg.read();  use(*r); }
//   { auto w = co_await cfg.write(); w->port = 80; }
//
// Built on a Semaphore of kMaxReaders permits (as tokio's): a reader takes
// one, a writer takes them all. Waiters are served in the order they queued,
// so a queued writer is not starved by readers that come after it (they
// queue behind it), and a writer never overtakes earlier readers.
//
// Cancellation: dropping a read() or write() future before Ready loses its
// place; permits already set aside for it go back (a half-filled writer
// frees what it held, so the readers behind it proceed).
//
// Thread-safety: from any thread; guards may be dropped on any thread. The
// RwLock must outlive its guards and futures.
#ifndef POLLUX_SYNC_RWLOCK_H_
#define POLLUX_SYNC_RWLOCK_H_

#include <cstddef>
#include <optional>
#include <utility>

#include "future/future.h"
#include "sync/semaphore.h"

namespace pollux::sync {

template <class T>
class RwLock;

// Shared access to an RwLock's T; released when destroyed.
template <class T>
class [[nodiscard]] ReadGuard {
 public:
  ReadGuard(ReadGuard&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
  ReadGuard& operator=(ReadGuard&&) = delete;
  ~ReadGuard() {
    if (l_ != nullptr) l_->sem_.release(1);
  }
  const T& operator*() const noexcept { return l_->value_; }
  const T* operator->() const noexcept { return &l_->value_; }

 private:
  friend class RwLock<T>;
  explicit ReadGuard(RwLock<T>* l) noexcept : l_(l) {}
  RwLock<T>* l_;
};

// Exclusive access to an RwLock's T; released when destroyed.
template <class T>
class [[nodiscard]] WriteGuard {
 public:
  WriteGuard(WriteGuard&& o) noexcept : l_(std::exchange(o.l_, nullptr)) {}
  WriteGuard& operator=(WriteGuard&&) = delete;
  ~WriteGuard() {
    if (l_ != nullptr) l_->sem_.release(RwLock<T>::kMaxReaders);
  }
  T& operator*() const noexcept { return l_->value_; }
  T* operator->() const noexcept { return &l_->value_; }

 private:
  friend class RwLock<T>;
  explicit WriteGuard(RwLock<T>* l) noexcept : l_(l) {}
  RwLock<T>* l_;
};

// An async reader-writer lock guarding a T (see above).
template <class T>
class RwLock {
 public:
  // Readers at once; a writer takes all of these permits.
  static constexpr size_t kMaxReaders = size_t{1} << 30;

  // The future read() or write() returns: Ready with the Guard.
  template <class Guard>
  class [[nodiscard]] Wait {
   public:
    using Output = Guard;
    Poll<Guard> poll(Context& cx) {
      if (acquire_.poll_raw(cx).is_pending()) return Pending{};
      return Ready(Guard(l_));  // never closed
    }

   private:
    friend class RwLock;
    Wait(RwLock* l, size_t n) noexcept : l_(l), acquire_(l->sem_.acquire(n)) {}
    RwLock* l_;
    Acquire acquire_;
  };

  template <class... Args>
  explicit RwLock(Args&&... args) : value_(std::forward<Args>(args)...) {}
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  Wait<ReadGuard<T>> read() noexcept { return Wait<ReadGuard<T>>(this, 1); }
  Wait<WriteGuard<T>> write() noexcept { return Wait<WriteGuard<T>>(this, kMaxReaders); }
  std::optional<ReadGuard<T>> try_read() noexcept {
    if (!sem_.try_take(1)) return std::nullopt;
    return ReadGuard<T>(this);
  }
  std::optional<WriteGuard<T>> try_write() noexcept {
    if (!sem_.try_take(kMaxReaders)) return std::nullopt;
    return WriteGuard<T>(this);
  }

 private:
  friend class ReadGuard<T>;
  friend class WriteGuard<T>;
  Semaphore sem_{kMaxReaders};
  T value_;
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_RWLOCK_H_
