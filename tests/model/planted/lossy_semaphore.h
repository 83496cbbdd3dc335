// PLANTED BUG (the QUEUED bit protocol of sync::Semaphore). A copy of
// sync::Semaphore and its Acquire future (sync/semaphore.{h,cc} at 0af8981,
// without close(), which the model using it does not call) whose release()
// always adds its permits lock-free, without looking at QUEUED: a waiter
// that queued (taking what was free and setting QUEUED in one CAS) is
// never handed the permits released after that, and sleeps forever while
// they sit in the count. The model checker must report a deadlock
// (tests/model/semaphore_model_test.cc). Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_LOSSY_SEMAPHORE_H_
#define POLLUX_TESTS_MODEL_PLANTED_LOSSY_SEMAPHORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "future/assert.h"
#include "future/context.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/poll.h"
#include "sync/internal/waiters.h"

namespace pollux::model::planted {

class LossySemaphore;

// Held permits, given back on destruction.
class LossyPermit {
 public:
  LossyPermit(LossySemaphore* sem, size_t n) noexcept : sem_(sem), n_(n) {}
  LossyPermit(LossyPermit&& o) noexcept
      : sem_(std::exchange(o.sem_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  LossyPermit& operator=(LossyPermit&&) = delete;
  inline ~LossyPermit();

 private:
  LossySemaphore* sem_;
  size_t n_;
};

// What try_acquire and the Acquire future give: permits, or none.
struct LossyResult {
  bool ok() const noexcept { return permit.has_value(); }
  std::optional<LossyPermit> permit;
};

class [[nodiscard]] LossyAcquire : private sync::detail::WaiterNode {
 public:
  using Output = LossyResult;

  LossyAcquire(LossyAcquire&& o) noexcept
      : sem_(o.sem_), total_(o.total_), needed_(o.needed_), phase_(o.phase_) {
    POLLUX_CHECK(o.phase_ != Phase::kWaiting, "moved after it started waiting");
    o.phase_ = Phase::kDone;
  }
  LossyAcquire& operator=(LossyAcquire&&) = delete;
  inline ~LossyAcquire();

  inline Poll<LossyResult> poll(Context& cx);

 private:
  friend class LossySemaphore;
  template <class>
  friend class sync::detail::WaiterList;
  enum class Phase : uint8_t { kInit, kWaiting, kDone };
  LossyAcquire(LossySemaphore* sem, size_t n) noexcept : sem_(sem), total_(n), needed_(n) {}

  LossySemaphore* sem_;
  size_t total_;
  size_t needed_;
  size_t acquired_ = 0;
  Phase phase_ = Phase::kInit;
};

class LossySemaphore {
 public:
  explicit LossySemaphore(size_t permits) : word_(uint64_t{permits} << kShift) {}
  LossySemaphore(const LossySemaphore&) = delete;
  LossySemaphore& operator=(const LossySemaphore&) = delete;
  ~LossySemaphore() { POLLUX_DCHECK(waiters_.empty(), "destroyed with waiters"); }

  LossyAcquire acquire(size_t n = 1) noexcept { return LossyAcquire(this, n); }
  LossyResult try_acquire(size_t n = 1) noexcept {
    LossyResult r;
    if (try_take(n)) r.permit.emplace(this, n);
    return r;
  }
  size_t available_permits() const noexcept {
    return word_.load(std::memory_order_relaxed) >> kShift;
  }

  bool try_take(size_t n) noexcept {
    uint64_t w = word_.load(std::memory_order_acquire);
    for (;;) {
      if (w & (kClosed | kQueued)) return false;
      if ((w >> kShift) < n) return false;
      if (word_.compare_exchange_weak(w, w - (uint64_t{n} << kShift), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        return true;
      }
    }
  }

  void release(size_t n) noexcept {
    if (n == 0) return;
    // THE BUG: the real release loops only `while (!(w & kQueued))` and
    // otherwise takes the lock to hand the permits to the queued waiters.
    // This one adds them lock-free whatever the word says.
    uint64_t w = word_.load(std::memory_order_relaxed);
    while (!word_.compare_exchange_weak(w, w + (uint64_t{n} << kShift), std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    }
  }

 private:
  friend class LossyAcquire;
  static constexpr uint64_t kClosed = 1;
  static constexpr uint64_t kQueued = 2;
  static constexpr uint64_t kShift = 3;

  void clear_queued_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint64_t w = word_.load(std::memory_order_relaxed);
    while (!word_.compare_exchange_weak(w, w & ~kQueued, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
    }
  }

  pollux::detail::Atomic<uint64_t> word_;
  mutable pollux::detail::Mutex mu_;
  sync::detail::WaiterList<LossyAcquire> waiters_ ABSL_GUARDED_BY(mu_);
};

LossyPermit::~LossyPermit() {
  if (n_ > 0) sem_->release(n_);
}

LossyAcquire::~LossyAcquire() {
  if (phase_ != Phase::kWaiting) return;
  size_t give_back = 0;
  {
    sync::detail::DeferredWakerDrop drop;
    pollux::detail::MutexLock lock(sem_->mu_);
    drop.take(waker);
    if (linked()) {
      unlink();
      give_back = acquired_;
      if (sem_->waiters_.empty()) sem_->clear_queued_locked();
    } else if (state == sync::detail::WaitState::kNotified) {
      give_back = acquired_;
    }
  }
  sem_->release(give_back);
}

Poll<LossyResult> LossyAcquire::poll(Context& cx) {
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (phase_ == Phase::kInit) {
    if (sem_->try_take(total_)) {
      phase_ = Phase::kDone;
      return Ready(LossyResult{LossyPermit(sem_, total_)});
    }
    pollux::detail::MutexLock lock(sem_->mu_);
    uint64_t w = sem_->word_.load(std::memory_order_acquire);
    size_t take;
    for (;;) {
      const size_t free = w >> LossySemaphore::kShift;
      if (!(w & LossySemaphore::kQueued) && free >= total_) {
        take = total_;
      } else {
        take = (w & LossySemaphore::kQueued) ? 0 : free;
      }
      const uint64_t next = (w - (uint64_t{take} << LossySemaphore::kShift)) |
                            (take == total_ ? 0 : LossySemaphore::kQueued);
      if (sem_->word_.compare_exchange_weak(w, next, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
        break;
      }
    }
    if (take == total_) {
      phase_ = Phase::kDone;
      return Ready(LossyResult{LossyPermit(sem_, total_)});
    }
    acquired_ = take;
    needed_ = total_ - take;
    state = sync::detail::WaitState::kWaiting;
    waker = cx.waker();
    sem_->waiters_.push_back(this);
    phase_ = Phase::kWaiting;
    cx.budget().refund();
    return Pending{};
  }
  sync::detail::DeferredWakerDrop drop;
  pollux::detail::MutexLock lock(sem_->mu_);
  if (state == sync::detail::WaitState::kNotified) {
    state = sync::detail::WaitState::kIdle;
    phase_ = Phase::kDone;
    return Ready(LossyResult{LossyPermit(sem_, total_)});
  }
  drop.replace(waker, cx.waker());
  cx.budget().refund();
  return Pending{};
}

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_LOSSY_SEMAPHORE_H_
