// PLANTED BUGS (DESIGN §10): copies of detail::Idle
// (executor/multi_thread/idle.{h,cc} at 78f88f2) with one half of its lost-wake-up
// argument removed each:
// - UnfencedIdle: worker_to_notify() drops the seq_cst fence between the
//   caller's push and its read of the searcher count, so a producer may
//   read "a worker is searching" while that searcher's re-check misses the
//   push;
// - NoLastSearcherIdle: transition_worker_to_parked() never reports the
//   last searcher, so nobody looks at the queues again before sleeping.
// Either way a task pushed while the last searcher gives up is stranded:
// the model checker must report a deadlock (tests/model/idle_model_test.cc).
// Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_LOSSY_IDLE_H_
#define POLLUX_TESTS_MODEL_PLANTED_LOSSY_IDLE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"

namespace pollux::model::planted {

template <bool kProducerFence, bool kReportLastSearcher>
class PlantedIdle {
 public:
  explicit PlantedIdle(uint32_t workers) : workers_(workers), state_(workers << kUnparkedShift) {
    sleepers_.reserve(workers);
  }
  PlantedIdle(const PlantedIdle&) = delete;
  PlantedIdle& operator=(const PlantedIdle&) = delete;

  std::optional<uint32_t> worker_to_notify() noexcept {
    if constexpr (kProducerFence) detail::atomic_fence(std::memory_order_seq_cst);
    const uint32_t s = state_.load(std::memory_order_seq_cst);
    if (searching_of(s) != 0 || unparked_of(s) >= workers_) return std::nullopt;
    detail::MutexLock lock(mu_);
    const uint32_t again = state_.load(std::memory_order_seq_cst);
    if (searching_of(again) != 0 || unparked_of(again) >= workers_ || sleepers_.empty()) {
      return std::nullopt;
    }
    const uint32_t worker = sleepers_.back();
    sleepers_.pop_back();
    state_.fetch_add(kOneUnparked + 1, std::memory_order_seq_cst);
    return worker;
  }
  bool transition_worker_to_searching() noexcept {
    const uint32_t s = state_.load(std::memory_order_seq_cst);
    if (2 * searching_of(s) >= workers_) return false;
    state_.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  bool transition_worker_from_searching() noexcept {
    return searching_of(state_.fetch_sub(1, std::memory_order_seq_cst)) == 1;
  }
  bool transition_worker_to_parked(uint32_t worker, bool is_searching) noexcept {
    detail::MutexLock lock(mu_);
    const uint32_t dec = kOneUnparked + (is_searching ? 1 : 0);
    const uint32_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
    sleepers_.push_back(worker);
    const bool last = is_searching && searching_of(prev) == 1;
    if (last) detail::atomic_fence(std::memory_order_seq_cst);  // as the real Idle
    return kReportLastSearcher && last;
  }
  bool unpark_worker_by_id(uint32_t worker) noexcept {
    detail::MutexLock lock(mu_);
    auto it = std::find(sleepers_.begin(), sleepers_.end(), worker);
    if (it == sleepers_.end()) return false;
    sleepers_.erase(it);
    state_.fetch_add(kOneUnparked, std::memory_order_seq_cst);
    return true;
  }
  bool is_parked(uint32_t worker) const noexcept {
    detail::MutexLock lock(mu_);
    return std::find(sleepers_.begin(), sleepers_.end(), worker) != sleepers_.end();
  }

 private:
  static constexpr uint32_t kUnparkedShift = 16;
  static constexpr uint32_t kSearchingMask = (uint32_t{1} << kUnparkedShift) - 1;
  static constexpr uint32_t kOneUnparked = uint32_t{1} << kUnparkedShift;
  static uint32_t searching_of(uint32_t s) noexcept { return s & kSearchingMask; }
  static uint32_t unparked_of(uint32_t s) noexcept { return s >> kUnparkedShift; }

  const uint32_t workers_;
  detail::Atomic<uint32_t> state_;
  mutable detail::Mutex mu_;
  std::vector<uint32_t> sleepers_ ABSL_GUARDED_BY(mu_);
};

using UnfencedIdle = PlantedIdle</*kProducerFence=*/false, /*kReportLastSearcher=*/true>;
using NoLastSearcherIdle = PlantedIdle</*kProducerFence=*/true, /*kReportLastSearcher=*/false>;

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_LOSSY_IDLE_H_
