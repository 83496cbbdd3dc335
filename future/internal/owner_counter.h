// detail::OwnerCounter: a metrics counter (or gauge) that one thread writes
// and any thread may read, e.g. Runtime::metrics() while the runtime runs.
//
// The write is a relaxed load plus a relaxed store, not a fetch_add: only the
// owner thread ever writes, so no increment can be lost, and the plain store
// makes no locked instruction (a fetch_add is a `lock xadd` on x86 even
// uncontended), which keeps counting off the cost of the hot paths (task
// poll, schedule, op submit). Reads are relaxed: a metric is a snapshot and
// orders nothing else, so no access pairs with them; being atomic is only
// what makes the cross-thread read race-free (TSan-clean).
//
// It is a std::atomic on purpose, not detail::Atomic: it takes part in no
// cross-thread protocol, so the model checker (--config=model) has nothing
// to explore in it.
//
// Thread-safety: add/inc/set/operators on the owner thread only; load from
// any thread.
#ifndef POLLUX_FUTURE_INTERNAL_OWNER_COUNTER_H_
#define POLLUX_FUTURE_INTERNAL_OWNER_COUNTER_H_

#include <atomic>
#include <cstdint>

namespace pollux::detail {

// A single-writer relaxed counter (see above).
class OwnerCounter {
 public:
  constexpr OwnerCounter() noexcept = default;
  OwnerCounter(const OwnerCounter&) = delete;
  OwnerCounter& operator=(const OwnerCounter&) = delete;

  // Owner thread only.
  void add(uint64_t n) noexcept {
    // relaxed load+store: single writer (see the header comment); readers'
    // relaxed loads pair with nothing.
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void inc() noexcept { add(1); }
  // A gauge's new value (owner thread only).
  void set(uint64_t v) noexcept {
    // relaxed: as in add.
    v_.store(v, std::memory_order_relaxed);
  }
  // Any thread.
  uint64_t load() const noexcept {
    // relaxed: a snapshot; pairs with nothing (see the header comment).
    return v_.load(std::memory_order_relaxed);
  }

  // The spelling of the plain uint64_t counters it replaces (owner thread).
  OwnerCounter& operator++() noexcept {
    add(1);
    return *this;
  }
  OwnerCounter& operator+=(uint64_t n) noexcept {
    add(n);
    return *this;
  }
  operator uint64_t() const noexcept { return load(); }  // NOLINT: a counter reads as its value

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace pollux::detail

#endif  // POLLUX_FUTURE_INTERNAL_OWNER_COUNTER_H_
