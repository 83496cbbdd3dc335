#include "sync/semaphore.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace pollux::sync {

using pollux::detail::MutexLock;

namespace {
constexpr absl::string_view kClosedMessage = "semaphore closed";
absl::Status closed_status() { return absl::FailedPreconditionError(kClosedMessage); }
}  // namespace

bool is_closed_status(const absl::Status& s) noexcept {
  return s.code() == absl::StatusCode::kFailedPrecondition && s.message() == kClosedMessage;
}

// ---- SemaphorePermit ----

SemaphorePermit& SemaphorePermit::operator=(SemaphorePermit&& o) noexcept {
  if (this != &o) {
    if (n_ > 0) sem_->release(n_);
    sem_ = std::exchange(o.sem_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}

SemaphorePermit::~SemaphorePermit() {
  if (n_ > 0) sem_->release(n_);
}

void SemaphorePermit::merge(SemaphorePermit&& other) noexcept {
  if (other.n_ == 0) return;
  if (n_ == 0) sem_ = other.sem_;
  POLLUX_CHECK(sem_ == other.sem_, "merging permits of two different semaphores");
  n_ += std::exchange(other.n_, 0);
}

// ---- Semaphore ----

Semaphore::Semaphore(size_t permits) : word_(uint64_t{permits} << kShift) {
  POLLUX_CHECK(permits <= kMaxPermits, "Semaphore: more permits than kMaxPermits");
}

Semaphore::~Semaphore() {
  POLLUX_DCHECK(waiters_.empty(), "a Semaphore destroyed while acquires still wait on it");
}

bool Semaphore::is_closed() const noexcept {
  // acquire: pairs with close()'s fetch_or.
  return word_.load(std::memory_order_acquire) & kClosed;
}

size_t Semaphore::available_permits() const noexcept {
  // relaxed: a snapshot for the caller's information.
  return word_.load(std::memory_order_relaxed) >> kShift;
}

bool Semaphore::try_take(size_t n) noexcept {
  // acquire (load and CAS): taking permits pairs with the release that gave
  // them back, as a mutex's lock pairs with its unlock.
  uint64_t w = word_.load(std::memory_order_acquire);
  for (;;) {
    // QUEUED: others wait first (fairness); their permits are set aside.
    if (w & (kClosed | kQueued)) return false;
    if ((w >> kShift) < n) return false;
    if (word_.compare_exchange_weak(w, w - (uint64_t{n} << kShift), std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      return true;
    }
  }
}

absl::StatusOr<SemaphorePermit> Semaphore::try_acquire(size_t n) noexcept {
  if (try_take(n)) return SemaphorePermit(this, n);
  if (is_closed()) return closed_status();
  return absl::ResourceExhaustedError(
      absl::StrCat("semaphore: ", n, " permit(s) not available now (",
                   available_permits(), " free, or others are waiting first)"));
}

void Semaphore::release(size_t n) noexcept {
  if (n == 0) return;
  // relaxed load: the CAS below carries the ordering.
  uint64_t w = word_.load(std::memory_order_relaxed);
  while (!(w & kQueued)) {
    // release: what the holder did is visible to the next taker (its acquire).
    if (word_.compare_exchange_weak(w, w + (uint64_t{n} << kShift), std::memory_order_acq_rel,
                                    std::memory_order_relaxed)) {
      return;
    }
  }
  // Waiters are queued: hand the permits to them, 32 wakes at a time.
  size_t left = n;
  while (left > 0) {
    detail::WakeList wake;  // destroyed after the lock: wakes there
    MutexLock lock(mu_);
    left = release_locked(left, wake);
  }
}

size_t Semaphore::release_locked(size_t n, detail::WakeList& wake) {
  size_t left = n;
  while (left > 0 && !wake.full()) {
    Acquire* head = waiters_.front();
    if (head == nullptr) break;
    const size_t give = std::min(left, head->needed_);
    head->needed_ -= give;
    head->acquired_ += give;
    left -= give;
    if (head->needed_ > 0) break;  // not yet filled: `left` is 0 now
    waiters_.pop_front();
    head->state = detail::WaitState::kNotified;
    wake.push(std::move(head->waker));
  }
  if (!waiters_.empty()) return left;  // 0, or a full batch to wake first
  // Nobody waits any more: store the rest and clear QUEUED in one step. The
  // lock-free paths leave a QUEUED word alone, but close() may set CLOSED.
  uint64_t w = word_.load(std::memory_order_relaxed);
  // release: as in release(); the permits stored here are the waiters'.
  while (!word_.compare_exchange_weak(w, (w + (uint64_t{left} << kShift)) & ~kQueued,
                                      std::memory_order_acq_rel, std::memory_order_relaxed)) {
  }
  return 0;
}

void Semaphore::clear_queued_locked() {
  uint64_t w = word_.load(std::memory_order_relaxed);
  // acq_rel: publishes the empty queue to releases that then go lock-free.
  while (!word_.compare_exchange_weak(w, w & ~kQueued, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
  }
}

void Semaphore::close() noexcept {
  // acq_rel: pairs with is_closed()'s acquire and the acquires' loads.
  word_.fetch_or(kClosed, std::memory_order_acq_rel);
  size_t set_aside = 0;
  for (;;) {
    detail::WakeList wake;
    bool done;
    {
      MutexLock lock(mu_);
      while (!wake.full()) {
        Acquire* w = waiters_.pop_front();
        if (w == nullptr) break;
        set_aside += std::exchange(w->acquired_, 0);
        w->closed_ = true;
        w->state = detail::WaitState::kNotified;
        wake.push(std::move(w->waker));
      }
      done = waiters_.empty();
      if (done) clear_queued_locked();
    }
    wake.wake_all();
    if (done) break;
  }
  // Permits the failed waiters had been given are the semaphore's again.
  release(set_aside);
}

// ---- Acquire ----

Acquire::Acquire(Acquire&& other) noexcept
    : sem_(other.sem_), total_(other.total_), needed_(other.needed_), phase_(other.phase_) {
  POLLUX_CHECK(other.phase_ != Phase::kWaiting,
               "a semaphore Acquire was moved after it started waiting; a future must not move "
               "once polled");
  other.phase_ = Phase::kDone;
}

Acquire::~Acquire() {
  if (phase_ != Phase::kWaiting) return;
  size_t give_back = 0;
  {
    detail::DeferredWakerDrop drop;
    MutexLock lock(sem_->mu_);
    drop.take(waker);
    if (linked()) {
      unlink();
      give_back = acquired_;  // set aside for it so far: its place is lost
      if (sem_->waiters_.empty()) sem_->clear_queued_locked();
    } else if (state == detail::WaitState::kNotified && !closed_) {
      give_back = acquired_;  // granted but never told: pass them on
    }
  }
  // Outside the lock: release() takes it again and wakes in batches.
  sem_->release(give_back);
}

Poll<absl::Status> Acquire::poll_raw(Context& cx) {
  POLLUX_DCHECK(phase_ != Phase::kDone, "semaphore Acquire polled after it returned Ready");
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (phase_ == Phase::kInit) {
    if (sem_->try_take(total_)) {
      phase_ = Phase::kDone;
      return Ready(absl::OkStatus());
    }
    MutexLock lock(sem_->mu_);
    // acquire: as in try_take.
    uint64_t w = sem_->word_.load(std::memory_order_acquire);
    size_t take;
    for (;;) {
      if (w & Semaphore::kClosed) {
        phase_ = Phase::kDone;
        return Ready(closed_status());
      }
      const size_t free = w >> Semaphore::kShift;
      if (!(w & Semaphore::kQueued) && free >= total_) {
        take = total_;
      } else {
        // Queue, taking what is free now unless others wait first (their
        // permits are set aside, so a QUEUED word has none to give).
        take = (w & Semaphore::kQueued) ? 0 : free;
      }
      const uint64_t next =
          (w - (uint64_t{take} << Semaphore::kShift)) | (take == total_ ? 0 : Semaphore::kQueued);
      // acq_rel: acquire as in try_take; release publishes QUEUED (with our
      // node, linked below under the lock) to the releases that must see it.
      if (sem_->word_.compare_exchange_weak(w, next, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
        break;
      }
    }
    if (take == total_) {
      phase_ = Phase::kDone;
      return Ready(absl::OkStatus());
    }
    acquired_ = take;
    needed_ = total_ - take;
    state = detail::WaitState::kWaiting;
    waker = cx.waker();
    sem_->waiters_.push_back(this);
    phase_ = Phase::kWaiting;
    cx.budget().refund();
    return Pending{};
  }
  detail::DeferredWakerDrop drop;
  MutexLock lock(sem_->mu_);
  if (state == detail::WaitState::kNotified) {
    state = detail::WaitState::kIdle;
    phase_ = Phase::kDone;
    if (closed_) return Ready(closed_status());
    return Ready(absl::OkStatus());
  }
  drop.replace(waker, cx.waker());
  cx.budget().refund();
  return Pending{};
}

Poll<Acquire::Output> Acquire::poll(Context& cx) {
  Poll<absl::Status> p = poll_raw(cx);
  if (p.is_pending()) return Pending{};
  absl::Status s = std::move(p).value();
  if (!s.ok()) return Ready<Output>(std::move(s));
  return Ready<Output>(SemaphorePermit(sem_, total_));
}

}  // namespace pollux::sync
