// broadcast: every receiver gets every value (multi-producer, multi-consumer).
//
//   auto [tx, rx] = sync::broadcast::channel<Event>(16);
//   sync::broadcast::Receiver<Event> rx2 = tx.subscribe();
//   size_t receivers = tx.send(ev);
//   sync::broadcast::RecvResult<Event> r = co_await rx.recv();
//   if (r.lagged()) ...   // r.missed() values were overwritten before this
//                         // receiver read them; it resumes at the oldest kept
//
// - The channel keeps the last `capacity` values (rounded up to a power of
//   two); a value stays until `capacity` newer ones were sent. Each value is
//   copied to each receiver as it reads (T must be copyable; the copy is made
//   under the channel's lock, the one user code that runs there: keep T's
//   copy cheap, e.g. a shared_ptr for big payloads).
// - A receiver that falls behind by more than the capacity gets one Lagged
//   result saying how many values it missed, then continues from the oldest
//   kept value (tokio's semantics).
// - When every sender is gone, receivers drain what is kept, then get Closed.
// - subscribe() makes a receiver that sees values sent from now on.
//
// Cancellation: dropping a recv() future loses nothing (the value stays for
// the next recv()).
//
// Thread-safety: from any thread; each receiver in one task at a time. A
// recv() future borrows its receiver, which must outlive it.
#ifndef POLLUX_SYNC_BROADCAST_H_
#define POLLUX_SYNC_BROADCAST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "future/assert.h"
#include "future/future.h"
#include "future/internal/mutex.h"
#include "sync/internal/waiters.h"

namespace pollux::sync::broadcast {

// What recv() returns: a value, Lagged (with how many were missed) or Closed.
template <class T>
class RecvResult {
 public:
  bool ok() const noexcept { return value_.has_value(); }
  bool lagged() const noexcept { return missed_ > 0; }
  bool closed() const noexcept { return !ok() && !lagged(); }
  // The value (requires ok()).
  T& value() noexcept { return *value_; }
  // How many values were lost (requires lagged()).
  uint64_t missed() const noexcept { return missed_; }

  static RecvResult of(T v) { return RecvResult(std::move(v), 0); }
  static RecvResult lag(uint64_t n) { return RecvResult(std::nullopt, n); }
  static RecvResult end() { return RecvResult(std::nullopt, 0); }

 private:
  RecvResult(std::optional<T> v, uint64_t missed) : value_(std::move(v)), missed_(missed) {}
  std::optional<T> value_;
  uint64_t missed_;
};

template <class T>
class Receiver;

namespace detail {

template <class T>
struct RecvWaiter;

template <class T>
struct Shared {
  explicit Shared(size_t capacity) {
    size_t cap = 1;
    while (cap < capacity) cap *= 2;
    pollux::detail::MutexLock lock(mu);
    slots.resize(cap);
    mask = cap - 1;
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  pollux::detail::Mutex mu;
  std::vector<std::optional<T>> slots ABSL_GUARDED_BY(mu);
  uint64_t mask ABSL_GUARDED_BY(mu) = 0;
  uint64_t tail ABSL_GUARDED_BY(mu) = 0;  // position of the next value
  size_t senders ABSL_GUARDED_BY(mu) = 1;
  size_t receivers ABSL_GUARDED_BY(mu) = 1;
  sync::detail::WaiterList<RecvWaiter<T>> waiters ABSL_GUARDED_BY(mu);

  // Wakes every waiting receiver, 32 at a time (DESIGN §8). Takes the lock.
  void wake_all() {
    sync::detail::WaiterList<RecvWaiter<T>> batch;
    {
      pollux::detail::MutexLock lock(mu);
      waiters.move_all_to(batch);
    }
    for (;;) {
      sync::detail::WakeList wake;
      bool done;
      {
        pollux::detail::MutexLock lock(mu);
        while (!wake.full()) {
          RecvWaiter<T>* w = batch.pop_front();
          if (w == nullptr) break;
          w->state = sync::detail::WaitState::kNotified;
          wake.push(std::move(w->waker));
        }
        done = batch.empty();
      }
      wake.wake_all();
      if (done) return;
    }
  }
};

template <class T>
struct RecvWaiter : sync::detail::WaiterNode {};

}  // namespace detail

// The sending end of a broadcast channel: copyable, send() never waits.
template <class T>
class Sender {
 public:
  Sender(const Sender& o) : s_(o.s_) {
    pollux::detail::MutexLock lock(s_->mu);
    ++s_->senders;
  }
  Sender(Sender&&) noexcept = default;
  Sender& operator=(const Sender&) = delete;
  Sender& operator=(Sender&&) = delete;
  ~Sender() {
    if (!s_) return;
    bool last;
    {
      pollux::detail::MutexLock lock(s_->mu);
      last = --s_->senders == 0;
    }
    if (last) s_->wake_all();  // they drain, then see Closed
  }

