#include "sync/notify.h"

namespace pollux::sync {

using pollux::detail::MutexLock;

Notify::~Notify() {
  POLLUX_DCHECK(waiters_.empty(), "a Notify destroyed while futures still wait on it");
}

Notified Notify::notified() noexcept {
  // seq_cst: a notify_waiters() that happened before this call (in its lock
  // and counter) must be seen here, or this future would wait for it.
  // Pairs with notify_waiters' counter update.
  return Notified(this, calls_of(state_.load(std::memory_order_seq_cst)));
}

void Notify::notify_one() noexcept {
  // acquire: pairs with the releases below and in Notified::poll, so a
  // WAITING seen here has its waiter visible under the lock.
  uint64_t s = state_.load(std::memory_order_acquire);
  while ((s & kStateMask) != kWaiting) {
    // Nobody waits: store the permit (NOTIFIED stays NOTIFIED: coalesced).
    const uint64_t next = (s & ~kStateMask) | kNotified;
    // acq_rel: release publishes what the notifier did before notifying to
    // the Notified that consumes the permit (its acquire CAS).
    if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      return;
    }
  }
  detail::WakeList wake;  // destroyed after the lock: wakes there
  MutexLock lock(mu_);
  notify_one_locked(wake);
}

void Notify::notify_one_locked(detail::WakeList& wake) {
  // acquire: the lock-free paths may have moved EMPTY <-> NOTIFIED.
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((s & kStateMask) == kWaiting) break;
    // The waiters left before we got the lock: store the permit instead.
    const uint64_t next = (s & ~kStateMask) | kNotified;
    // acq_rel: as in notify_one's fast path.
    if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      return;
    }
  }
  Notified* w = waiters_.pop_front();
  POLLUX_DCHECK(w != nullptr, "Notify WAITING with no waiter");
  w->state = detail::WaitState::kNotified;
  // release: before its waker is taken; pairs with poll's lock-free re-poll.
  w->chosen_.store(true, std::memory_order_release);
  wake.push(std::move(w->waker));
  if (waiters_.empty()) {
    // While WAITING only lock holders change the word, so a store suffices.
    // release: pairs with the acquire loads of the lock-free paths.
    state_.store((s & ~kStateMask) | kEmpty, std::memory_order_release);
  }
}

void Notify::notify_waiters() noexcept {
  // The waiters to wake, moved onto this stack so that futures created from
  // now on wait for the next notification. Their destructors may unlink
  // them from here, under mu_.
  detail::WaiterList<Notified> batch;
  {
    MutexLock lock(mu_);
    const uint64_t s = state_.load(std::memory_order_acquire);
    if ((s & kStateMask) == kWaiting) {
      waiters_.move_all_to(batch);
      // seq_cst: pairs with notified()'s load of the counter. While WAITING
      // only lock holders change the word: a store suffices.
      state_.store(((s & ~kStateMask) + kCallOne) | kEmpty, std::memory_order_seq_cst);
    } else {
      // The lock-free paths may flip EMPTY/NOTIFIED meanwhile: add, keep
      // their bits. seq_cst: as above.
      state_.fetch_add(kCallOne, std::memory_order_seq_cst);
    }
  }
  // DESIGN §8: 32 at a time, relocking between batches.
  for (;;) {
    detail::WakeList wake;
    bool done;
    {
      MutexLock lock(mu_);
      while (!wake.full()) {
        Notified* w = batch.pop_front();
        if (w == nullptr) break;
        w->state = detail::WaitState::kNotified;
        w->by_notify_waiters_ = true;
        // release: as in notify_one_locked.
        w->chosen_.store(true, std::memory_order_release);
        wake.push(std::move(w->waker));
      }
      done = batch.empty();
    }
    wake.wake_all();
    if (done) return;
  }
}

Notified::Notified(Notified&& other) noexcept
    : notify_(other.notify_), waiters_calls_(other.waiters_calls_), phase_(other.phase_) {
  POLLUX_CHECK(other.phase_ != Phase::kWaiting,
               "a Notified future was moved after it started waiting; a future must not move "
               "once polled");
  other.phase_ = Phase::kDone;
}

