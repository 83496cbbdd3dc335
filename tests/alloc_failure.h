// Allocation failure injection for tests (seastar's approach): linking
// //tests:alloc_failure into a test binary replaces the global operator
// new/new[]/delete (every form: sized, aligned, nothrow) with versions that
// count allocations and can be told to fail one of them.
//
//   pollux::testing::AllocFailure::fail_nth(3);    // the 3rd allocation from now throws
//   ... code under test ...
//   pollux::testing::AllocFailure::disarm();       // how many there were: count()
//
// Scope: only allocations made on the thread that armed the injector are
// counted or failed (a per-thread switch). That keeps a scenario
// deterministic while a runtime's other threads (workers, the blocking
// pool, a sanitizer's own) allocate at times of their own. A throwing form
// throws std::bad_alloc; a nothrow form returns null, as the standard says.
// fail_all() fails every allocation on this thread until disarm(): a way
// to assert that a path never allocates (count() tells how many it tried,
// failures() how many were refused).
//
// Sanitizers: ASan, TSan and LSan intercept malloc, which these operators
// call, so replacing operator new keeps their checking (leaks, double free,
// use after free) for every allocation; only their new/delete mismatch
// check is lost. kReplacementActive says whether the replacement is linked
// and live in this binary (tests GTEST_SKIP with kInactiveMessage if not).
//
// Thread-safety: arm/disarm/count on the armed thread only.
#ifndef POLLUX_TESTS_ALLOC_FAILURE_H_
#define POLLUX_TESTS_ALLOC_FAILURE_H_

#include <cstddef>
#include <cstdint>

namespace pollux::testing {

/// The allocation failure injector of this thread (see the header comment).
class AllocFailure {
 public:
  // Counts allocations from now on; fails none.
  static void count_only() noexcept;
  // Counts from now on; the n-th allocation (1-based) fails, later ones
  // succeed again.
  static void fail_nth(uint64_t n) noexcept;
  // Counts from now on; every allocation fails.
  static void fail_all() noexcept;
  // Stops counting and failing; count() and failures() keep their values.
  static void disarm() noexcept;
  // Allocations seen since the last arm (including failed ones).
  static uint64_t count() noexcept;
  // Allocations refused since the last arm.
  static uint64_t failures() noexcept;
  // True when operator new really goes through the injector (a probe
  // allocation is counted).
  static bool replacement_active() noexcept;
};

inline constexpr char kInactiveMessage[] =
    "operator new is not replaced in this binary (a sanitizer runtime took precedence): "
    "allocation failure injection cannot run here";

// Arms the injector for a scope and disarms it at the end.
class [[nodiscard]] ScopedAllocCount {
 public:
  ScopedAllocCount() noexcept { AllocFailure::count_only(); }
  ~ScopedAllocCount() { AllocFailure::disarm(); }
  ScopedAllocCount(const ScopedAllocCount&) = delete;
  ScopedAllocCount& operator=(const ScopedAllocCount&) = delete;
};

}  // namespace pollux::testing

#endif  // POLLUX_TESTS_ALLOC_FAILURE_H_
