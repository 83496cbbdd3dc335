// oneshot: a channel for exactly one value, from one sender to one receiver.
//
//   auto [tx, rx] = sync::oneshot::channel<int>();
//   std::optional<int> unsent = std::move(tx).send(42);   // nullopt: sent
//   std::optional<int> got = co_await std::move(rx);      // nullopt: sender gone
//
// One allocation for the pair (value, both wakers, one state word); sending
// is synchronous and never waits.
//
// - send(v) hands v back (std::optional holding it) when the receiver is
//   gone or closed: nothing is lost; nullopt means it was sent.
// - The receiver is a future of std::optional<T>: the value, or nullopt when
//   the sender was dropped without sending. try_recv() looks without waiting.
// - Receiver::close() refuses a later send (a value already sent can still
//   be taken with try_recv); Sender::closed() is a future that completes
//   once the receiver is dropped or closed (stop producing).
//
// Cancellation: dropping the Receiver before Ready drops a value already
// sent (destroyed on the dropping thread) and makes later sends fail, giving
// the value back. Dropping the Sender unsent completes the receiver with
// nullopt.
//
// Thread-safety: the two ends may be used and dropped on different threads
// at once; each end by one task at a time.
#ifndef POLLUX_SYNC_ONESHOT_H_
#define POLLUX_SYNC_ONESHOT_H_

#include <cstdint>
#include <optional>
#include <utility>

#include "future/assert.h"
#include "future/future.h"
#include "future/internal/atomic.h"
#include "future/internal/race_cell.h"

namespace pollux::sync::oneshot {

template <class T>
class Sender;
template <class T>
class Receiver;

namespace detail {

// The state word: who has published what. Ownership of the cells follows it
// (tokio's oneshot protocol):
//   value      the sender's until VALUE_SENT, then the receiver's;
//   rx_waker   the receiver's while RX_TASK_SET is clear, then read by the
//              sender (to wake) until the receiver clears the bit again;
//   tx_waker   likewise for the sender and TX_TASK_SET.
inline constexpr uint32_t kRxTaskSet = 1;
inline constexpr uint32_t kValueSent = 2;
inline constexpr uint32_t kClosed = 4;  // the receiver closed or was dropped
inline constexpr uint32_t kTxTaskSet = 8;
inline constexpr uint32_t kTxDropped = 16;  // the sender was dropped (sent or not)

template <class T>
struct Inner {
  pollux::detail::Atomic<uint32_t> state{0};
  pollux::detail::Atomic<uint32_t> refs{2};
  pollux::detail::RaceCell<std::optional<T>> value;
  pollux::detail::RaceCell<Waker> rx_waker;
  pollux::detail::RaceCell<Waker> tx_waker;

