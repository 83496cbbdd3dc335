// oneshot: a channel for exactly one value, from one sender to one receiver.
//
//   auto [tx, rx] = sync::oneshot::channel<int>();
//   std::optional<int> unsent = std::move(tx).send(42);   // nullopt: sent
//   std::optional<int> got = co_await std::move(rx);      // nullopt: sender gone
//
// One block for the pair (value, both wakers, one state word) from the
// thread's small-block cache; sending is synchronous and never waits, and
// each end's last step is one read-modify-write.
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

#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <utility>

#include "future/assert.h"
#include "future/future.h"
#include "future/internal/atomic.h"
#include "future/internal/frame_allocator.h"
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
// The word also says who still owns the block: TX_GONE and RX_GONE. Whoever
// sets the second frees it. An end sets its GONE bit in the same
// read-modify-write as its last message (VALUE_SENT, TX_DROPPED, CLOSED)
// when it has nothing left to do, and in a second one only when it must
// still wake the other end after that message: so the common paths make one
// read-modify-write per end, and nothing touches the block after its GONE.
inline constexpr uint32_t kRxTaskSet = 1;
inline constexpr uint32_t kValueSent = 2;
inline constexpr uint32_t kClosed = 4;  // the receiver closed (or is gone)
inline constexpr uint32_t kTxTaskSet = 8;
inline constexpr uint32_t kTxDropped = 16;  // no (further) value will come
inline constexpr uint32_t kTxGone = 32;     // the sender let go of the block
inline constexpr uint32_t kRxGone = 64;     // the receiver let go of the block

template <class T>
struct Inner {
  pollux::detail::Atomic<uint32_t> state{0};
  pollux::detail::RaceCell<std::optional<T>> value;
  pollux::detail::RaceCell<Waker> rx_waker;
  pollux::detail::RaceCell<Waker> tx_waker;

  // From the thread's small-block cache (a channel is made per use).
  static Inner* make() {
    if constexpr (alignof(Inner) <= alignof(std::max_align_t)) {
      return new (pollux::detail::frame_alloc(sizeof(Inner))) Inner();
    } else {
      return new Inner();
    }
  }
  static void destroy(Inner* in) noexcept {
    if constexpr (alignof(Inner) <= alignof(std::max_align_t)) {
      in->~Inner();
      pollux::detail::frame_free(in, sizeof(Inner));
    } else {
      delete in;
    }
  }
  // Sets `bits` (which include this end's GONE bit) and frees the block
  // when the other end is gone too. Returns the state before.
  // acq_rel: release publishes this end's writes (the value, a close); the
  // acquire lets the last one see the other end's before freeing.
  uint32_t finish(uint32_t bits, uint32_t other_gone) noexcept {
    const uint32_t prev = state.fetch_or(bits, std::memory_order_acq_rel);
    if (prev & other_gone) destroy(this);
    return prev;
  }
  // Sets `msg` (the end's last message). If `needs_wake(state)` then holds,
  // the caller must wake the other end and then finish(GONE); otherwise
  // `gone` was set with it (and the block freed when the other is gone).
  // Returns the state before; `*wake` says which case it was.
  template <class NeedsWake>
  uint32_t send_last(uint32_t msg, uint32_t gone, uint32_t other_gone, NeedsWake needs_wake,
                     bool* wake) noexcept {
    // acquire: the other end's waker (its TASK_SET) and a close.
    uint32_t cur = state.load(std::memory_order_acquire);
    for (;;) {
      *wake = needs_wake(cur);
      const uint32_t next = cur | msg | (*wake ? 0 : gone);
      // acq_rel: release publishes our last writes (the value); acquire as above.
      if (state.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        break;
      }
    }
    if (!*wake && (cur & other_gone)) destroy(this);
    return cur;
  }
};

}  // namespace detail

// The sending end of a oneshot channel: sends one value, synchronously.
template <class T>
class [[nodiscard]] Sender {
 public:
  Sender(Sender&& o) noexcept : inner_(std::exchange(o.inner_, nullptr)) {}
  Sender& operator=(Sender&&) = delete;
  ~Sender() {
    if (inner_ == nullptr) return;
    detail::Inner<T>* in = inner_;
    bool wake;
    in->send_last(
        detail::kTxDropped, detail::kTxGone, detail::kRxGone,
        [](uint32_t s) {
          return (s & detail::kRxTaskSet) && !(s & (detail::kValueSent | detail::kClosed));
        },
        &wake);
    if (wake) {
      // Tell it nothing will come (it sees TX_DROPPED when woken); RX_TASK_SET
      // keeps the receiver off its waker, and the block lives until TX_GONE.
      in->rx_waker.get().wake_by_ref();
      in->finish(detail::kTxGone, detail::kRxGone);
    }
  }

