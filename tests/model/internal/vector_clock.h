// VectorClock: the model checker's happens-before relation.
//
// One logical clock per model thread. Every operation of thread t first
// ticks component t, so each operation is named by (t, clock[t]) and that
// operation happens before whatever a later clock C has seen, exactly when
// C[t] >= that value. Synchronisation (a release read by an acquire, an
// unlock followed by a lock, a spawn, a join) joins clocks componentwise.
//
// Fixed size (kMaxThreads) so that clocks can live inline in instrumented
// objects without allocating.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_VECTOR_CLOCK_H_
#define POLLUX_TESTS_MODEL_INTERNAL_VECTOR_CLOCK_H_

#include <algorithm>
#include <array>
#include <cstdint>

namespace pollux::model::internal {

// Model threads per execution, the body's thread included.
inline constexpr int kMaxThreads = 8;

class VectorClock {
 public:
  uint32_t operator[](int thread) const noexcept { return clocks_[thread]; }
  void tick(int thread) noexcept { ++clocks_[thread]; }
  // Component `thread` becomes at least `at`.
  void raise(int thread, uint32_t at) noexcept { clocks_[thread] = std::max(clocks_[thread], at); }
  void join(const VectorClock& other) noexcept {
    for (int i = 0; i < kMaxThreads; ++i) clocks_[i] = std::max(clocks_[i], other.clocks_[i]);
  }
  // True when the operation `thread` did at its own clock `at` happens
  // before the point this clock describes.
  [[nodiscard]] bool has_seen(int thread, uint32_t at) const noexcept {
    return clocks_[thread] >= at;
  }
  void clear() noexcept { clocks_.fill(0); }

 private:
  std::array<uint32_t, kMaxThreads> clocks_{};
};

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_VECTOR_CLOCK_H_