  void release() noexcept {
    // acq_rel: the last owner sees every write of the other end.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Sender {
 public:
  Sender(Sender&& o) noexcept : inner_(std::exchange(o.inner_, nullptr)) {}
  Sender& operator=(Sender&&) = delete;
  ~Sender() {
    if (inner_ == nullptr) return;
    // acq_rel: release publishes nothing new (no value) but pairs with the
    // receiver's acquire; acquire sees a registered rx waker.
    const uint32_t prev = inner_->state.fetch_or(detail::kTxDropped, std::memory_order_acq_rel);
    if ((prev & detail::kRxTaskSet) && !(prev & (detail::kValueSent | detail::kClosed))) {
      inner_->rx_waker.get().wake_by_ref();  // tell it: nothing will come
    }
    inner_->release();
  }

  // Sends `value`; hands it back when the receiver is gone (see the header).
  [[nodiscard]] std::optional<T> send(T value) && {
    detail::Inner<T>* in = std::exchange(inner_, nullptr);
    // acquire: pairs with the receiver's close (its CLOSED is current).
    if (in->state.load(std::memory_order_acquire) & detail::kClosed) {
      finish_unsent(in);
      return std::optional<T>(std::move(value));
    }
    in->value.get_mut().emplace(std::move(value));  // ours until VALUE_SENT
    // acq_rel: release publishes the value to the receiver; acquire sees its
    // waker (RX_TASK_SET) and a close that raced with us.
    const uint32_t prev =
        in->state.fetch_or(detail::kValueSent | detail::kTxDropped, std::memory_order_acq_rel);
    if (prev & detail::kClosed) {
      // The receiver closed while we wrote: it saw no VALUE_SENT before its
      // close, so it never touches the value (Receiver::close), which is
      // still ours to give back.
      std::optional<T> back = take_back_after_close(in);
      in->release();
      return back;
    }
    if (prev & detail::kRxTaskSet) in->rx_waker.get().wake_by_ref();
    in->release();
    return std::nullopt;
  }

  // True once the receiver is dropped or closed.
  bool is_closed() const noexcept {
    // acquire: pairs with the receiver's CLOSED.
    return inner_ == nullptr || (inner_->state.load(std::memory_order_acquire) & detail::kClosed);
  }

  // Completes once the receiver is dropped or closed.
  class [[nodiscard]] Closed {
   public:
    using Output = void;
    Poll<void> poll(Context& cx) {
      if (!cx.budget().try_take()) {
        cx.waker().wake_by_ref();
        return Pending{};
      }
      detail::Inner<T>* in = s_->inner_;
      // acquire: pairs with the receiver's CLOSED.
      uint32_t s = in->state.load(std::memory_order_acquire);
      if (s & detail::kClosed) return Ready{};
      if (s & detail::kTxTaskSet) {
        if (in->tx_waker.get().will_wake(cx.waker())) {
          cx.budget().refund();
          return Pending{};
        }
        // Take the slot back before replacing the waker.
        s = in->state.fetch_and(~detail::kTxTaskSet, std::memory_order_acq_rel);
        if (s & detail::kClosed) return Ready{};
      }
      in->tx_waker.get_mut() = cx.waker();
      // acq_rel: release publishes the waker to the receiver's close.
      s = in->state.fetch_or(detail::kTxTaskSet, std::memory_order_acq_rel);
      if (s & detail::kClosed) return Ready{};
      cx.budget().refund();
      return Pending{};
    }

   private:
    friend class Sender;
    explicit Closed(Sender* s) noexcept : s_(s) {}
    Sender* s_;
  };
  Closed closed() noexcept {
    POLLUX_CHECK(inner_ != nullptr, "closed() on a moved-from or used oneshot::Sender");
    return Closed(this);
  }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel();
  explicit Sender(detail::Inner<T>* in) noexcept : inner_(in) {}

  static void finish_unsent(detail::Inner<T>* in) noexcept {
    in->state.fetch_or(detail::kTxDropped, std::memory_order_acq_rel);
    in->release();
  }
  // After a CLOSED seen by our VALUE_SENT fetch_or: the receiver closed
  // before it could see the value, so nobody else reads it (a receiver
  // that closes takes a value only if VALUE_SENT was set before its close).
  static std::optional<T> take_back_after_close(detail::Inner<T>* in) noexcept {
    std::optional<T> back = std::move(in->value.get_mut());
    in->value.get_mut().reset();
    return back;
  }

  detail::Inner<T>* inner_;
};

template <class T>
class [[nodiscard]] Receiver {
 public:
  using Output = std::optional<T>;

  Receiver(Receiver&& o) noexcept : inner_(std::exchange(o.inner_, nullptr)) {}
  Receiver& operator=(Receiver&&) = delete;
  ~Receiver() {
    if (inner_ == nullptr) return;
    close();
    // A value sent before our close is ours to destroy (here, on this
    // thread); one sent after it was taken back by the sender.
    // acquire: pairs with the sender's release of VALUE_SENT.
    const uint32_t s = inner_->state.load(std::memory_order_acquire);
    if ((s & detail::kValueSent) && !closed_before_value_) inner_->value.get_mut().reset();
    inner_->release();
  }

