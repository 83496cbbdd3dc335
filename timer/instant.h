// pollux::Instant: a point on the monotonic clock, in nanoseconds.
//
//   Instant start = Instant::now();
//   ...
//   absl::Duration took = Instant::now() - start;
//   Instant deadline = start + absl::Milliseconds(50);
//
// Purpose
//   Time is `absl::Duration` for lengths and `Instant` for points (DESIGN.md
//   section 5). An Instant counts nanoseconds since an arbitrary epoch (the
//   epoch of CLOCK_MONOTONIC, roughly the boot time); only differences and
//   comparisons between Instants mean anything. `Instant::now()` reads the
//   real clock through the vDSO (about 28 ns, no syscall).
//
//   `Instant::now()` is always the REAL clock. The time that timers see is a
//   driver's clock (timer/timer_queue.h): a value cached once per driver tick,
//   which tests may pause and advance. Use `timer::now()` for deadlines that
//   must follow a paused clock.
//
// Arithmetic saturates
//   Every operation clamps to the representable range instead of overflowing:
//   `Instant::max() + d == Instant::max()` for d >= 0, `t +
//   absl::InfiniteDuration() == Instant::max()` and `t -
//   absl::InfiniteDuration() == Instant::min()` for every t, and `Instant - Instant` is `absl::InfiniteDuration()` (or
//   its negation) when the true difference does not fit. `Instant::max()`
//   therefore works as "never" for deadlines. `Instant - Instant` is signed:
//   an earlier minus a later Instant is a negative Duration.
//
// Thread-safety: a plain value type (8 bytes, trivially copyable).
#ifndef POLLUX_TIMER_INSTANT_H_
#define POLLUX_TIMER_INSTANT_H_

#include <compare>
#include <cstdint>
#include <iosfwd>
#include <limits>

#include "absl/time/time.h"

namespace pollux {

// A point on the monotonic clock, in nanoseconds; arithmetic saturates (see
// above).
class Instant {
 public:
  // The clock's epoch (nanos() == 0), earlier than any Instant::now().
  constexpr Instant() noexcept = default;

  // Reads the real monotonic clock (CLOCK_MONOTONIC, vDSO; no syscall).
  static Instant now() noexcept;
  // The latest representable Instant; a deadline that never comes.
  static constexpr Instant max() noexcept {
    return Instant(std::numeric_limits<int64_t>::max());
  }
  // The earliest representable Instant.
  static constexpr Instant min() noexcept {
    return Instant(std::numeric_limits<int64_t>::min());
  }
  // The Instant `ns` nanoseconds after the clock's epoch.
  static constexpr Instant from_nanos(int64_t ns) noexcept { return Instant(ns); }

  // Nanoseconds since the clock's epoch.
  constexpr int64_t nanos() const noexcept { return ns_; }

  // Saturating: clamps at Instant::min()/max(); infinite durations saturate.
  friend Instant operator+(Instant t, absl::Duration d) noexcept {
    if (d == absl::InfiniteDuration()) return max();
    if (d == -absl::InfiniteDuration()) return min();
    return Instant(sat_add(t.ns_, to_nanos(d)));
  }
  friend Instant operator+(absl::Duration d, Instant t) noexcept { return t + d; }
  friend Instant operator-(Instant t, absl::Duration d) noexcept {
    if (d == absl::InfiniteDuration()) return min();
    if (d == -absl::InfiniteDuration()) return max();
    return Instant(sat_sub(t.ns_, to_nanos(d)));
  }
  // Signed difference; +/-absl::InfiniteDuration() when it does not fit in int64 ns.
  friend absl::Duration operator-(Instant a, Instant b) noexcept {
    int64_t r = 0;
    if (__builtin_sub_overflow(a.ns_, b.ns_, &r)) {
      return a.ns_ > b.ns_ ? absl::InfiniteDuration() : -absl::InfiniteDuration();
    }
    return absl::Nanoseconds(r);
  }
  Instant& operator+=(absl::Duration d) noexcept { return *this = *this + d; }
  Instant& operator-=(absl::Duration d) noexcept { return *this = *this - d; }

  friend constexpr bool operator==(Instant, Instant) noexcept = default;
  friend constexpr std::strong_ordering operator<=>(Instant, Instant) noexcept = default;

  // Prints "Instant(<duration since the epoch>)", e.g. "Instant(12h3m0.5s)".
  friend std::ostream& operator<<(std::ostream& os, Instant t);

 private:
  constexpr explicit Instant(int64_t ns) noexcept : ns_(ns) {}

  // Whole nanoseconds of `d`, truncated toward zero; infinities saturate.
  static int64_t to_nanos(absl::Duration d) noexcept {
    return absl::ToInt64Nanoseconds(d);
  }
  static constexpr int64_t sat_add(int64_t a, int64_t b) noexcept {
    int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) {
      return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    }
    return r;
  }
  static constexpr int64_t sat_sub(int64_t a, int64_t b) noexcept {
    int64_t r = 0;
    if (__builtin_sub_overflow(a, b, &r)) {
      return b < 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
    }
    return r;
  }

  int64_t ns_ = 0;
};

}  // namespace pollux

#endif  // POLLUX_TIMER_INSTANT_H_
