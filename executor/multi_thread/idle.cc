#include "executor/multi_thread/idle.h"

#include <algorithm>

#include "future/internal/atomic.h"

namespace pollux::detail {

Idle::Idle(uint32_t workers) : workers_(workers), state_(workers << kUnparkedShift) {
  sleepers_.reserve(workers);
}

std::optional<uint32_t> Idle::worker_to_notify() noexcept {
  // seq_cst fence: orders the caller's push before the state read below, in
  // the total order the parking searcher's decrement is also in.
  atomic_fence(std::memory_order_seq_cst);
  const uint32_t s = state_.load(std::memory_order_seq_cst);
  if (searching_of(s) != 0 || unparked_of(s) >= workers_) return std::nullopt;
  MutexLock lock(mu_);
  // Re-checked under the lock: another producer may have woken one.
  const uint32_t again = state_.load(std::memory_order_seq_cst);
  if (searching_of(again) != 0 || unparked_of(again) >= workers_ || sleepers_.empty()) {
    return std::nullopt;
  }
  const uint32_t worker = sleepers_.back();
  sleepers_.pop_back();
  // seq_cst: a worker woken to search is one more unparked and searching.
  state_.fetch_add(kOneUnparked + 1, std::memory_order_seq_cst);
  return worker;
}

bool Idle::transition_worker_to_searching() noexcept {
  // seq_cst: as everywhere on this word. The check and the increment are not
  // one step: two racing workers may both pass, a bound of "about half".
  const uint32_t s = state_.load(std::memory_order_seq_cst);
  if (2 * searching_of(s) >= workers_) return false;
  state_.fetch_add(1, std::memory_order_seq_cst);
  return true;
}

bool Idle::transition_worker_from_searching() noexcept {
  // seq_cst: see the header comment.
  return searching_of(state_.fetch_sub(1, std::memory_order_seq_cst)) == 1;
}

bool Idle::transition_worker_to_parked(uint32_t worker, bool is_searching) noexcept {
  MutexLock lock(mu_);
  const uint32_t dec = kOneUnparked + (is_searching ? 1 : 0);
  // seq_cst: the last searcher's decrement is ordered against producers'
  // fenced reads (worker_to_notify), so one of the two sees the other.
  const uint32_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
  sleepers_.push_back(worker);
  const bool last_searcher = is_searching && searching_of(prev) == 1;
  if (last_searcher) {
    // seq_cst fence: the caller's re-check reads the queues with acquire
    // loads (InjectQueue::len, LocalQueue::len), which the seq_cst decrement
    // above does not order against a producer's fence: without this fence
    // the re-check may read a length from before a push whose producer's
    // fenced read (worker_to_notify) saw this worker still searching, and
    // both give the task up, stranded with every worker asleep (found by
    // tests/model/idle_model_test.cc). With it, a producer fence that
    // precedes this one in the seq_cst order makes its push visible to the
    // re-check; one that follows it sees the decrement.
    atomic_fence(std::memory_order_seq_cst);
  }
  return last_searcher;
}

bool Idle::unpark_worker_by_id(uint32_t worker) noexcept {
  MutexLock lock(mu_);
  auto it = std::find(sleepers_.begin(), sleepers_.end(), worker);
  if (it == sleepers_.end()) return false;
  sleepers_.erase(it);
  // seq_cst: as everywhere on this word.
  state_.fetch_add(kOneUnparked, std::memory_order_seq_cst);
  return true;
}

bool Idle::is_parked(uint32_t worker) const noexcept {
  MutexLock lock(mu_);
  return std::find(sleepers_.begin(), sleepers_.end(), worker) != sleepers_.end();
}

}  // namespace pollux::detail
