#include "timer/interval.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "executor/local_executor.h"
#include "future/testing/counting_waker.h"
#include "timer/instant.h"
#include "timer/time_driver.h"
#include "timer/timer_queue.h"

namespace pollux {
namespace {

using ::pollux::testing::CountingWaker;

constexpr absl::Duration kPeriod = absl::Milliseconds(10);

// A paused TimeDriver with an executor, entered on this thread.
class IntervalTest : public ::testing::Test {
 protected:
  IntervalTest() { q().pause(); }
  timer::TimerQueue& q() { return drv.queue(); }

  timer::TimeDriver drv;
  LocalExecutor ex{drv};
  timer::CurrentTimerQueueGuard entered{&drv.queue()};
};

TEST_F(IntervalTest, FirstTickIsImmediateThenEveryPeriodOnTheGrid) {
  Interval iv = interval(kPeriod);
  const Instant start = q().now();
  EXPECT_EQ(iv.next_tick(), start);
  EXPECT_EQ(iv.period(), kPeriod);

  EXPECT_EQ(ex.block_on(iv.tick()), start);
  EXPECT_EQ(q().now(), start) << "the first tick did not wait";
  for (int k = 1; k <= 20; ++k) {
    const Instant t = ex.block_on(iv.tick());
    EXPECT_EQ(t, start + kPeriod * k);
    EXPECT_GE(q().now(), t) << "never early";
    EXPECT_LT(q().now(), t + absl::Milliseconds(1)) << "at most one tick late";
  }
}

TEST_F(IntervalTest, IntervalAtWaitsForAFutureStart) {
  const Instant start = q().now() + absl::Milliseconds(25);
  Interval iv = interval_at(start, kPeriod);
  EXPECT_EQ(ex.block_on(iv.tick()), start);
  EXPECT_GE(q().now(), start);
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod);
}

TEST_F(IntervalTest, SkipsMissedTicksAfterAStallWithoutABurst) {
  Interval iv = interval(kPeriod);
  const Instant start = q().now();
  EXPECT_EQ(ex.block_on(iv.tick()), start);
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod);

  // The consumer stalls for 3.5 periods.
  timer::advance(kPeriod * 3.5);
  const Instant stalled_until = q().now();
  ASSERT_GE(stalled_until, start + kPeriod * 4.5);

  // The overdue tick completes at once with its scheduled time...
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod * 2);
  EXPECT_EQ(q().now(), stalled_until) << "no waiting for an overdue tick";
  // ...then 30 and 40 are skipped: the next is the first grid point after now.
  const Instant next = ex.block_on(iv.tick());
  EXPECT_EQ(next, start + kPeriod * 5);
  EXPECT_GE(q().now(), start + kPeriod * 5) << "it waited for the grid point (no burst)";
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod * 6);
}

TEST_F(IntervalTest, StallOfExactlyWholePeriodsStaysOnTheGrid) {
  Interval iv = interval(kPeriod);
  const Instant start = q().now();
  EXPECT_EQ(ex.block_on(iv.tick()), start);
  timer::advance(kPeriod * 3);  // now == start + 30 exactly
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod);
  const Instant next = ex.block_on(iv.tick());
  EXPECT_EQ(next, start + kPeriod * 4);
  EXPECT_GT(next, start + kPeriod * 3) << "strictly after the time of the skip";
}

TEST_F(IntervalTest, SmallLatenessDoesNotSkip) {
  Interval iv = interval(kPeriod);
  const Instant start = q().now();
  EXPECT_EQ(ex.block_on(iv.tick()), start);
  timer::advance(kPeriod + absl::Milliseconds(4));  // the tick at 10 is 4 ms late
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod);
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod * 2);
}

TEST_F(IntervalTest, DroppingATickFutureLosesNothing) {
  Interval iv = interval(kPeriod);
  const Instant start = q().now();
  EXPECT_EQ(ex.block_on(iv.tick()), start);
  CountingWaker cw;
  Waker w = cw.waker();
  {
    Interval::Tick t = iv.tick();
    Budget b;
    Context cx(w, b);
    EXPECT_TRUE(t.poll(cx).is_pending());
    EXPECT_EQ(q().active_timers(), 1u);
  }
  EXPECT_EQ(q().active_timers(), 1u) << "the interval keeps its timer";
  EXPECT_EQ(ex.block_on(iv.tick()), start + kPeriod);
}

TEST_F(IntervalTest, ResetRestartsTheGridFromNow) {
  Interval iv = interval(kPeriod);
  const Instant start = q().now();
  EXPECT_EQ(ex.block_on(iv.tick()), start);
  timer::advance(absl::Milliseconds(3));
  iv.reset();
  EXPECT_EQ(iv.next_tick(), start + absl::Milliseconds(13));
  EXPECT_EQ(ex.block_on(iv.tick()), start + absl::Milliseconds(13));
  EXPECT_EQ(ex.block_on(iv.tick()), start + absl::Milliseconds(23));
}

TEST_F(IntervalTest, DroppingTheIntervalUnregistersItsTimer) {
  {
    Interval iv = interval(kPeriod);
    EXPECT_EQ(ex.block_on(iv.tick()), q().now());
    Interval::Tick t = iv.tick();
    Budget b;
    Context cx(noop_waker(), b);
    EXPECT_TRUE(t.poll(cx).is_pending());
    EXPECT_EQ(q().active_timers(), 1u);
  }
  EXPECT_EQ(q().active_timers(), 0u);
}

TEST(IntervalRealClockTest, TicksAreNeverEarly) {
  timer::TimeDriver drv;
  LocalExecutor ex(drv);
  auto entered = drv.enter();
  Interval iv = interval(absl::Milliseconds(5));
  const Instant first = ex.block_on(iv.tick());
  for (int k = 1; k <= 4; ++k) {
    const Instant t = ex.block_on(iv.tick());
    EXPECT_GE(Instant::now(), t);
    EXPECT_GE(t - first, absl::Milliseconds(5) * k);
  }
  EXPECT_LT(Instant::now() - first, absl::Seconds(5));
}

TEST(IntervalDeathTest, PeriodMustBePositive) {
  EXPECT_DEATH((void)interval_at(Instant(), absl::ZeroDuration()), "positive period");
}

}  // namespace
}  // namespace pollux