  // Sends `value`; hands it back when the receiver is gone (see the header).
  [[nodiscard]] std::optional<T> send(T value) && {
    detail::Inner<T>* in = std::exchange(inner_, nullptr);
    in->value.get_mut().emplace(std::move(value));  // ours until VALUE_SENT
    // acquire: the receiver's waker (RX_TASK_SET) and a close that came first.
    uint32_t cur = in->state.load(std::memory_order_acquire);
    bool wake;
    for (;;) {
      if (cur & detail::kClosed) {
        // The receiver closed before seeing any VALUE_SENT, so it never
        // touches the value (Receiver::close): it is ours to give back.
        std::optional<T> back = std::move(in->value.get_mut());
        in->value.get_mut().reset();
        in->finish(detail::kTxDropped | detail::kTxGone, detail::kRxGone);
        return back;
      }
      // One read-modify-write when nobody waits: publish and let go.
      wake = cur & detail::kRxTaskSet;
      const uint32_t next =
          cur | detail::kValueSent | detail::kTxDropped | (wake ? 0 : detail::kTxGone);
      // acq_rel: release publishes the value; acquire as the load above.
      if (in->state.compare_exchange_weak(cur, next, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
        break;
      }
    }
    // (Without CLOSED the receiver cannot be gone: RX_GONE comes with CLOSED.)
    if (wake) {
      in->rx_waker.get().wake_by_ref();
      in->finish(detail::kTxGone, detail::kRxGone);
    }
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

  detail::Inner<T>* inner_;
};

// The receiving end of a oneshot channel: a Future of the value, nullopt when
// the sender is gone.
template <class T>
class [[nodiscard]] Receiver {
 public:
  using Output = std::optional<T>;

  // Moves the close too: a receiver closed before a value came must stay
  // closed-before-value, or its destructor (and try_recv) would take a value
  // that the sender, seeing CLOSED, is handing back at the same time.
  Receiver(Receiver&& o) noexcept
      : inner_(std::exchange(o.inner_, nullptr)),
        closed_(o.closed_),
        closed_before_value_(o.closed_before_value_) {}
  Receiver& operator=(Receiver&&) = delete;
  ~Receiver() {
    if (inner_ == nullptr) return;
    close();
    detail::Inner<T>* in = std::exchange(inner_, nullptr);
    // A value sent before our close is ours to destroy (here, on this
    // thread); one sent after it is the sender's (it took it back).
    // acquire: pairs with the sender's release of VALUE_SENT.
    if ((in->state.load(std::memory_order_acquire) & detail::kValueSent) &&
        !closed_before_value_) {
      in->value.get_mut().reset();
    }
    in->finish(detail::kRxGone, detail::kTxGone);
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
      finish(s);
      return Ready(std::move(v));
    }
    if (s & (detail::kTxDropped | detail::kClosed)) {
      finish(s);
      return Ready(std::optional<T>());
    }
    return Pending{};
  }
  std::optional<T> take_value() noexcept {
    std::optional<T> v = std::move(inner_->value.get_mut());
    inner_->value.get_mut().reset();
    return v;
  }
  // After Ready, given the state `seen` that made it Ready: let go of the
  // channel (as a drop does, with nothing left: the value was taken, or
  // none will come). When `seen` already has TX_GONE, nobody else will
  // touch the block again, so it is freed without a read-modify-write: the
  // acquire that saw TX_GONE ordered the sender's last writes before this.
  // That is the common case (send, then recv) and saves a locked
  // instruction.
  void finish(uint32_t seen) noexcept {
    detail::Inner<T>* in = std::exchange(inner_, nullptr);
    if (seen & detail::kTxGone) {
      detail::Inner<T>::destroy(in);
      return;
    }
    in->finish(detail::kClosed | detail::kRxGone, detail::kTxGone);
  }

  detail::Inner<T>* inner_;
  bool closed_ = false;
  bool closed_before_value_ = false;
};

// A connected pair (one allocation).
template <class T>
[[nodiscard]] std::pair<Sender<T>, Receiver<T>> channel() {
  auto* in = detail::Inner<T>::make();
  return {Sender<T>(in), Receiver<T>(in)};
}

}  // namespace pollux::sync::oneshot

#endif  // POLLUX_SYNC_ONESHOT_H_
