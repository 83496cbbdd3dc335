// PLANTED BUGS in a copy of sync::Notify and sync::Notified (sync/notify.{h,cc}),
// one per NotifyBug below, for the model checker to catch: each must make a
// Notify model deadlock (tests/model/notify_model_test.cc), and the copy
// with none must pass them all, which shows the copy is the real protocol
// and only the planted line differs. Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_BUGGY_NOTIFY_H_
#define POLLUX_TESTS_MODEL_PLANTED_BUGGY_NOTIFY_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "future/assert.h"
#include "future/context.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/poll.h"
#include "future/waker.h"
#include "sync/internal/waiters.h"

namespace pollux::model::planted {

// Which bug a PlantedNotify carries (kNone: a faithful copy, which must pass
// every Notify model; notify_model_test checks that too).
enum class NotifyBug {
  kNone,
  // ~Notified, for a future notify_one chose but that was dropped before it
  // saw it, does nothing: the notification is swallowed, and a waiter
  // queued behind it (or a later one that would find the stored permit)
  // sleeps forever.
  kDroppedWaiterSwallowsNotification,
  // notify_waiters() does not store chosen_ (notify_one still does): a
  // waiter it woke re-polls by its stored waker, reads false and sleeps
  // forever.
  kNotifyWaitersForgetsChosen,
};

template <NotifyBug kBug>
class PlantedNotify;

template <NotifyBug kBug>
class [[nodiscard]] PlantedNotified : private sync::detail::WaiterNode {
  using Notify = PlantedNotify<kBug>;

 public:
  using Output = void;

  PlantedNotified(PlantedNotified&& other) noexcept
      : notify_(other.notify_), waiters_calls_(other.waiters_calls_), phase_(other.phase_) {
    POLLUX_CHECK(other.phase_ != Phase::kWaiting, "moved after it started waiting");
    other.phase_ = Phase::kDone;
  }
  PlantedNotified& operator=(PlantedNotified&&) = delete;
  ~PlantedNotified();

  Poll<void> poll(Context& cx);

 private:
  friend class PlantedNotify<kBug>;
  template <class>
  friend class sync::detail::WaiterList;
  enum class Phase : uint8_t { kInit, kWaiting, kDone };

  PlantedNotified(Notify* notify, uint64_t waiters_calls) noexcept
      : notify_(notify), waiters_calls_(waiters_calls) {}

  Notify* notify_;
  uint64_t waiters_calls_;
  Phase phase_ = Phase::kInit;
  bool by_notify_waiters_ = false;
  pollux::detail::Atomic<bool> chosen_{false};
  const void* stored_waker_data_ = nullptr;
  const WakerVTable* stored_waker_vtable_ = nullptr;
};

template <NotifyBug kBug>
class PlantedNotify {
  using Notified = PlantedNotified<kBug>;

 public:
  PlantedNotify() = default;
  PlantedNotify(const PlantedNotify&) = delete;
  PlantedNotify& operator=(const PlantedNotify&) = delete;

  Notified notified() noexcept {
    return Notified(this, calls_of(state_.load(std::memory_order_seq_cst)));
  }

  void notify_one() noexcept {
    uint64_t s = state_.load(std::memory_order_acquire);
    while ((s & kStateMask) != kWaiting) {
      const uint64_t next = (s & ~kStateMask) | kNotified;
      if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return;
      }
    }
    sync::detail::WakeList wake;
    pollux::detail::MutexLock lock(mu_);
    notify_one_locked(wake);
  }

  void notify_waiters() noexcept {
    sync::detail::WaiterList<Notified> batch;
    {
      pollux::detail::MutexLock lock(mu_);
      const uint64_t s = state_.load(std::memory_order_acquire);
      if ((s & kStateMask) == kWaiting) {
        waiters_.move_all_to(batch);
        state_.store(((s & ~kStateMask) + kCallOne) | kEmpty, std::memory_order_seq_cst);
      } else {
        state_.fetch_add(kCallOne, std::memory_order_seq_cst);
      }
    }
    for (;;) {
      sync::detail::WakeList wake;
      bool done;
      {
        pollux::detail::MutexLock lock(mu_);
        while (!wake.full()) {
          Notified* w = batch.pop_front();
          if (w == nullptr) break;
          w->state = sync::detail::WaitState::kNotified;
          w->by_notify_waiters_ = true;
          // kNotifyWaitersForgetsChosen: the real notify_waiters stores
          // chosen_ here, as notify_one_locked does, before taking the waker.
          if constexpr (kBug != NotifyBug::kNotifyWaitersForgetsChosen) {
            w->chosen_.store(true, std::memory_order_release);
          }
          wake.push(std::move(w->waker));
        }
        done = batch.empty();
      }
      wake.wake_all();
      if (done) return;
    }
  }

