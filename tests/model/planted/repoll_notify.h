// PLANTED BUG (the lock-free re-poll of sync::Notified). A copy of
// sync::Notify and sync::Notified (sync/notify.{h,cc}) whose waiting future,
// re-polled by the waker it stored, returns Pending without the lock while
// `chosen_` reads false, as the real one does; but notify_waiters() forgets
// to store chosen_ (notify_one still does). A waiter woken by
// notify_waiters then re-polls, reads false, and sleeps forever. The model
// checker must report a deadlock (tests/model/notify_model_test.cc). Never
// use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_REPOLL_NOTIFY_H_
#define POLLUX_TESTS_MODEL_PLANTED_REPOLL_NOTIFY_H_

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

class RepollNotify;

class [[nodiscard]] RepollNotified : private sync::detail::WaiterNode {
 public:
  using Output = void;

  RepollNotified(RepollNotified&& other) noexcept
      : notify_(other.notify_), waiters_calls_(other.waiters_calls_), phase_(other.phase_) {
    POLLUX_CHECK(other.phase_ != Phase::kWaiting, "moved after it started waiting");
    other.phase_ = Phase::kDone;
  }
  RepollNotified& operator=(RepollNotified&&) = delete;
  inline ~RepollNotified();

  inline Poll<void> poll(Context& cx);

 private:
  friend class RepollNotify;
  template <class>
  friend class sync::detail::WaiterList;
  enum class Phase : uint8_t { kInit, kWaiting, kDone };

  RepollNotified(RepollNotify* notify, uint64_t waiters_calls) noexcept
      : notify_(notify), waiters_calls_(waiters_calls) {}

  RepollNotify* notify_;
  uint64_t waiters_calls_;
  Phase phase_ = Phase::kInit;
  bool by_notify_waiters_ = false;
  pollux::detail::Atomic<bool> chosen_{false};
  const void* stored_waker_data_ = nullptr;
  const WakerVTable* stored_waker_vtable_ = nullptr;
};

class RepollNotify {
 public:
  RepollNotify() = default;
  RepollNotify(const RepollNotify&) = delete;
  RepollNotify& operator=(const RepollNotify&) = delete;

  RepollNotified notified() noexcept {
    return RepollNotified(this, calls_of(state_.load(std::memory_order_seq_cst)));
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
    sync::detail::WaiterList<RepollNotified> batch;
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
          RepollNotified* w = batch.pop_front();
          if (w == nullptr) break;
          w->state = sync::detail::WaitState::kNotified;
          w->by_notify_waiters_ = true;
          // THE BUG: the real notify_waiters stores chosen_ here, as
          // notify_one_locked does, before taking the waker.
          wake.push(std::move(w->waker));
        }
        done = batch.empty();
      }
      wake.wake_all();
      if (done) return;
    }
  }

 private:
  friend class RepollNotified;
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
    RepollNotified* w = waiters_.pop_front();
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
  sync::detail::WaiterList<RepollNotified> waiters_ ABSL_GUARDED_BY(mu_);
};

RepollNotified::~RepollNotified() {
  if (phase_ != Phase::kWaiting) return;
  sync::detail::WakeList wake;
  sync::detail::DeferredWakerDrop drop;
  pollux::detail::MutexLock lock(notify_->mu_);
  drop.take(waker);
  if (linked()) {
    unlink();
    if (notify_->waiters_.empty()) {
      const uint64_t s = notify_->state_.load(std::memory_order_acquire);
      if ((s & RepollNotify::kStateMask) == RepollNotify::kWaiting) {
        notify_->state_.store((s & ~RepollNotify::kStateMask) | RepollNotify::kEmpty,
                              std::memory_order_release);
      }
    }
  } else if (state == sync::detail::WaitState::kNotified && !by_notify_waiters_) {
    notify_->notify_one_locked(wake);
  }
}

Poll<void> RepollNotified::poll(Context& cx) {
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (phase_ == Phase::kInit) {
    uint64_t s = notify_->state_.load(std::memory_order_acquire);
    if (RepollNotify::calls_of(s) != waiters_calls_) {
      phase_ = Phase::kDone;
      return Ready{};
    }
    if ((s & RepollNotify::kStateMask) == RepollNotify::kNotified &&
        notify_->state_.compare_exchange_strong(
            s, (s & ~RepollNotify::kStateMask) | RepollNotify::kEmpty, std::memory_order_acq_rel,
            std::memory_order_acquire)) {
      phase_ = Phase::kDone;
      return Ready{};
    }
    pollux::detail::MutexLock lock(notify_->mu_);
    s = notify_->state_.load(std::memory_order_acquire);
    for (;;) {
      if (RepollNotify::calls_of(s) != waiters_calls_) {
        phase_ = Phase::kDone;
        return Ready{};
      }
      const uint64_t st = s & RepollNotify::kStateMask;
      if (st == RepollNotify::kWaiting) break;
      const uint64_t next = (s & ~RepollNotify::kStateMask) |
                            (st == RepollNotify::kNotified ? RepollNotify::kEmpty
                                                          : RepollNotify::kWaiting);
      if (notify_->state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
        if (st == RepollNotify::kNotified) {
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

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_REPOLL_NOTIFY_H_
