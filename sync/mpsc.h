// mpsc: multi-producer, single-consumer channels, bounded and unbounded.
//
//   auto [tx, rx] = sync::mpsc::channel<Job>(64);          // bounded: 64 in flight
//   std::optional<Job> unsent = co_await tx.send(job);      // nullopt: sent
//   std::optional<Job> next = co_await rx.recv();           // nullopt: all senders gone
//
//   auto [utx, urx] = sync::mpsc::unbounded_channel<Job>();
//   std::optional<Job> back = utx.send(job);                // never waits
//
// - Senders are copyable (each copy is one more sender); when the last one
//   is dropped, recv() returns the remaining messages and then nullopt (end
//   of stream).
// - Bounded: send() waits for room, in FIFO order among senders (a
//   Semaphore of `capacity` permits); reserve() waits for room first and
//   returns a Permit whose send() cannot fail or wait; try_send() never
//   waits.
// - A send to a closed channel (receiver dropped or close()d) hands the value
//   back; nothing is lost silently. A Permit's send() after the receiver went
//   away drops the value.
// - Receiver::close() refuses new sends; messages already queued can still
//   be received.
//
// Cancellation: a dropped recv() loses no message (recv is cancel-safe:
// the message stays queued). A dropped bounded send() loses only that
// message (it is destroyed with the future) and gives up its place among
// waiting senders. A dropped reserve() gives up its place.
//
// Costs: a queue under the channel's lock (no allocation per message; the
// buffer keeps its capacity) and, for bounded channels, one permit
// compare-exchange per message; a send wakes the receiver only if it waits.
//
// Thread-safety: senders on any threads at once; the receiver in one task at
// a time. The channel lives as long as any end; a send/reserve/recv future
// borrows the end that made it, which must outlive it.
#ifndef POLLUX_SYNC_MPSC_H_
#define POLLUX_SYNC_MPSC_H_

#include <cstddef>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "future/assert.h"
#include "future/future.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "sync/internal/ring_buffer.h"
#include "sync/internal/waiters.h"
#include "sync/semaphore.h"

namespace pollux::sync::mpsc {

// Why try_send did not send; the value comes back either way.
template <class T>
struct TrySendError {
  // Full: a bounded channel has no room; Closed: the receiver is gone or
  // closed.
  enum class Reason { kFull, kClosed } reason;
  T value;
};

// What try_recv found: a value, or nothing with the reason.
template <class T>
struct TryRecv {
  std::optional<T> value;
  bool disconnected = false;  // no value and none can ever come
};

namespace detail {

template <class T>
struct Chan {
  explicit Chan(size_t capacity) : bounded(capacity > 0), sem(capacity) {
    if (capacity > 0) {
      // Room for every permit up front: a bounded channel never allocates again.
      size_t cap = 8;
      while (cap < capacity) cap *= 2;
      typename sync::detail::RingBuffer<T>::Room room(cap);
      pollux::detail::MutexLock lock(mu);
      queue.install(room);
    }
  }
  Chan(const Chan&) = delete;
  Chan& operator=(const Chan&) = delete;

  void ref() noexcept {
    // relaxed: a reference is made from a reference.
    refs.fetch_add(1, std::memory_order_relaxed);
  }
  void unref() noexcept {
    // acq_rel: the last owner sees every other owner's writes.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Queues `v` and wakes the receiver; false (v untouched) when closed.
  bool push(T& v) {
    using Room = typename sync::detail::RingBuffer<T>::Room;
    Waker wake;
    std::optional<Room> room;  // a bigger array, allocated outside the lock
    for (;;) {
      size_t want;
      {
        pollux::detail::MutexLock lock(mu);
        if (rx_closed) return false;
        if (room) queue.install(*room);  // the old array is freed with `room`, unlocked
        if (queue.try_push(v)) {
          wake = std::move(rx_waker);
          break;
        }
        want = queue.next_capacity();  // unbounded and full
      }
      room.emplace(want);  // DESIGN §8: no allocation under the lock
    }
    std::move(wake).wake();  // outside the lock
    return true;
  }

  // A sender went away; the last one ends the stream.
  void drop_sender() noexcept {
    Waker wake;
    {
      pollux::detail::MutexLock lock(mu);
      if (--senders == 0) {
        tx_closed = true;
        wake = std::move(rx_waker);
      }
    }
    std::move(wake).wake();
  }

  void close_rx() noexcept {
    {
      pollux::detail::MutexLock lock(mu);
      rx_closed = true;
    }
    // Waiting senders must not wait for room that no receiver will make.
    if (bounded) sem.close();
  }

  const bool bounded;
  Semaphore sem;  // bounded: free room; unused (0 permits) when unbounded
  pollux::detail::Atomic<size_t> refs{2};
  pollux::detail::Mutex mu;
  sync::detail::RingBuffer<T> queue ABSL_GUARDED_BY(mu);
  Waker rx_waker ABSL_GUARDED_BY(mu);
  size_t senders ABSL_GUARDED_BY(mu) = 1;
  bool tx_closed ABSL_GUARDED_BY(mu) = false;
  bool rx_closed ABSL_GUARDED_BY(mu) = false;
};

}  // namespace detail

template <class T>
class Receiver;
template <class T>
class UnboundedSender;

// A reserved place in a bounded channel: send() never waits or fails.
template <class T>
class [[nodiscard]] Permit {
 public:
  Permit(Permit&& o) noexcept : chan_(std::exchange(o.chan_, nullptr)) {}
  Permit& operator=(Permit&&) = delete;
  ~Permit() {
    if (chan_ == nullptr) return;
    chan_->sem.release(1);  // unused: the room goes back
    chan_->unref();
  }
  // Sends `v` into the reserved place (dropped if the receiver is gone).
  void send(T v) && {
    detail::Chan<T>* c = std::exchange(chan_, nullptr);
    if (!c->push(v)) c->sem.release(1);  // closed: v is destroyed here
    c->unref();
  }

