// PLANTED BUG (DESIGN §8: "a dropped Notified waiter passes on what it was
// given"). A copy of sync::Notify and sync::Notified (sync/notify.{h,cc} at
// 0af8981) whose Notified destructor, for a future that notify_one chose
// (unlinked, marked Notified, its waker taken) but that was dropped before
// it saw it, does nothing: the notification is swallowed, and a second
// waiter that was queued behind it (or a later one that would have found
// the stored permit) sleeps forever. The model checker must report a
// deadlock (tests/model/notify_model_test.cc). Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_LOSSY_NOTIFY_H_
#define POLLUX_TESTS_MODEL_PLANTED_LOSSY_NOTIFY_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "future/assert.h"
#include "future/context.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/poll.h"
#include "sync/internal/waiters.h"

namespace pollux::model::planted {

class LossyNotify;

class [[nodiscard]] LossyNotified : private sync::detail::WaiterNode {
 public:
  using Output = void;

  LossyNotified(LossyNotified&& other) noexcept
      : notify_(other.notify_), waiters_calls_(other.waiters_calls_), phase_(other.phase_) {
    POLLUX_CHECK(other.phase_ != Phase::kWaiting, "moved after it started waiting");
    other.phase_ = Phase::kDone;
  }
  LossyNotified& operator=(LossyNotified&&) = delete;
  inline ~LossyNotified();

  inline Poll<void> poll(Context& cx);

 private:
  friend class LossyNotify;
  template <class>
  friend class sync::detail::WaiterList;
  enum class Phase : uint8_t { kInit, kWaiting, kDone };

  LossyNotified(LossyNotify* notify, uint64_t waiters_calls) noexcept
      : notify_(notify), waiters_calls_(waiters_calls) {}

  LossyNotify* notify_;
  uint64_t waiters_calls_;
  Phase phase_ = Phase::kInit;
  bool by_notify_waiters_ = false;
};

class LossyNotify {
 public:
  LossyNotify() = default;
  LossyNotify(const LossyNotify&) = delete;
  LossyNotify& operator=(const LossyNotify&) = delete;

  LossyNotified notified() noexcept {
    return LossyNotified(this, calls_of(state_.load(std::memory_order_seq_cst)));
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
    sync::detail::WaiterList<LossyNotified> batch;
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
          LossyNotified* w = batch.pop_front();
          if (w == nullptr) break;
          w->state = sync::detail::WaitState::kNotified;
          w->by_notify_waiters_ = true;
          wake.push(std::move(w->waker));
        }
        done = batch.empty();
      }
      wake.wake_all();
      if (done) return;
    }
  }

 private:
  friend class LossyNotified;
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
    LossyNotified* w = waiters_.pop_front();
    POLLUX_DCHECK(w != nullptr, "Notify WAITING with no waiter");
    w->state = sync::detail::WaitState::kNotified;
    wake.push(std::move(w->waker));
    if (waiters_.empty()) {
      state_.store((s & ~kStateMask) | kEmpty, std::memory_order_release);
    }
  }

  pollux::detail::Atomic<uint64_t> state_{kEmpty};
  pollux::detail::Mutex mu_;
  sync::detail::WaiterList<LossyNotified> waiters_ ABSL_GUARDED_BY(mu_);
};

LossyNotified::~LossyNotified() {
  if (phase_ != Phase::kWaiting) return;
  sync::detail::DeferredWakerDrop drop;
  pollux::detail::MutexLock lock(notify_->mu_);
  drop.take(waker);
  if (linked()) {
    unlink();
    if (notify_->waiters_.empty()) {
      const uint64_t s = notify_->state_.load(std::memory_order_acquire);
      if ((s & LossyNotify::kStateMask) == LossyNotify::kWaiting) {
        notify_->state_.store((s & ~LossyNotify::kStateMask) | LossyNotify::kEmpty,
                              std::memory_order_release);
      }
    }
  }
  // THE BUG: the real destructor goes on with
  //   else if (state == kNotified && !by_notify_waiters_) notify_one_locked(wake);
  // so a notification notify_one gave this future passes to the next waiter
  // or becomes the stored permit. Here it is dropped with the future.
}

Poll<void> LossyNotified::poll(Context& cx) {
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (phase_ == Phase::kInit) {
    uint64_t s = notify_->state_.load(std::memory_order_acquire);
    if (LossyNotify::calls_of(s) != waiters_calls_) {
      phase_ = Phase::kDone;
      return Ready{};
    }
    if ((s & LossyNotify::kStateMask) == LossyNotify::kNotified &&
        notify_->state_.compare_exchange_strong(
            s, (s & ~LossyNotify::kStateMask) | LossyNotify::kEmpty, std::memory_order_acq_rel,
            std::memory_order_acquire)) {
      phase_ = Phase::kDone;
      return Ready{};
    }
    pollux::detail::MutexLock lock(notify_->mu_);
    s = notify_->state_.load(std::memory_order_acquire);
    for (;;) {
      if (LossyNotify::calls_of(s) != waiters_calls_) {
        phase_ = Phase::kDone;
        return Ready{};
      }
      const uint64_t st = s & LossyNotify::kStateMask;
      if (st == LossyNotify::kWaiting) break;
      const uint64_t next = (s & ~LossyNotify::kStateMask) |
                            (st == LossyNotify::kNotified ? LossyNotify::kEmpty
                                                          : LossyNotify::kWaiting);
      if (notify_->state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
        if (st == LossyNotify::kNotified) {
          phase_ = Phase::kDone;
          return Ready{};
        }
        break;
      }
    }
    state = sync::detail::WaitState::kWaiting;
    waker = cx.waker();
    notify_->waiters_.push_back(this);
    phase_ = Phase::kWaiting;
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
  cx.budget().refund();
  return Pending{};
}

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_LOSSY_NOTIFY_H_