 private:
  friend class PlantedNotified<kBug>;
  static constexpr uint64_t kEmpty = 0;
  static constexpr uint64_t kWaiting = 1;
  static constexpr uint64_t kNotified = 2;
  static constexpr uint64_t kStateMask = 3;
  static constexpr uint64_t kCallOne = 4;
  static uint64_t calls_of(uint64_t s) noexcept { return s / kCallOne; }

  void notify_one_locked(sync::detail::WakeList& wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((s & kStateMask) == kWaiting) break;
      const uint64_t next = (s & ~kStateMask) | kNotified;
      if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return;
      }
    }
    Notified* w = waiters_.pop_front();
    POLLUX_DCHECK(w != nullptr, "Notify WAITING with no waiter");
    w->state = sync::detail::WaitState::kNotified;
    w->chosen_.store(true, std::memory_order_release);
    wake.push(std::move(w->waker));
    if (waiters_.empty()) {
      state_.store((s & ~kStateMask) | kEmpty, std::memory_order_release);
    }
  }

  pollux::detail::Atomic<uint64_t> state_{kEmpty};
  pollux::detail::Mutex mu_;
  sync::detail::WaiterList<Notified> waiters_ ABSL_GUARDED_BY(mu_);
};

template <NotifyBug kBug>
PlantedNotified<kBug>::~PlantedNotified() {
  if (phase_ != Phase::kWaiting) return;
  sync::detail::WakeList wake;
  sync::detail::DeferredWakerDrop drop;
  pollux::detail::MutexLock lock(notify_->mu_);
  drop.take(waker);
  if (linked()) {
    unlink();
    if (notify_->waiters_.empty()) {
      const uint64_t s = notify_->state_.load(std::memory_order_acquire);
      if ((s & Notify::kStateMask) == Notify::kWaiting) {
        notify_->state_.store((s & ~Notify::kStateMask) | Notify::kEmpty,
                              std::memory_order_release);
      }
    }
  } else if (state == sync::detail::WaitState::kNotified && !by_notify_waiters_) {
    // kDroppedWaiterSwallowsNotification: the real destructor passes the
    // notification on to the next waiter, or makes it the stored permit.
    if constexpr (kBug != NotifyBug::kDroppedWaiterSwallowsNotification) {
      notify_->notify_one_locked(wake);
    }
  }
}

template <NotifyBug kBug>
Poll<void> PlantedNotified<kBug>::poll(Context& cx) {
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (phase_ == Phase::kInit) {
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
    pollux::detail::MutexLock lock(notify_->mu_);
    s = notify_->state_.load(std::memory_order_acquire);
    for (;;) {
      if (Notify::calls_of(s) != waiters_calls_) {
        phase_ = Phase::kDone;
        return Ready{};
      }
      const uint64_t st = s & Notify::kStateMask;
      if (st == Notify::kWaiting) break;
      const uint64_t next = (s & ~Notify::kStateMask) |
                            (st == Notify::kNotified ? Notify::kEmpty
                                                          : Notify::kWaiting);
      if (notify_->state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
        if (st == Notify::kNotified) {
          phase_ = Phase::kDone;
          return Ready{};
        }
        break;
      }
    }
    state = sync::detail::WaitState::kWaiting;
    waker = cx.waker();
    stored_waker_data_ = cx.waker().data();
    stored_waker_vtable_ = cx.waker().vtable();
    notify_->waiters_.push_back(this);
    phase_ = Phase::kWaiting;
    cx.budget().refund();
    return Pending{};
  }
  if (cx.waker().data() == stored_waker_data_ && cx.waker().vtable() == stored_waker_vtable_ &&
      !chosen_.load(std::memory_order_acquire)) {
    cx.budget().refund();
    return Pending{};
  }
  sync::detail::DeferredWakerDrop drop;
  pollux::detail::MutexLock lock(notify_->mu_);
  if (state == sync::detail::WaitState::kNotified) {
    state = sync::detail::WaitState::kIdle;
    phase_ = Phase::kDone;
    return Ready{};
  }
  drop.replace(waker, cx.waker());
  stored_waker_data_ = cx.waker().data();
  stored_waker_vtable_ = cx.waker().vtable();
  cx.budget().refund();
  return Pending{};
}

// The two planted bugs, by the names notify_model_test uses.
using LossyNotify = PlantedNotify<NotifyBug::kDroppedWaiterSwallowsNotification>;
using RepollNotify = PlantedNotify<NotifyBug::kNotifyWaitersForgetsChosen>;
using FaithfulNotify = PlantedNotify<NotifyBug::kNone>;

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_BUGGY_NOTIFY_H_