  // Sends `v` to every receiver. Returns how many receivers there are (with
  // 0, nobody will ever see it: later subscribers start after it).
  size_t send(T v) {
    size_t receivers;
    std::optional<T> overwritten;  // destroyed after the unlock (user code)
    {
      pollux::detail::MutexLock lock(s_->mu);
      std::optional<T>& slot = s_->slots[s_->tail & s_->mask];
      overwritten.swap(slot);
      slot.emplace(std::move(v));
      ++s_->tail;
      receivers = s_->receivers;
    }
    s_->wake_all();
    return receivers;
  }

  // A receiver of the values sent from now on.
  Receiver<T> subscribe() const;

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel(size_t capacity);
  explicit Sender(std::shared_ptr<detail::Shared<T>> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::Shared<T>> s_;
};

// A receiving end of a broadcast channel: sees every value sent after it was
// made.
template <class T>
class Receiver {
 public:
  Receiver(Receiver&&) noexcept = default;
  Receiver& operator=(Receiver&&) = delete;
  Receiver(const Receiver&) = delete;
  ~Receiver() {
    if (!s_) return;
    pollux::detail::MutexLock lock(s_->mu);
    --s_->receivers;
  }

  // The future recv() returns; dropping it loses nothing.
  class [[nodiscard]] Recv : private detail::RecvWaiter<T> {
   public:
    using Output = RecvResult<T>;
    Recv(Recv&& o) noexcept : r_(o.r_) {
      POLLUX_CHECK(!o.queued_, "a broadcast recv() was moved after it started waiting");
    }
    Recv& operator=(Recv&&) = delete;
    ~Recv() {
      if (!queued_) return;
      sync::detail::DeferredWakerDrop drop;
      pollux::detail::MutexLock lock(r_->s_->mu);
      drop.take(this->waker);
      if (this->linked()) this->unlink();
    }

    Poll<RecvResult<T>> poll(Context& cx) {
      if (!cx.budget().try_take()) {
        cx.waker().wake_by_ref();
        return Pending{};
      }
      detail::Shared<T>* s = r_->s_.get();
      sync::detail::DeferredWakerDrop drop;
      std::optional<T> v;  // copied under the lock, returned after it
      {
        pollux::detail::MutexLock lock(s->mu);
        if (this->linked()) this->unlink();  // re-queued below if still waiting
        const uint64_t oldest = s->tail > s->mask ? s->tail - s->mask - 1 : 0;
        if (r_->next_ < oldest) {
          const uint64_t missed = oldest - r_->next_;
          r_->next_ = oldest;
          queued_ = false;
          return Ready(RecvResult<T>::lag(missed));
        }
        if (r_->next_ < s->tail) {
          v.emplace(*s->slots[r_->next_ & s->mask]);  // T's copy, under the lock
          ++r_->next_;
          queued_ = false;
        } else if (s->senders == 0) {
          queued_ = false;
          return Ready(RecvResult<T>::end());
        } else {
          this->state = sync::detail::WaitState::kWaiting;
          drop.replace(this->waker, cx.waker());
          s->waiters.push_back(this);
          queued_ = true;
        }
      }
      if (v) return Ready(RecvResult<T>::of(std::move(*v)));
      cx.budget().refund();
      return Pending{};
    }

   private:
    friend class Receiver;
    template <class>
    friend class sync::detail::WaiterList;
    explicit Recv(Receiver* r) noexcept : r_(r) {}
    Receiver* r_;
    bool queued_ = false;  // ever linked into the waiters (guarded by the lock)
  };
  Recv recv() noexcept { return Recv(this); }

 private:
  friend class Sender<T>;
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel(size_t capacity);
  Receiver(std::shared_ptr<detail::Shared<T>> s, uint64_t next) : s_(std::move(s)), next_(next) {}
  std::shared_ptr<detail::Shared<T>> s_;
  uint64_t next_;  // the position this receiver reads next
};

template <class T>
Receiver<T> Sender<T>::subscribe() const {
  uint64_t tail;
  {
    pollux::detail::MutexLock lock(s_->mu);
    ++s_->receivers;
    tail = s_->tail;
  }
  return Receiver<T>(s_, tail);
}

// A channel keeping the last `capacity` (>= 1, rounded up to a power of two) values.
template <class T>
[[nodiscard]] std::pair<Sender<T>, Receiver<T>> channel(size_t capacity) {
  POLLUX_CHECK(capacity >= 1, "broadcast::channel needs capacity >= 1");
  auto s = std::make_shared<detail::Shared<T>>(capacity);
  Receiver<T> r(s, 0);
  return {Sender<T>(std::move(s)), std::move(r)};
}

}  // namespace pollux::sync::broadcast

#endif  // POLLUX_SYNC_BROADCAST_H_