  // Refuses later sends (they get their value back); a value already sent
  // stays available to try_recv().
  void close() noexcept {
    if (inner_ == nullptr || closed_) return;
    closed_ = true;
    // acq_rel: release publishes the close to the sender; acquire sees a
    // value sent before it and the sender's waker.
    const uint32_t prev = inner_->state.fetch_or(detail::kClosed, std::memory_order_acq_rel);
    closed_before_value_ = !(prev & detail::kValueSent);
    if ((prev & detail::kTxTaskSet) && !(prev & detail::kValueSent)) {
      inner_->tx_waker.get().wake_by_ref();
    }
  }

  // The value if it was sent (and not yet taken), without waiting.
  std::optional<T> try_recv() noexcept {
    if (inner_ == nullptr) return std::nullopt;
    // acquire: pairs with the sender's release of VALUE_SENT.
    const uint32_t s = inner_->state.load(std::memory_order_acquire);
    if (!(s & detail::kValueSent) || (closed_ && closed_before_value_)) return std::nullopt;
    return take_value();
  }

  Poll<std::optional<T>> poll(Context& cx) {
    POLLUX_DCHECK(inner_ != nullptr, "a oneshot::Receiver polled after it returned Ready");
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    detail::Inner<T>* in = inner_;
    // acquire: pairs with the sender's release of VALUE_SENT / TX_DROPPED.
    uint32_t s = in->state.load(std::memory_order_acquire);
    if (Poll<std::optional<T>> r = ready_from(s); r.is_ready()) return r;
    if (s & detail::kRxTaskSet) {
      if (in->rx_waker.get().will_wake(cx.waker())) {
        cx.budget().refund();
        return Pending{};
      }
      // Take the waker slot back before writing a new waker into it.
      s = in->state.fetch_and(~detail::kRxTaskSet, std::memory_order_acq_rel);
      if (Poll<std::optional<T>> r = ready_from(s); r.is_ready()) return r;
    }
    in->rx_waker.get_mut() = cx.waker();
    // acq_rel: release publishes the waker to the sender; acquire sees a
    // value sent meanwhile (then we take it now instead of waiting).
    s = in->state.fetch_or(detail::kRxTaskSet, std::memory_order_acq_rel);
    if (Poll<std::optional<T>> r = ready_from(s); r.is_ready()) return r;
    cx.budget().refund();
    return Pending{};
  }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel();
  explicit Receiver(detail::Inner<T>* in) noexcept : inner_(in) {}

  // Ready when the value arrived (taken) or the sender is gone without one.
  Poll<std::optional<T>> ready_from(uint32_t s) noexcept {
    if ((s & detail::kValueSent) && !(closed_ && closed_before_value_)) {
      std::optional<T> v = take_value();
      finish();
      return Ready(std::move(v));
    }
    if (s & (detail::kTxDropped | detail::kClosed)) {
      finish();
      return Ready(std::optional<T>());
    }
    return Pending{};
  }
  std::optional<T> take_value() noexcept {
    std::optional<T> v = std::move(inner_->value.get_mut());
    inner_->value.get_mut().reset();
    return v;
  }
  // After Ready: let go of the channel (as a drop does, with nothing left).
  void finish() noexcept {
    detail::Inner<T>* in = std::exchange(inner_, nullptr);
    if (!closed_) {
      // acq_rel: as in close(); a sender still there sees the end.
      in->state.fetch_or(detail::kClosed, std::memory_order_acq_rel);
    }
    in->release();
  }

  detail::Inner<T>* inner_;
  bool closed_ = false;
  bool closed_before_value_ = false;
};

// A connected pair (one allocation).
template <class T>
[[nodiscard]] std::pair<Sender<T>, Receiver<T>> channel() {
  auto* in = new detail::Inner<T>();
  return {Sender<T>(in), Receiver<T>(in)};
}

}  // namespace pollux::sync::oneshot

#endif  // POLLUX_SYNC_ONESHOT_H_
