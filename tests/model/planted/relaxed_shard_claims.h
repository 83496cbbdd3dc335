// PLANTED BUG (the hand-over of an event-count shard). A copy of
// examples::detail::ShardClaims (examples/event_counts.h) whose claim and
// release are relaxed: a thread that claims the index another thread just
// gave back may load the shard's count from before the other's last store
// and overwrite it, losing adds. The model checker must report it
// (tests/model/shard_claims_model_test.cc). Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_RELAXED_SHARD_CLAIMS_H_
#define POLLUX_TESTS_MODEL_PLANTED_RELAXED_SHARD_CLAIMS_H_

#include <atomic>
#include <cstdint>

#include "future/internal/atomic.h"

namespace pollux::model::planted {

class RelaxedShardClaims {
 public:
  static constexpr uint32_t kNone = 64;
  // THE BUG: relaxed on success, so nothing orders the previous owner's
  // stores before this owner's loads.
  uint32_t claim() noexcept {
    uint64_t held = held_.load(std::memory_order_relaxed);
    for (;;) {
      if (held == ~uint64_t{0}) return kNone;
      const auto index = static_cast<uint32_t>(__builtin_ctzll(~held));
      if (held_.compare_exchange_weak(held, held | (uint64_t{1} << index),
                                      std::memory_order_relaxed, std::memory_order_relaxed)) {
        return index;
      }
    }
  }
  void release(uint32_t index) noexcept {
    held_.fetch_and(~(uint64_t{1} << index), std::memory_order_relaxed);
  }

 private:
  detail::Atomic<uint64_t> held_{0};
};

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_RELAXED_SHARD_CLAIMS_H_
