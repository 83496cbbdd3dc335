#include "timer/instant.h"

#include <gtest/gtest.h>
#include <time.h>

#include <cstdint>
#include <limits>
#include <sstream>

#include "absl/time/time.h"

namespace pollux {
namespace {

TEST(InstantTest, NowIsMonotonicAndMatchesClockMonotonic) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const int64_t before = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  Instant prev = Instant::now();
  EXPECT_GE(prev.nanos(), before);
  for (int i = 0; i < 1000; ++i) {
    Instant t = Instant::now();
    EXPECT_GE(t, prev);
    prev = t;
  }
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const int64_t after = static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  EXPECT_LE(prev.nanos(), after);
}

TEST(InstantTest, ArithmeticWithDurations) {
  const Instant t = Instant::from_nanos(1'000'000'000);
  EXPECT_EQ((t + absl::Milliseconds(5)).nanos(), 1'005'000'000);
  EXPECT_EQ((absl::Milliseconds(5) + t).nanos(), 1'005'000'000);
  EXPECT_EQ((t - absl::Milliseconds(5)).nanos(), 995'000'000);
  EXPECT_EQ((t + absl::Nanoseconds(-7)).nanos(), 999'999'993);
  EXPECT_EQ((t + absl::Milliseconds(5)) - t, absl::Milliseconds(5));
  EXPECT_EQ(t - (t + absl::Milliseconds(5)), -absl::Milliseconds(5));
  Instant u = t;
  u += absl::Seconds(1);
  EXPECT_EQ(u.nanos(), 2'000'000'000);
  u -= absl::Seconds(2);
  EXPECT_EQ(u.nanos(), 0);
  EXPECT_EQ(u, Instant());
}

TEST(InstantTest, Comparisons) {
  const Instant a = Instant::from_nanos(1);
  const Instant b = Instant::from_nanos(2);
  EXPECT_LT(a, b);
  EXPECT_LE(a, a);
  EXPECT_GT(b, a);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, Instant::from_nanos(1));
  EXPECT_LT(Instant::now(), Instant::max());
  EXPECT_LT(Instant::min(), Instant());
}

TEST(InstantTest, ArithmeticSaturates) {
  const Instant now = Instant::now();
  EXPECT_EQ(now + absl::InfiniteDuration(), Instant::max());
  EXPECT_EQ(now - absl::InfiniteDuration(), Instant::min());
  EXPECT_EQ(now - -absl::InfiniteDuration(), Instant::max());
  EXPECT_EQ(Instant::min() + absl::InfiniteDuration(), Instant::max());
  EXPECT_EQ(now + -absl::InfiniteDuration(), Instant::min());
  EXPECT_EQ(Instant::max() + absl::Nanoseconds(1), Instant::max());
  EXPECT_EQ(Instant::max() + absl::Hours(1'000'000), Instant::max());
  EXPECT_EQ(Instant::min() - absl::Nanoseconds(1), Instant::min());
  EXPECT_EQ(Instant::max() - Instant::min(), absl::InfiniteDuration());
  EXPECT_EQ(Instant::min() - Instant::max(), -absl::InfiniteDuration());
  EXPECT_EQ(Instant::max() - Instant::from_nanos(std::numeric_limits<int64_t>::max() - 3),
            absl::Nanoseconds(3));
}

TEST(InstantTest, Prints) {
  std::ostringstream os;
  os << Instant::from_nanos(1'500'000'000) << " " << Instant::max();
  EXPECT_EQ(os.str(), "Instant(1.5s) Instant::max()");
}

}  // namespace
}  // namespace pollux