Notified::~Notified() {
  if (phase_ != Phase::kWaiting) return;
  detail::WakeList wake;      // a passed-on notification wakes after the unlock
  detail::DeferredWakerDrop drop;
  MutexLock lock(notify_->mu_);
  drop.take(waker);
  if (linked()) {
    unlink();
    if (notify_->waiters_.empty()) {
      const uint64_t s = notify_->state_.load(std::memory_order_acquire);
      if ((s & Notify::kStateMask) == Notify::kWaiting) {
        // release: pairs with the lock-free paths' acquire loads.
        notify_->state_.store((s & ~Notify::kStateMask) | Notify::kEmpty,
                              std::memory_order_release);
      }
    }
  } else if (state == detail::WaitState::kNotified && !by_notify_waiters_) {
    // Chosen by notify_one but never told: pass it on.
    notify_->notify_one_locked(wake);
  }
}

Poll<void> Notified::poll(Context& cx) {
  POLLUX_DCHECK(phase_ != Phase::kDone, "Notified polled after it returned Ready");
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (phase_ == Phase::kInit) {
    // Fast path: a stored permit, or a notify_waiters since creation.
    // acquire: pairs with the notifiers' releases.
    uint64_t s = notify_->state_.load(std::memory_order_acquire);
    if (Notify::calls_of(s) != waiters_calls_) {
      phase_ = Phase::kDone;
      return Ready{};
    }
    if ((s & Notify::kStateMask) == Notify::kNotified &&
        notify_->state_.compare_exchange_strong(
            s, (s & ~Notify::kStateMask) | Notify::kEmpty, std::memory_order_acq_rel,
            std::memory_order_acquire)) {
      phase_ = Phase::kDone;
      return Ready{};
    }
    MutexLock lock(notify_->mu_);
    s = notify_->state_.load(std::memory_order_acquire);
    for (;;) {
      if (Notify::calls_of(s) != waiters_calls_) {
        phase_ = Phase::kDone;
        return Ready{};
      }
      const uint64_t st = s & Notify::kStateMask;
      if (st == Notify::kWaiting) break;
      // EMPTY -> WAITING (we are about to queue), or take a NOTIFIED permit
      // that a lock-free notify_one stored meanwhile.
      const uint64_t next =
          (s & ~Notify::kStateMask) | (st == Notify::kNotified ? Notify::kEmpty : Notify::kWaiting);
      // acq_rel: acquire sees the notifier's work behind a permit; release
      // makes WAITING (with our node linked below, under the lock) visible.
      if (notify_->state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
        if (st == Notify::kNotified) {
          phase_ = Phase::kDone;
          return Ready{};
        }
        break;
      }
    }
    state = detail::WaitState::kWaiting;
    waker = cx.waker();
    stored_waker_data_ = cx.waker().data();
    stored_waker_vtable_ = cx.waker().vtable();
    notify_->waiters_.push_back(this);
    phase_ = Phase::kWaiting;
    cx.budget().refund();
    return Pending{};
  }
  // Waiting, and polled again by the waker it stored (a select re-polling
  // it while another branch waits): no lock. A notifier stores chosen_
  // before it takes that waker to wake it, so reading false means either no
  // notify yet, or one whose wake of this same task is still to come and
  // polls this again (and that poll's acquire sees chosen_).
  if (cx.waker().data() == stored_waker_data_ && cx.waker().vtable() == stored_waker_vtable_ &&
      !chosen_.load(std::memory_order_acquire)) {
    cx.budget().refund();
    return Pending{};
  }
  detail::DeferredWakerDrop drop;  // an old waker is dropped after the unlock
  MutexLock lock(notify_->mu_);
  if (state == detail::WaitState::kNotified) {
    state = detail::WaitState::kIdle;
    phase_ = Phase::kDone;
    return Ready{};
  }
  drop.replace(waker, cx.waker());
  stored_waker_data_ = cx.waker().data();
  stored_waker_vtable_ = cx.waker().vtable();
  cx.budget().refund();
  return Pending{};
}

}  // namespace pollux::sync