 private:
  template <class>
  friend class Sender;
  explicit Permit(detail::Chan<T>* c) noexcept : chan_(c) { c->ref(); }
  detail::Chan<T>* chan_;
};

// A sending end of an mpsc channel; copyable, each copy one more sender.
template <class T>
class Sender {
 public:
  Sender(const Sender& o) noexcept : chan_(o.chan_) {
    {
      pollux::detail::MutexLock lock(chan_->mu);
      ++chan_->senders;
    }
    chan_->ref();
  }
  Sender(Sender&& o) noexcept : chan_(std::exchange(o.chan_, nullptr)) {}
  Sender& operator=(const Sender&) = delete;
  Sender& operator=(Sender&&) = delete;
  ~Sender() {
    if (chan_ == nullptr) return;
    chan_->drop_sender();
    chan_->unref();
  }

  // Bounded: waits for room, then sends. Output: nullopt when sent, the value
  // when the channel is closed.
  class [[nodiscard]] Send {
   public:
    using Output = std::optional<T>;
    Poll<std::optional<T>> poll(Context& cx) {
      POLLUX_DCHECK(value_.has_value(), "mpsc send polled after it returned Ready");
      Poll<absl::Status> room = acquire_.poll_raw(cx);
      if (room.is_pending()) return Pending{};
      if (!std::move(room).value().ok()) {
        return Ready(std::exchange(value_, std::nullopt));  // closed: no room was taken
      }
      if (chan_->push(*value_)) {
        value_.reset();
        return Ready(std::optional<T>());
      }
      chan_->sem.release(1);  // closed after we got the room
      return Ready(std::exchange(value_, std::nullopt));
    }

   private:
    friend class Sender;
    Send(detail::Chan<T>* c, T v) : chan_(c), value_(std::move(v)), acquire_(c->sem.acquire(1)) {}
    detail::Chan<T>* chan_;  // kept alive by the Sender that made this
    std::optional<T> value_;
    Acquire acquire_;
  };
  // Bounded channels only (an unbounded channel's send() is synchronous).
  Send send(T v) {
    POLLUX_CHECK(chan_ != nullptr && chan_->bounded,
                 "mpsc::Sender::send future on a moved-from or unbounded sender");
    return Send(chan_, std::move(v));
  }

  // Bounded: waits for room and keeps it (Permit::send never waits).
  class [[nodiscard]] Reserve {
   public:
    using Output = std::optional<Permit<T>>;  // nullopt: the channel is closed
    Poll<std::optional<Permit<T>>> poll(Context& cx) {
      Poll<absl::Status> p = acquire_.poll_raw(cx);
      if (p.is_pending()) return Pending{};
      if (!std::move(p).value().ok()) return Ready(std::optional<Permit<T>>());
      return Ready(std::optional<Permit<T>>(Permit<T>(chan_)));
    }

   private:
    friend class Sender;
    explicit Reserve(detail::Chan<T>* c) : chan_(c), acquire_(c->sem.acquire(1)) {}
    detail::Chan<T>* chan_;
    Acquire acquire_;
  };
  Reserve reserve() {
    POLLUX_CHECK(chan_ != nullptr && chan_->bounded,
                 "mpsc::Sender::reserve on a moved-from or unbounded sender");
    return Reserve(chan_);
  }

  // Sends now or gives the value back with the reason. Never waits.
  std::optional<TrySendError<T>> try_send(T v) {
    POLLUX_CHECK(chan_ != nullptr, "mpsc try_send on a moved-from sender");
    using R = typename TrySendError<T>::Reason;
    if (chan_->bounded && !chan_->sem.try_take(1)) {
      return TrySendError<T>{chan_->sem.is_closed() ? R::kClosed : R::kFull, std::move(v)};
    }
    if (chan_->push(v)) return std::nullopt;
    if (chan_->bounded) chan_->sem.release(1);
    return TrySendError<T>{R::kClosed, std::move(v)};
  }

