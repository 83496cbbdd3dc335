// Idle: which multi_thread workers are asleep and how many are searching
// for work, so that new work wakes at most one sleeper and only when no
// worker is already looking (tokio's idle.rs, DESIGN §4).
//
// One atomic word counts the unparked and the searching workers; the list
// of sleepers is under a mutex, touched only when a worker parks or is
// woken. The protocol that makes a lost wake-up impossible:
//
// - A producer makes its work visible (a push to a stealable queue or the
//   inject queue) and then calls worker_to_notify(): a seq_cst fence, then
//   it wakes a sleeper only if nobody is searching and somebody sleeps.
// - A searching worker that finds nothing parks with
//   transition_worker_to_parked(); when it was the last searcher it looks at
//   every queue once more (the caller's job) and wakes a worker for what it
//   finds.
// Either the producer's fenced read sees no searcher (so it wakes one), or
// the last searcher's decrement comes after it in the seq_cst order and its
// re-check, behind a seq_cst fence of its own (the queues' lengths are read
// with acquire loads, not seq_cst ones), sees the work. At most half the
// workers search at once (transition_worker_to_searching refuses more),
// which bounds the stealing traffic of idle workers.
//
// A worker woken by its own events (its ring, its timers, a task pushed to
// its remote queue) removes itself from the sleepers with
// unpark_worker_by_id(); one woken by worker_to_notify() is already removed
// and counts as searching.
//
// Thread-safety: every member from any thread.
#ifndef POLLUX_EXECUTOR_MULTI_THREAD_IDLE_H_
#define POLLUX_EXECUTOR_MULTI_THREAD_IDLE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"

namespace pollux::detail {

class Idle {
 public:
  explicit Idle(uint32_t workers);
  Idle(const Idle&) = delete;
  Idle& operator=(const Idle&) = delete;

  // The worker to wake for new work (already removed from the sleepers and
  // counted as unparked and searching), or nullopt when a worker is
  // searching already or none sleeps.
  std::optional<uint32_t> worker_to_notify() noexcept;
  // A worker with nothing to run wants to steal; false when half of the
  // workers already search.
  bool transition_worker_to_searching() noexcept;
  // A searching worker found work. True when it was the last searcher: it
  // should then wake another to keep looking.
  bool transition_worker_from_searching() noexcept;
  // `worker` goes to sleep. True when it was the last searcher: it must then
  // look at every queue once more before sleeping (see the header comment).
  bool transition_worker_to_parked(uint32_t worker, bool is_searching) noexcept;
  // A worker woke by its own events: removes it from the sleepers. True
  // when it was there (nobody notified it: it does not count as searching).
  bool unpark_worker_by_id(uint32_t worker) noexcept;
  // Whether `worker` is still in the sleepers (a spurious wake-up).
  bool is_parked(uint32_t worker) const noexcept;

  uint32_t num_searching() const noexcept {
    // seq_cst: part of the protocol's total order (see the header comment).
    return searching_of(state_.load(std::memory_order_seq_cst));
  }

 private:
  static constexpr uint32_t kUnparkedShift = 16;
  static constexpr uint32_t kSearchingMask = (uint32_t{1} << kUnparkedShift) - 1;
  static constexpr uint32_t kOneUnparked = uint32_t{1} << kUnparkedShift;
  static uint32_t searching_of(uint32_t s) noexcept { return s & kSearchingMask; }
  static uint32_t unparked_of(uint32_t s) noexcept { return s >> kUnparkedShift; }

  const uint32_t workers_;
  // {unparked workers << 16 | searching workers}. seq_cst throughout.
  Atomic<uint32_t> state_;
  mutable Mutex mu_;
  std::vector<uint32_t> sleepers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_MULTI_THREAD_IDLE_H_
