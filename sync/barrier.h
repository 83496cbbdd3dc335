// Barrier: n tasks wait until all n have arrived, then all go on.
//
//   sync::Barrier b(3);
//   sync::BarrierWaitResult r = co_await b.wait();   // in each of 3 tasks
//   if (r.is_leader()) ...                           // exactly one of them
//
// Reusable: after n arrivals the barrier starts a new generation. Of each
// generation exactly one wait() returns is_leader() (the last to arrive).
//
// Cancellation: like tokio's, a wait() counts as arrived at its first poll;
// dropping it afterwards does not take the arrival back (the generation
// completes without it). Dropping it before its first poll has no effect.
//
// Thread-safety: wait() from any task on any thread.
#ifndef POLLUX_SYNC_BARRIER_H_
#define POLLUX_SYNC_BARRIER_H_

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "future/future.h"
#include "future/internal/mutex.h"
#include "sync/notify.h"

namespace pollux::sync {

// What a Barrier wait() returns: is_leader() for exactly one waiter per
// generation.
class BarrierWaitResult {
 public:
  bool is_leader() const noexcept { return leader_; }

 private:
  friend class Barrier;
  explicit BarrierWaitResult(bool leader) noexcept : leader_(leader) {}
  bool leader_;
};

// n tasks wait until all n arrived, then all go on; reusable (see above).
class Barrier {
 public:
  // n >= 1 tasks per generation (n == 1: every wait() leads at once).
  explicit Barrier(size_t n);
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  // The future wait() returns; it counts as arrived at its first poll.
  class [[nodiscard]] Wait {
   public:
    using Output = BarrierWaitResult;
    Poll<BarrierWaitResult> poll(Context& cx);

   private:
    friend class Barrier;
    explicit Wait(Barrier* b) noexcept : b_(b) {}
    Barrier* b_;
    std::optional<Notified> notified_;  // made at arrival, under the lock
    uint64_t generation_ = 0;
  };
  Wait wait() noexcept { return Wait(this); }

 private:
  const size_t n_;
  pollux::detail::Mutex mu_;
  size_t arrived_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  Notify released_;
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_BARRIER_H_
