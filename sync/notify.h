// Notify: wakes tasks waiting for an event, without data.
//
//   pollux::sync::Notify notify;
//   // task A                          // anyone, any thread
//   co_await notify.notified();         notify.notify_one();
//
// Semantics (tokio's):
// - notify_one() wakes the oldest waiting Notified future; when nobody waits
//   it stores one permit (at most one: more notify_one calls coalesce), and
//   the next notified() completes at once, consuming it.
// - notify_waiters() wakes every Notified future created before the call
//   (whether or not it has been polled yet) and stores nothing; futures
//   created after it wait for the next notification.
//
// Costs: notify_one with nobody waiting, and a notified() that finds the
// permit, are one compare-exchange each (no lock, no syscall). Waiting
// takes the Notify's lock; waiters live in an intrusive list inside their
// futures (no allocation). A waiting future re-polled by the waker it
// stored (a select re-polling it) takes no lock until it has been chosen.
//
// Cancellation: dropping a Notified future loses nothing. If it was
// already chosen by notify_one but not yet polled, the notification passes
// to the next waiter (or becomes the stored permit): a dropped waiter never
// swallows a wake-up. A dropped future chosen by notify_waiters passes
// nothing on (that notification was for everyone waiting).
//
// Thread-safety: every method from any thread. A Notified future is polled
// and dropped by one task at a time, and must not move once polled (it is
// linked into the Notify; moving it then is a checked error). The Notify must
// outlive its Notified futures.
#ifndef POLLUX_SYNC_NOTIFY_H_
#define POLLUX_SYNC_NOTIFY_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "future/future.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "sync/internal/waiters.h"

namespace pollux::sync {

class Notify;

// The future notified() returns: Ready once a notify reaches it.
class [[nodiscard]] Notified : private detail::WaiterNode {
 public:
  using Output = void;

  Notified(Notified&& other) noexcept;
  Notified& operator=(Notified&&) = delete;
  ~Notified();

  Poll<void> poll(Context& cx);

 private:
  friend class Notify;
  Notified(Notify* notify, uint64_t waiters_calls) noexcept
      : notify_(notify), waiters_calls_(waiters_calls) {}

  template <class>
  friend class detail::WaiterList;
  enum class Phase : uint8_t { kInit, kWaiting, kDone };

  Notify* notify_;
  // notify_waiters() calls counted when this future was created: a later
  // count means a notify_waiters() this future must see.
  uint64_t waiters_calls_;
  Phase phase_ = Phase::kInit;
  // Set (under the lock) when notify_waiters chose it, so a drop passes
  // nothing on.
  bool by_notify_waiters_ = false;
  // A notify chose it: stored (release, under the lock) before the notifier
  // takes the stored waker to wake it, so that a re-poll by that same waker
  // can return Pending without the lock (see poll). Pairs with poll's
  // acquire load.
  pollux::detail::Atomic<bool> chosen_{false};
  // Who the stored waker wakes (its data and vtable), as of the last locked
  // poll. Only the polling side reads and writes these (never under
  // contention: a future is polled by one thread at a time), so the lock-free
  // re-poll need not touch `waker`, which a notifier may be moving out.
  const void* stored_waker_data_ = nullptr;
  const WakerVTable* stored_waker_vtable_ = nullptr;
};

// Wakes tasks waiting for an event, without data (see above).
class Notify {
 public:
  Notify() = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;
  ~Notify();

  // A future that completes at the next notification (see the header).
  Notified notified() noexcept;
  // Wakes the oldest waiter, or stores one permit.
  void notify_one() noexcept;
  // Wakes every waiter created before this call; stores nothing.
  void notify_waiters() noexcept;

 private:
  friend class Notified;
  // state_: the low two bits are one of kEmpty/kWaiting/kNotified; the rest
  // counts notify_waiters() calls (in units of kCallOne).
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint64_t kWaiting = 1;
  static constexpr uint64_t kNotified = 2;
  static constexpr uint64_t kStateMask = 3;
  static constexpr uint64_t kCallOne = 4;
  static uint64_t calls_of(uint64_t s) noexcept { return s / kCallOne; }

  // notify_one's locked path: pops the oldest waiter (or stores the
  // permit); the waker goes to `wake`.
  void notify_one_locked(detail::WakeList& wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  pollux::detail::Atomic<uint64_t> state_{kEmpty};
  pollux::detail::Mutex mu_;
  detail::WaiterList<Notified> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_NOTIFY_H_
