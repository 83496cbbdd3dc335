#include "sync/barrier.h"

#include "future/assert.h"

namespace pollux::sync {

using pollux::detail::MutexLock;

Barrier::Barrier(size_t n) : n_(n) { POLLUX_CHECK(n >= 1, "Barrier needs n >= 1"); }

Poll<BarrierWaitResult> Barrier::Wait::poll(Context& cx) {
  if (!notified_) {
    // Arrival.
    bool leader;
    {
      MutexLock lock(b_->mu_);
      generation_ = b_->generation_;
      leader = ++b_->arrived_ == b_->n_;
      if (leader) {
        b_->arrived_ = 0;
        ++b_->generation_;
      } else {
        // Made under the lock, so the leader's notify_waiters (after it took
        // the lock) counts it as created before: it cannot be missed.
        notified_.emplace(b_->released_.notified());
      }
    }
    if (leader) {
      b_->released_.notify_waiters();
      return Ready(BarrierWaitResult(true));
    }
  }
  for (;;) {
    if (notified_->poll(cx).is_pending()) return Pending{};
    // notify_waiters runs after the leader unlocked, so it may also release
    // a waiter of the next generation that arrived in between: only a new
    // generation number is a real release.
    MutexLock lock(b_->mu_);
    if (b_->generation_ != generation_) return Ready(BarrierWaitResult(false));
    notified_.emplace(b_->released_.notified());  // under the lock, as at arrival
  }
}

}  // namespace pollux::sync
