// watch: a single value that many receivers watch for changes.
//
//   auto [tx, rx] = sync::watch::channel<Config>(Config{});
//   tx.send(new_config);                          // replaces the value
//   absl::Status s = co_await rx.changed();       // OK: a newer value is there
//   Config now = *rx.borrow_and_update();          // read it, mark it seen
//
// - The channel keeps only the latest value and a version; a receiver that
//   misses several sends sees only the last (that is the point).
// - changed() completes once the value's version is newer than the one this
//   receiver last saw (borrow_and_update or a completed changed()), at once
//   if it already is; kFailedPrecondition "watch sender dropped" once the
//   sender is gone and nothing newer is left to see.
// - Receivers are copyable (a copy starts from the same seen version).
// - send() replaces the value even with no receiver left (send_replace
//   semantics; tokio's send fails then, which loses the value).
//
// Cancellation: dropping a changed() future loses nothing (the version is
// still newer for the next changed()).
//
// Thread-safety: from any thread. borrow() holds the channel's lock for the
// life of the returned Ref: keep it short, and never across an await.
#ifndef POLLUX_SYNC_WATCH_H_
#define POLLUX_SYNC_WATCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "future/future.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "sync/notify.h"

namespace pollux::sync::watch {

namespace detail {
template <class T>
struct Shared {
  template <class... A>
  explicit Shared(A&&... a) : value(std::forward<A>(a)...) {}
  pollux::detail::Mutex mu;
  T value ABSL_GUARDED_BY(mu);
  // version << 1 | CLOSED; bumped under mu, read lock-free.
  pollux::detail::Atomic<uint64_t> version{0};
  Notify changed;
};
inline constexpr uint64_t kClosed = 1;
}  // namespace detail

template <class T>
class Sender;

// A read lock on the current value.
template <class T>
class [[nodiscard]] Ref {
 public:
  Ref(Ref&&) = delete;
  // The lock was taken by borrow(); the analysis cannot follow it here.
  ~Ref() ABSL_NO_THREAD_SAFETY_ANALYSIS { s_->mu.unlock(); }
  const T& operator*() const noexcept { return value_; }
  const T* operator->() const noexcept { return &value_; }

 private:
  template <class>
  friend class Sender;
  template <class>
  friend class Receiver;
  explicit Ref(detail::Shared<T>* s) ABSL_NO_THREAD_SAFETY_ANALYSIS : s_(s), value_(s->value) {
    // Locked by the caller (borrow()).
  }
  detail::Shared<T>* s_;
  const T& value_;
};

// A receiving end of a watch channel: reads the latest value, waits for a newer
// one.
template <class T>
class Receiver {
 public:
  Receiver(const Receiver&) = default;
  Receiver(Receiver&&) noexcept = default;
  Receiver& operator=(const Receiver&) = default;
  Receiver& operator=(Receiver&&) noexcept = default;

  // The current value (locked while the Ref lives).
  Ref<T> borrow() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    s_->mu.lock();
    return Ref<T>(s_.get());
  }
  // The current value, marked seen.
  Ref<T> borrow_and_update() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    s_->mu.lock();
    // relaxed: under mu, which orders every version bump.
    seen_ = s_->version.load(std::memory_order_relaxed) >> 1;
    return Ref<T>(s_.get());
  }
  // True when a newer value than the last seen one is there.
  bool has_changed() const noexcept {
    // acquire: pairs with send's release.
    return (s_->version.load(std::memory_order_acquire) >> 1) != seen_;
  }

  // The future changed() returns: OK once a newer value is there.
  class [[nodiscard]] Changed {
   public:
    using Output = absl::Status;
    Poll<absl::Status> poll(Context& cx) {
      for (;;) {
        // acquire: pairs with send's release of the new version.
        const uint64_t v = r_->s_->version.load(std::memory_order_acquire);
        if ((v >> 1) != r_->seen_) {
          r_->seen_ = v >> 1;
          return Ready(absl::OkStatus());
        }
        if (v & detail::kClosed) {
          return Ready(absl::FailedPreconditionError("watch sender dropped"));
        }
        // notified_ was made before the check above, so a send after it
        // (version, then notify_waiters) completes it.
        if (notified_->poll(cx).is_pending()) return Pending{};
        notified_.emplace(r_->s_->changed.notified());
      }
    }

   private:
    friend class Receiver;
    explicit Changed(Receiver* r) : r_(r) { notified_.emplace(r->s_->changed.notified()); }
    Receiver* r_;
    std::optional<Notified> notified_;
  };
  // Completes once a newer value is there (see the header).
  Changed changed() { return Changed(this); }

 private:
  template <class U, class V>
  friend std::pair<Sender<U>, Receiver<U>> channel(V&& initial);
  template <class>
  friend class Sender;
  Receiver(std::shared_ptr<detail::Shared<T>> s, uint64_t seen) : s_(std::move(s)), seen_(seen) {}
  std::shared_ptr<detail::Shared<T>> s_;
  uint64_t seen_;
};

// The sending end of a watch channel: replaces the value.
template <class T>
class Sender {
 public:
  Sender(Sender&&) noexcept = default;
  Sender& operator=(Sender&&) = delete;
  Sender(const Sender&) = delete;
  ~Sender() {
    if (!s_) return;
    // acq_rel: the close is seen by changed()'s acquire.
    s_->version.fetch_or(detail::kClosed, std::memory_order_acq_rel);
    s_->changed.notify_waiters();
  }

  // Replaces the value and wakes every waiting changed(). Returns the old one.
  T send(T value) {
    std::optional<T> old;
    {
      pollux::detail::MutexLock lock(s_->mu);
      old.emplace(std::exchange(s_->value, std::move(value)));
      // release: publishes the new value to changed()'s acquire (readers
      // then take the lock, which orders the value itself).
      s_->version.fetch_add(2, std::memory_order_acq_rel);
    }
    s_->changed.notify_waiters();
    return std::move(*old);
  }
  Ref<T> borrow() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
    s_->mu.lock();
    return Ref<T>(s_.get());
  }
  // A new receiver that has seen the current value.
  Receiver<T> subscribe() const {
    // acquire: the version of the value this receiver starts from.
    return Receiver<T>(s_, s_->version.load(std::memory_order_acquire) >> 1);
  }

 private:
  template <class U, class V>
  friend std::pair<Sender<U>, Receiver<U>> channel(V&& initial);
  explicit Sender(std::shared_ptr<detail::Shared<T>> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::Shared<T>> s_;
};

template <class T, class V>
[[nodiscard]] std::pair<Sender<T>, Receiver<T>> channel(V&& initial) {
  auto s = std::make_shared<detail::Shared<T>>(std::forward<V>(initial));
  Receiver<T> r(s, 0);
  return {Sender<T>(std::move(s)), std::move(r)};
}

}  // namespace pollux::sync::watch

#endif  // POLLUX_SYNC_WATCH_H_
