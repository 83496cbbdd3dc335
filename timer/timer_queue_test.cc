#include "timer/timer_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "future/testing/counting_waker.h"
#include "future/waker.h"
#include "timer/instant.h"

namespace pollux::timer {
namespace {

using ::pollux::testing::CountingWaker;
using ::testing::ElementsAreArray;

// A waker that logs (id, queue.now()) when woken; not reference counted (the
// Recorder outlives every waker made from it).
struct Recorder {
  struct Slot {
    Recorder* rec;
    int id;
  };
  explicit Recorder(const TimerQueue& q, int n) : queue(q), slots(n) {
    for (int i = 0; i < n; ++i) slots[i] = Slot{this, i};
  }
  Waker waker(int id) { return Waker::from_raw(&slots[id], &kVTable); }

  static void log(void* p) noexcept {
    auto* s = static_cast<Slot*>(p);
    s->rec->ids.push_back(s->id);
    s->rec->times.push_back(s->rec->queue.now());
  }
  static Waker clone(void* p) noexcept { return Waker::from_raw(p, &kVTable); }
  static void drop(void*) noexcept {}
  static constexpr WakerVTable kVTable = {&clone, &log, &log, &drop};

  const TimerQueue& queue;
  std::vector<Slot> slots;
  std::vector<int> ids;
  std::vector<Instant> times;
};

// The first tick boundary at or after `t`.
Instant NextBoundary(const TimerQueue& q, Instant t) {
  return q.tick_instant(q.deadline_tick(t));
}

// tick_now() is the tick's cached time: no clock read, so it stays behind
// a running clock until the next update_now(); now() is a fresh reading.
TEST(TimerQueueTest, TickNowIsTheCachedTimeAndNowReadsTheClock) {
  TimerQueue q;
  CurrentTimerQueueGuard g(&q);
  const Instant cached = q.now();
  absl::SleepFor(absl::Milliseconds(2));
  EXPECT_EQ(timer::tick_now(), cached);
  const Instant fresh = timer::now();
  EXPECT_GE(fresh - cached, absl::Milliseconds(2));
  EXPECT_EQ(q.latest_reading(), fresh) << "timer::now() is remembered";
  EXPECT_EQ(timer::tick_now(), cached) << "now() does not move the tick's time";
  q.update_now();
  EXPECT_GE(timer::tick_now(), fresh);
}

TEST(TimerQueueTest, DeadlinesRoundUpToTheNextTick) {
  TimerQueue q;
  q.pause();
  const Instant b = NextBoundary(q, q.now() + absl::Milliseconds(2));
  q.advance(b - q.now());
  ASSERT_EQ(q.now(), b);

  CountingWaker cw;
  TimerQueue::Entry e;
  e.set_waker(cw.waker());
  q.insert(&e, b + absl::Microseconds(500));  // mid-tick: rounds up to b + 1 ms
  EXPECT_TRUE(e.is_registered());
  EXPECT_EQ(q.active_timers(), 1u);
  EXPECT_EQ(q.next_deadline(), b + absl::Milliseconds(1));

  q.advance(absl::Microseconds(500));  // exactly the deadline, but mid-tick
  EXPECT_EQ(q.process(), 0u);
  q.advance(absl::Microseconds(500) - absl::Nanoseconds(1));
  EXPECT_EQ(q.process(), 0u);
  EXPECT_EQ(cw.wakes(), 0);
  EXPECT_FALSE(e.has_fired());
  q.advance(absl::Nanoseconds(1));  // the tick boundary after the deadline
  EXPECT_EQ(q.process(), 1u);
  EXPECT_TRUE(e.has_fired());
  EXPECT_FALSE(e.is_registered());
  EXPECT_EQ(cw.wakes_by_value(), 1);  // the stored clone was consumed
  EXPECT_EQ(cw.live(), 0);
  EXPECT_EQ(q.active_timers(), 0u);
  EXPECT_EQ(q.next_deadline(), std::nullopt);
}

TEST(TimerQueueTest, DeadlineOnATickBoundaryFiresExactlyThere) {
  TimerQueue q;
  q.pause();
  const Instant b = NextBoundary(q, q.now() + absl::Milliseconds(3));
  CountingWaker cw;
  TimerQueue::Entry e;
  e.set_waker(cw.waker());
  q.insert(&e, b);
  q.advance(b - q.now() - absl::Nanoseconds(1));
  EXPECT_EQ(q.process(), 0u);
  q.advance(absl::Nanoseconds(1));
  EXPECT_EQ(q.process(), 1u);
  EXPECT_EQ(cw.wakes(), 1);
}

// reset() to a later deadline is a store: the entry is re-filed, without
// firing or waking, when its old tick comes, and fires at the new one;
// reset() to an earlier one moves it at once.
TEST(TimerQueueTest, ResetLaterRefilesQuietlyAndResetEarlierMovesAtOnce) {
  TimerQueue q;
  q.pause();
  const Instant start = NextBoundary(q, q.now());  // on a tick: the ms below are exact
  q.advance(start - q.now());
  CountingWaker cw;
  TimerQueue::Entry e;
  e.set_waker(cw.waker());
  q.insert(&e, start + absl::Milliseconds(10));
  q.reset(&e, start + absl::Milliseconds(50));
  q.reset(&e, start + absl::Milliseconds(30));  // still later than its tick: recorded
  q.advance(absl::Milliseconds(20));
  EXPECT_EQ(q.process(), 0u) << "fired at the old deadline";
  EXPECT_EQ(cw.wakes(), 0);
  EXPECT_TRUE(e.is_registered());
  EXPECT_FALSE(e.has_fired());
  q.advance(absl::Milliseconds(9));
  EXPECT_EQ(q.process(), 0u) << "fired before the new deadline";
  q.advance(absl::Milliseconds(1));
  EXPECT_EQ(q.process(), 1u);
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_TRUE(e.has_fired());

  // Earlier than where it is filed: moved at once, and a later reset
  // recorded before that is forgotten.
  e.set_waker(cw.waker());
  q.insert(&e, q.now() + absl::Milliseconds(10));
  q.reset(&e, q.now() + absl::Milliseconds(40));
  q.reset(&e, q.now() + absl::Milliseconds(5));
  q.advance(absl::Milliseconds(5));
  EXPECT_EQ(q.process(), 1u);
  EXPECT_EQ(cw.wakes(), 2);
  EXPECT_EQ(q.active_timers(), 0u);
}

// reset_later() (Sleep's inline push-back) records like reset(): the entry
// is re-filed quietly at its old tick and fires at the last deadline given;
// a later deadline in the tick it is filed under fires in that tick.
TEST(TimerQueueTest, ResetLaterFiresAtTheLastDeadlineGiven) {
  TimerQueue q;
  q.pause();
  const Instant start = NextBoundary(q, q.now());
  q.advance(start - q.now());
  CountingWaker cw;
  TimerQueue::Entry e;
  e.set_waker(cw.waker());
  q.insert(&e, start + absl::Milliseconds(10));
  q.reset_later(&e, start + absl::Milliseconds(20));
  q.reset_later(&e, start + absl::Milliseconds(35));
  q.advance(absl::Milliseconds(10));
  EXPECT_EQ(q.process(), 0u) << "fired at the first deadline";
  q.advance(absl::Milliseconds(10));
  EXPECT_EQ(q.process(), 0u) << "fired at a deadline that was pushed back";
  q.advance(absl::Milliseconds(14));
  EXPECT_EQ(q.process(), 0u) << "fired before the last deadline";
  EXPECT_EQ(cw.wakes(), 0);
  q.advance(absl::Milliseconds(1));
  EXPECT_EQ(q.process(), 1u);
  EXPECT_EQ(cw.wakes(), 1);

  e.set_waker(cw.waker());
  q.insert(&e, q.now() + absl::Microseconds(9500));  // filed under the tick 10 ms on
  q.reset_later(&e, q.now() + absl::Milliseconds(10));
  q.advance(absl::Milliseconds(10));
  EXPECT_EQ(q.process(), 1u) << "a deadline in the filed tick fires in it";
  EXPECT_EQ(cw.wakes(), 2);
  EXPECT_EQ(q.active_timers(), 0u);
}

// auto_advance() jumps over a re-filing to the real deadline.
TEST(TimerQueueTest, AutoAdvanceSkipsALaterResetsOldTick) {
  TimerQueue q;
  q.pause();
  const Instant start = q.now();
  CountingWaker cw;
  TimerQueue::Entry e;
  e.set_waker(cw.waker());
  q.insert(&e, start + absl::Milliseconds(10));
  q.reset(&e, start + absl::Milliseconds(70));
  EXPECT_TRUE(q.auto_advance());
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_GE(q.now(), start + absl::Milliseconds(70)) << "woken at the old deadline";
}

TEST(TimerQueueTest, PastDeadlinesFireAtTheNextProcess) {
  TimerQueue q;
  q.pause();
  q.advance(absl::Milliseconds(10));
  CountingWaker cw;
  TimerQueue::Entry before_origin, before_now;
  before_origin.set_waker(cw.waker());
  before_now.set_waker(cw.waker());
  q.insert(&before_origin, q.origin() - absl::Seconds(1));
  q.insert(&before_now, q.now() - absl::Milliseconds(5));
  ASSERT_TRUE(q.next_deadline().has_value());
  EXPECT_LE(*q.next_deadline(), q.now());
  EXPECT_EQ(q.process(), 2u);
  EXPECT_EQ(cw.wakes(), 2);
}

TEST(TimerQueueTest, SameTickFiresInInsertionOrder) {
  TimerQueue q;
  q.pause();
  const Instant b = NextBoundary(q, q.now() + absl::Milliseconds(5));
  constexpr int kN = 10;
  Recorder rec(q, kN);
  std::vector<TimerQueue::Entry> entries(kN);
  for (int i = 0; i < kN; ++i) {
    entries[i].set_waker(rec.waker(i));
    // All within (b - 1 ms, b]; inserted latest deadline first.
    q.insert(&entries[i], b - absl::Microseconds(50) * i);
  }
  q.advance(b - q.now());
  EXPECT_EQ(q.process(), static_cast<size_t>(kN));
  std::vector<int> expected(kN);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_THAT(rec.ids, ElementsAreArray(expected));
}

// 1 ms .. 10 s in random insertion order, driven by auto_advance: deadline
// order (insertion order within a tick), never early, at most one tick late.
TEST(TimerQueueTest, AutoAdvanceFiresRandomDeadlinesInOrderNeverEarly) {
  TimerQueue q;
  q.pause();
  const Instant start = q.now();
  constexpr int kN = 2000;
  std::mt19937_64 rng(12345);
  std::vector<absl::Duration> delays(kN);
  for (int i = 0; i < kN; ++i) {
    if (i % 10 == 0) {
      delays[i] = absl::Milliseconds(1 + rng() % 20);  // many collisions
    } else {
      delays[i] = absl::Microseconds(1000 + rng() % 9'999'000);
    }
  }
  Recorder rec(q, kN);
  std::vector<TimerQueue::Entry> entries(kN);
  for (int i = 0; i < kN; ++i) {
    entries[i].set_waker(rec.waker(i));
    q.insert(&entries[i], start + delays[i]);
  }
  size_t jumps = 0;
  while (q.active_timers() > 0) {
    ASSERT_TRUE(q.auto_advance());
    ASSERT_LT(++jumps, 100'000u);
  }
  EXPECT_FALSE(q.auto_advance());
  ASSERT_EQ(rec.ids.size(), static_cast<size_t>(kN));
  for (int k = 0; k < kN; ++k) {
    const int id = rec.ids[k];
    const Instant deadline = start + delays[id];
    EXPECT_GE(rec.times[k], deadline) << "fired early: timer " << id;
    EXPECT_LT(rec.times[k], deadline + absl::Milliseconds(1)) << "more than a tick late: " << id;
    if (k > 0) {
      const int prev = rec.ids[k - 1];
      const uint64_t tp = q.deadline_tick(start + delays[prev]);
      const uint64_t tk = q.deadline_tick(deadline);
      ASSERT_LE(tp, tk);
      if (tp == tk) {
        EXPECT_LT(prev, id) << "same tick out of insertion order";
      }
    }
  }
  EXPECT_GE(q.now(), start + absl::Seconds(10) - absl::Milliseconds(10));
}

TEST(TimerQueueTest, CancelUnregistersWithoutFiring) {
  TimerQueue q;
  q.pause();
  CountingWaker cw;
  TimerQueue::Entry e;
  e.set_waker(cw.waker());
  q.insert(&e, q.now() + absl::Milliseconds(5));
  q.cancel(&e);
  EXPECT_FALSE(e.is_registered());
  EXPECT_EQ(q.active_timers(), 0u);
  q.cancel(&e);  // no-op
  q.advance(absl::Seconds(1));
  EXPECT_EQ(q.process(), 0u);
  EXPECT_EQ(cw.wakes(), 0);
  EXPECT_FALSE(e.has_fired());
  e.clear_waker();
  EXPECT_EQ(cw.live(), 0);
}

TEST(TimerQueueTest, SetWakerSkipsRecloningTheSameWaker) {
  CountingWaker a, b;
  Waker wa = a.waker();
  Waker wb = b.waker();
  TimerQueue::Entry e;
  e.set_waker(wa);
  e.set_waker(wa);
  EXPECT_EQ(a.clones(), 2);  // wa itself + one stored clone
  e.set_waker(wb);
  EXPECT_EQ(a.live(), 1);  // the stored clone of wa was dropped
  EXPECT_EQ(b.live(), 2);
  e.clear_waker();
  EXPECT_EQ(b.live(), 1);
}

TEST(TimerQueueTest, ClockRunsUnlessPaused) {
  TimerQueue q;
  const Instant t0 = q.now();
  EXPECT_GE(Instant::now(), q.origin());
  absl::SleepFor(absl::Milliseconds(2));
  EXPECT_EQ(q.now(), t0) << "now() is cached until update_now()";
  q.update_now();
  EXPECT_GE(q.now() - t0, absl::Milliseconds(2));

  q.pause();
  EXPECT_TRUE(q.is_paused());
  const Instant p = q.now();
  absl::SleepFor(absl::Milliseconds(2));
  q.update_now();
  EXPECT_EQ(q.now(), p);
  EXPECT_EQ(q.clock_now(), p);
  q.advance(absl::Hours(1));
  EXPECT_EQ(q.now(), p + absl::Hours(1));

  q.resume();
  EXPECT_FALSE(q.is_paused());
  q.update_now();
  // Runs on from the paused time, not from the real clock.
  EXPECT_GE(q.now(), p + absl::Hours(1));
  EXPECT_LT(q.now(), p + absl::Hours(1) + absl::Seconds(30));
  EXPECT_GE(q.clock_now() - Instant::now(), absl::Minutes(59));
  EXPECT_FALSE(q.auto_advance()) << "auto_advance only moves a paused clock";
}

TEST(TimerQueueTest, AutoAdvanceNeedsPausedClockAndTimers) {
  TimerQueue q;
  TimerQueue::Entry e;
  q.insert(&e, q.now() + absl::Seconds(5));
  EXPECT_FALSE(q.auto_advance());
  EXPECT_TRUE(e.is_registered());
  q.cancel(&e);
  q.pause();
  EXPECT_FALSE(q.auto_advance());
  EXPECT_EQ(q.now(), q.clock_now());
}

TEST(TimerQueueTest, FarDeadlinesBeyondTheWheelRangeFireOnTime) {
  TimerQueue q;
  q.pause();
  const Instant start = q.now();
  Recorder rec(q, 2);
  TimerQueue::Entry far, never;
  far.set_waker(rec.waker(0));
  never.set_waker(rec.waker(1));
  const Instant deadline = start + absl::Hours(24 * 365 * 3);  // > 2^36 ms
  q.insert(&far, deadline);
  q.insert(&never, Instant::max());
  while (rec.ids.empty()) ASSERT_TRUE(q.auto_advance());
  ASSERT_EQ(rec.ids, std::vector<int>{0});
  EXPECT_GE(rec.times[0], deadline);
  EXPECT_LT(rec.times[0], deadline + absl::Milliseconds(1));
  // Instant::max() never comes; auto_advance terminates anyway.
  for (int i = 0; i < 4; ++i) q.auto_advance();
  EXPECT_TRUE(never.is_registered());
  EXPECT_EQ(rec.ids.size(), 1u);
  q.cancel(&never);
}

TEST(TimerQueueTest, DestroyingTheQueueUnregistersEntries) {
  TimerQueue::Entry e;
  {
    TimerQueue q;
    q.insert(&e, q.now() + absl::Seconds(1));
    EXPECT_TRUE(e.is_registered());
  }
  EXPECT_FALSE(e.is_registered());
  EXPECT_FALSE(e.has_fired());
}

TEST(TimerQueueTest, CurrentQueueGuardNestsAndRestores) {
  EXPECT_EQ(current_timer_queue(), nullptr);
  TimerQueue a, b;
  {
    CurrentTimerQueueGuard ga(&a);
    EXPECT_EQ(current_timer_queue(), &a);
    {
      CurrentTimerQueueGuard gb(&b);
      EXPECT_EQ(current_timer_queue(), &b);
      CurrentTimerQueueGuard gn(nullptr);
      EXPECT_EQ(current_timer_queue(), nullptr);
    }
    EXPECT_EQ(current_timer_queue(), &a);
  }
  EXPECT_EQ(current_timer_queue(), nullptr);
}

TEST(TimerQueueTest, FreeClockFunctionsActOnTheCurrentQueue) {
  TimerQueue q;
  CurrentTimerQueueGuard g(&q);
  pause();
  EXPECT_TRUE(q.is_paused());
  const Instant p = q.now();
  EXPECT_EQ(now(), p);
  advance(absl::Seconds(3));
  EXPECT_EQ(q.now(), p + absl::Seconds(3));
  EXPECT_EQ(now(), p + absl::Seconds(3));
  resume();
  EXPECT_FALSE(q.is_paused());
  EXPECT_GE(now(), p + absl::Seconds(3));
}

TEST(TimerQueueTest, NowWithoutAQueueIsTheRealClock) {
  ASSERT_EQ(current_timer_queue(), nullptr);
  const Instant a = Instant::now();
  const Instant n = now();
  EXPECT_GE(n, a);
  EXPECT_LE(n, Instant::now());
}

TEST(TimerQueueDeathTest, ClockFunctionsWithoutAQueueFailLoudly) {
  EXPECT_DEATH(pause(), "timer::pause\\(\\) needs a TimerQueue on this thread");
  EXPECT_DEATH(advance(absl::Seconds(1)), "timer::advance\\(\\) needs a TimerQueue");
  EXPECT_DEATH(resume(), "timer::resume\\(\\) needs a TimerQueue");
}

TEST(TimerQueueDeathTest, AdvanceNeedsAPausedClock) {
  TimerQueue q;
  EXPECT_DEATH(q.advance(absl::Seconds(1)), "needs a paused clock");
  q.pause();
  EXPECT_DEATH(q.advance(-absl::Seconds(1)), "negative duration");
}

}  // namespace
}  // namespace pollux::timer