  // Unbounded channels: sends at once. Returns the value when closed.
  [[nodiscard]] std::optional<T> send_now(T v) {
    POLLUX_CHECK(chan_ != nullptr && !chan_->bounded,
                 "mpsc send_now on a moved-from or bounded sender (use send or try_send)");
    if (chan_->push(v)) return std::nullopt;
    return std::optional<T>(std::move(v));
  }

  // True once the receiver is gone or closed.
  bool is_closed() const {
    pollux::detail::MutexLock lock(chan_->mu);
    return chan_->rx_closed;
  }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel(size_t capacity);
  template <class U>
  friend class UnboundedSender;
  explicit Sender(detail::Chan<T>* c) noexcept : chan_(c) {}
  detail::Chan<T>* chan_;
};

// The receiving end of an mpsc channel; recv() is cancel-safe.
template <class T>
class Receiver {
 public:
  Receiver(Receiver&& o) noexcept : chan_(std::exchange(o.chan_, nullptr)) {}
  Receiver& operator=(Receiver&&) = delete;
  ~Receiver() {
    if (chan_ == nullptr) return;
    chan_->close_rx();
    // Queued messages die with the channel (destroyed on the last owner's
    // thread), or here if we are the last.
    chan_->unref();
  }

  // The next message, or nullopt once every sender is gone and the queue is
  // empty (or the channel was closed and drained).
  class [[nodiscard]] Recv {
   public:
    using Output = std::optional<T>;
    Poll<std::optional<T>> poll(Context& cx) {
      if (!cx.budget().try_take()) {
        cx.waker().wake_by_ref();
        return Pending{};
      }
      detail::Chan<T>* c = r_->chan_;
      sync::detail::DeferredWakerDrop drop;
      bool took = false;
      std::optional<T> v;
      {
        pollux::detail::MutexLock lock(c->mu);
        if (!c->queue.empty()) {
          v.emplace(c->queue.pop_front());
          took = true;
        } else if (c->tx_closed || c->rx_closed) {
          return Ready(std::optional<T>());
        } else {
          drop.replace(c->rx_waker, cx.waker());
        }
      }
      if (took) {
        if (c->bounded) c->sem.release(1);  // the room is free again
        return Ready(std::move(v));
      }
      cx.budget().refund();
      return Pending{};
    }

   private:
    friend class Receiver;
    explicit Recv(Receiver* r) noexcept : r_(r) {}
    Receiver* r_;
  };
  Recv recv() noexcept {
    POLLUX_CHECK(chan_ != nullptr, "recv on a moved-from mpsc::Receiver");
    return Recv(this);
  }

  TryRecv<T> try_recv() {
    TryRecv<T> r;
    {
      pollux::detail::MutexLock lock(chan_->mu);
      if (!chan_->queue.empty()) {
        r.value.emplace(chan_->queue.pop_front());
      } else {
        r.disconnected = chan_->tx_closed || chan_->rx_closed;
        return r;
      }
    }
    if (chan_->bounded) chan_->sem.release(1);
    return r;
  }

  // Refuses new sends; what is queued can still be received.
  void close() noexcept { chan_->close_rx(); }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel(size_t capacity);
  template <class U>
  friend std::pair<UnboundedSender<U>, Receiver<U>> unbounded_channel();
  explicit Receiver(detail::Chan<T>* c) noexcept : chan_(c) {}
  detail::Chan<T>* chan_;
};

// The sending end of an unbounded channel: send() never waits.
template <class T>
class UnboundedSender {
 public:
  UnboundedSender(const UnboundedSender&) = default;
  UnboundedSender(UnboundedSender&&) noexcept = default;
  UnboundedSender& operator=(const UnboundedSender&) = delete;
  UnboundedSender& operator=(UnboundedSender&&) = delete;

  // Sends at once; returns the value when the channel is closed.
  [[nodiscard]] std::optional<T> send(T v) { return inner_.send_now(std::move(v)); }
  bool is_closed() const { return inner_.is_closed(); }

 private:
  template <class U>
  friend std::pair<UnboundedSender<U>, Receiver<U>> unbounded_channel();
  explicit UnboundedSender(detail::Chan<T>* c) noexcept : inner_(c) {}
  Sender<T> inner_;
};

// A bounded channel of `capacity` (>= 1) messages in flight.
template <class T>
[[nodiscard]] std::pair<Sender<T>, Receiver<T>> channel(size_t capacity) {
  POLLUX_CHECK(capacity >= 1, "mpsc::channel needs capacity >= 1 (use unbounded_channel)");
  auto* c = new detail::Chan<T>(capacity);
  return {Sender<T>(c), Receiver<T>(c)};
}

template <class T>
[[nodiscard]] std::pair<UnboundedSender<T>, Receiver<T>> unbounded_channel() {
  auto* c = new detail::Chan<T>(0);
  return {UnboundedSender<T>(c), Receiver<T>(c)};
}

}  // namespace pollux::sync::mpsc

#endif  // POLLUX_SYNC_MPSC_H_
