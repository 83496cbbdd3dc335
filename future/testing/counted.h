// Counted: a value type that counts its live instances, to prove that every
// object a future, task or combinator owned was destroyed exactly once.
//
//   Counted::reset();  { ... }  EXPECT_EQ(Counted::live(), 0);
//
// Copies and moves each make a new live instance; a moved-from Counted is
// still alive until destroyed (that is what C++ does). `destructions()`
// counts every destructor run; a double destruction shows up as live() < 0.
// Thread-safe (atomic counters, relaxed: tests read them after synchronising).
#ifndef POLLUX_FUTURE_TESTING_COUNTED_H_
#define POLLUX_FUTURE_TESTING_COUNTED_H_

#include <atomic>
#include <cstdint>

namespace pollux::testing {

class Counted {
 public:
  explicit Counted(int v = 0) noexcept : value(v) { created(); }
  Counted(const Counted& o) noexcept : value(o.value) { created(); }
  Counted(Counted&& o) noexcept : value(o.value) { created(); }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() {
    live_.fetch_sub(1, std::memory_order_relaxed);
    destructions_.fetch_add(1, std::memory_order_relaxed);
  }

  static int64_t live() { return live_.load(std::memory_order_relaxed); }
  static int64_t destructions() { return destructions_.load(std::memory_order_relaxed); }
  static void reset() {
    live_.store(0, std::memory_order_relaxed);
    destructions_.store(0, std::memory_order_relaxed);
  }

  int value;

 private:
  static void created() { live_.fetch_add(1, std::memory_order_relaxed); }
  static inline std::atomic<int64_t> live_{0};
  static inline std::atomic<int64_t> destructions_{0};
};

}  // namespace pollux::testing

#endif  // POLLUX_FUTURE_TESTING_COUNTED_H_
