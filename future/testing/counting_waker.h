// CountingWaker: a test waker that counts clones, wakes and drops.
//
// `CountingWaker cw; Waker w = cw.waker();` gives an owning Waker whose every
// operation is counted in `cw`. `live()` is clones - drops - wakes-by-value
// (`waker()` itself counts as a clone), so a test can prove that a future
// released every waker it cloned.
// Thread-safe: the counters are atomics (relaxed: tests read them after
// joining the threads that wake, which already orders the accesses).
#ifndef POLLUX_FUTURE_TESTING_COUNTING_WAKER_H_
#define POLLUX_FUTURE_TESTING_COUNTING_WAKER_H_

#include <atomic>
#include <cstdint>

#include "future/waker.h"

namespace pollux::testing {

class CountingWaker {
 public:
  CountingWaker() = default;
  CountingWaker(const CountingWaker&) = delete;
  CountingWaker& operator=(const CountingWaker&) = delete;

  // A new owning waker (counted as a clone).
  Waker waker() {
    clones_.fetch_add(1, std::memory_order_relaxed);
    return Waker::from_raw(this, &kVTable);
  }

  int64_t wakes() const { return wake_.load(std::memory_order_relaxed) + wake_by_ref_.load(std::memory_order_relaxed); }
  int64_t wakes_by_value() const { return wake_.load(std::memory_order_relaxed); }
  int64_t wakes_by_ref() const { return wake_by_ref_.load(std::memory_order_relaxed); }
  int64_t clones() const { return clones_.load(std::memory_order_relaxed); }
  int64_t drops() const { return drops_.load(std::memory_order_relaxed); }
  // Wakers made by this object that are still alive.
  int64_t live() const { return clones() - drops() - wakes_by_value(); }

 private:
  static CountingWaker* self(void* p) { return static_cast<CountingWaker*>(p); }
  static Waker clone(void* p) noexcept { return self(p)->waker(); }
  static void wake(void* p) noexcept { self(p)->wake_.fetch_add(1, std::memory_order_relaxed); }
  static void wake_by_ref(void* p) noexcept {
    self(p)->wake_by_ref_.fetch_add(1, std::memory_order_relaxed);
  }
  static void drop(void* p) noexcept { self(p)->drops_.fetch_add(1, std::memory_order_relaxed); }
  static constexpr WakerVTable kVTable = {&clone, &wake, &wake_by_ref, &drop};

  std::atomic<int64_t> clones_{0}, wake_{0}, wake_by_ref_{0}, drops_{0};
};

}  // namespace pollux::testing

#endif  // POLLUX_FUTURE_TESTING_COUNTING_WAKER_H_
