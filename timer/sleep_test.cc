#include "timer/sleep.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/yield_now.h"
#include "future/map.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "timer/instant.h"
#include "timer/time_driver.h"
#include "timer/timer_queue.h"

namespace pollux {
namespace {

using ::pollux::testing::Counted;
using ::pollux::testing::CountingWaker;

// Polls `f` once with `w` and a fresh budget.
template <class F>
auto PollOnce(F& f, const Waker& w) {
  Budget budget;
  Context cx(w, budget);
  return f.poll(cx);
}

// A TimerQueue made current for the test's scope, with a paused clock.
class PausedQueue : public ::testing::Test {
 protected:
  PausedQueue() { q.pause(); }
  timer::TimerQueue q;
  timer::CurrentTimerQueueGuard guard{&q};
};

// A TimeDriver, an executor on it, and the queue entered (the documented setup).
struct Runtime {
  timer::TimeDriver drv;
  LocalExecutor ex{drv};
  timer::CurrentTimerQueueGuard entered{&drv.queue()};
  timer::TimerQueue& q() { return drv.queue(); }
};

// ---------------------------------------------------------------- leaf behaviour

TEST_F(PausedQueue, ZeroAndPastDeadlinesCompleteOnFirstPollWithoutRegistering) {
  CountingWaker cw;
  Waker w = cw.waker();
  Sleep zero = sleep(absl::ZeroDuration());
  EXPECT_TRUE(PollOnce(zero, w).is_ready());
  Sleep negative = sleep(-absl::Seconds(1));
  EXPECT_TRUE(PollOnce(negative, w).is_ready());
  Sleep past = sleep_until(q.now() - absl::Milliseconds(3));
  EXPECT_TRUE(PollOnce(past, w).is_ready());
  Sleep epoch = sleep_until(Instant());
  EXPECT_TRUE(PollOnce(epoch, w).is_ready());
  EXPECT_TRUE(epoch.is_elapsed());
  EXPECT_EQ(q.active_timers(), 0u);
  EXPECT_EQ(cw.clones(), 1) << "no waker clone was kept";
}

TEST(SleepRealClockTest, ZeroCompletesOnFirstPollOnARunningClock) {
  timer::TimerQueue q;
  timer::CurrentTimerQueueGuard g(&q);
  absl::SleepFor(absl::Milliseconds(2));  // the cached now() is now stale
  Sleep zero = sleep(absl::ZeroDuration());
  EXPECT_TRUE(PollOnce(zero, noop_waker()).is_ready());
  EXPECT_EQ(q.active_timers(), 0u);
}

// A deadline built from timer::now() is known to have passed without a
// second clock read: the queue remembers its latest reading.
TEST(SleepRealClockTest, ADeadlineFromTimerNowCompletesOnFirstPollOnAStaleTick) {
  timer::TimerQueue q;
  timer::CurrentTimerQueueGuard g(&q);
  absl::SleepFor(absl::Milliseconds(2));  // the cached now() is now stale
  const Instant t = timer::now();
  EXPECT_GE(q.latest_reading(), t);
  Sleep past = sleep_until(t);
  EXPECT_TRUE(PollOnce(past, noop_waker()).is_ready());
  EXPECT_EQ(q.active_timers(), 0u);
}

// A deadline a tick or more after the latest reading registers without
// reading the clock (the per-message timeout of a server: issue 17).
TEST(SleepRealClockTest, AFarDeadlineRegistersWithoutAClockRead) {
  timer::TimerQueue q;
  timer::CurrentTimerQueueGuard g(&q);
  const Instant seen = q.latest_reading();
  Sleep far = sleep_until(timer::tick_now() + absl::Seconds(5));
  EXPECT_TRUE(PollOnce(far, noop_waker()).is_pending());
  EXPECT_EQ(q.active_timers(), 1u);
  EXPECT_EQ(q.latest_reading(), seen) << "the first poll read the clock";
  // Within a tick of the latest reading, the clock is read to decide.
  Sleep near = sleep_until(seen + absl::Microseconds(100));
  absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(PollOnce(near, noop_waker()).is_ready());
  EXPECT_GT(q.latest_reading(), seen);
  EXPECT_EQ(q.active_timers(), 1u);
}

TEST_F(PausedQueue, PendingUntilItsTickThenReady) {
  CountingWaker cw;
  Waker w = cw.waker();
  const Instant start = q.now();
  Sleep s = sleep(absl::Milliseconds(10));
  EXPECT_EQ(s.deadline(), start + absl::Milliseconds(10));
  EXPECT_TRUE(PollOnce(s, w).is_pending());
  EXPECT_EQ(q.active_timers(), 1u);
  EXPECT_EQ(cw.live(), 2) << "one waker clone kept";
  EXPECT_FALSE(s.is_elapsed());

  q.advance(absl::Milliseconds(10) - absl::Nanoseconds(1));
  q.process();
  EXPECT_EQ(cw.wakes(), 0);
  EXPECT_TRUE(PollOnce(s, w).is_pending()) << "never early";

  q.advance(absl::Milliseconds(1));  // the deadline's tick has certainly begun
  EXPECT_EQ(q.process(), 1u);
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_TRUE(s.is_elapsed());
  EXPECT_TRUE(PollOnce(s, w).is_ready());
  EXPECT_EQ(q.active_timers(), 0u);
  EXPECT_EQ(cw.live(), 1) << "the clone was consumed by the wake";
}

TEST_F(PausedQueue, KeepsOneWakerCloneAndReplacesItWhenTheTaskChanges) {
  CountingWaker a, b;
  Waker wa = a.waker();
  Waker wb = b.waker();
  Sleep s = sleep(absl::Seconds(1));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(PollOnce(s, wa).is_pending());
  EXPECT_EQ(a.clones(), 2) << "will_wake skipped re-cloning";
  EXPECT_TRUE(PollOnce(s, wb).is_pending());
  EXPECT_EQ(a.live(), 1);
  EXPECT_EQ(b.live(), 2);
  q.advance(absl::Seconds(2));
  q.process();
  EXPECT_EQ(a.wakes(), 0);
  EXPECT_EQ(b.wakes(), 1) << "the latest waker is woken";
}

TEST_F(PausedQueue, DroppingAPendingSleepUnregistersItAndItsWaker) {
  CountingWaker cw;
  Waker w = cw.waker();
  {
    Sleep s = sleep(absl::Milliseconds(5));
    Sleep t = sleep(absl::Milliseconds(5));
    EXPECT_TRUE(PollOnce(s, w).is_pending());
    EXPECT_TRUE(PollOnce(t, w).is_pending());
    EXPECT_EQ(q.active_timers(), 2u);
  }
  EXPECT_EQ(q.active_timers(), 0u);
  EXPECT_EQ(cw.live(), 1);
  q.advance(absl::Seconds(1));
  EXPECT_EQ(q.process(), 0u);
  EXPECT_EQ(cw.wakes(), 0);
}

TEST_F(PausedQueue, ExhaustedBudgetYieldsPendingAndWakes) {
  CountingWaker cw;
  Waker w = cw.waker();
  Sleep s = sleep(absl::ZeroDuration());  // would be ready
  Budget spent(0);
  Context cx(w, spent);
  EXPECT_TRUE(s.poll(cx).is_pending());
  EXPECT_EQ(cw.wakes_by_ref(), 1);
  EXPECT_EQ(q.active_timers(), 0u);
  EXPECT_EQ(cw.live(), 1) << "no clone kept by a budget yield";

  Budget some(3);
  Context cx2(w, some);
  EXPECT_TRUE(s.poll(cx2).is_ready());
  EXPECT_EQ(some.remaining(), 2u) << "a ready poll uses one unit";

  Sleep later = sleep(absl::Seconds(1));
  Context cx3(w, some);
  EXPECT_TRUE(later.poll(cx3).is_pending());
  EXPECT_EQ(some.remaining(), 2u) << "a real Pending refunds its unit";
}

TEST_F(PausedQueue, ResetMovesARegisteredTimerAndKeepsItsWaker) {
  CountingWaker cw;
  Waker w = cw.waker();
  const Instant start = q.now();
  Sleep s = sleep(absl::Milliseconds(10));
  EXPECT_TRUE(PollOnce(s, w).is_pending());
  s.reset(start + absl::Milliseconds(50));
  EXPECT_EQ(s.deadline(), start + absl::Milliseconds(50));
  EXPECT_EQ(q.active_timers(), 1u);
  q.advance(absl::Milliseconds(20));
  EXPECT_EQ(q.process(), 0u);
  q.advance(absl::Milliseconds(31));
  EXPECT_EQ(q.process(), 1u);
  EXPECT_EQ(cw.wakes(), 1) << "woken at the new deadline without being re-polled";
  EXPECT_TRUE(PollOnce(s, w).is_ready());

  // Reset after Ready: pollable again.
  s.reset(q.now() + absl::Milliseconds(5));
  EXPECT_FALSE(s.is_elapsed());
  EXPECT_TRUE(PollOnce(s, w).is_pending());
  EXPECT_EQ(q.active_timers(), 1u);
  // Reset to the past while registered: fires at the next tick.
  s.reset(q.now() - absl::Milliseconds(1));
  EXPECT_EQ(q.process(), 1u);
  EXPECT_TRUE(PollOnce(s, w).is_ready());
  EXPECT_EQ(q.active_timers(), 0u);
}

// Pushed back again and again (a server's idle timer), then pulled in: it
// fires at the last deadline given, once, and an earlier one moves it at once.
TEST_F(PausedQueue, ResetLaterThenEarlierFiresAtTheLastDeadline) {
  CountingWaker cw;
  Waker w = cw.waker();
  const Instant start = q.now();
  Sleep s = sleep(absl::Milliseconds(10));
  EXPECT_TRUE(PollOnce(s, w).is_pending());
  for (int ms = 20; ms <= 100; ms += 10) s.reset(start + absl::Milliseconds(ms));
  EXPECT_EQ(s.deadline(), start + absl::Milliseconds(100));
  q.advance(absl::Milliseconds(99));
  EXPECT_EQ(q.process(), 0u) << "fired before the last deadline";
  EXPECT_EQ(cw.wakes(), 0);
  EXPECT_FALSE(s.is_elapsed());
  s.reset(q.now() + absl::Milliseconds(50));
  s.reset(q.now() + absl::Milliseconds(3));  // earlier than the one just given
  q.advance(absl::Milliseconds(4));           // 3 ms, rounded up to the next tick
  EXPECT_EQ(q.process(), 1u);
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_TRUE(PollOnce(s, w).is_ready());
  EXPECT_EQ(q.active_timers(), 0u);
}

TEST_F(PausedQueue, NeverDeadlineRegistersNothingUntilReset) {
  CountingWaker cw;
  Waker w = cw.waker();
  Sleep s = sleep(absl::InfiniteDuration());
  EXPECT_EQ(s.deadline(), Instant::max());
  EXPECT_TRUE(PollOnce(s, w).is_pending());
  EXPECT_EQ(q.active_timers(), 0u);
  EXPECT_FALSE(q.auto_advance()) << "nothing to jump to";
  s.reset(q.now() + absl::Milliseconds(5));
  EXPECT_EQ(q.active_timers(), 1u);
  EXPECT_TRUE(q.auto_advance());
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_TRUE(PollOnce(s, w).is_ready());
}

TEST_F(PausedQueue, MovingBeforeTheFirstPollIsFine) {
  Sleep a = sleep(absl::Milliseconds(3));
  Sleep b(std::move(a));
  auto boxed = std::make_unique<Sleep>(std::move(b));
  EXPECT_TRUE(PollOnce(*boxed, noop_waker()).is_pending());
  EXPECT_EQ(q.active_timers(), 1u);
  boxed.reset();
  EXPECT_EQ(q.active_timers(), 0u);
}

TEST(SleepDeathTest, PollingWithoutATimerQueueFailsWithAClearMessage) {
  ASSERT_EQ(timer::current_timer_queue(), nullptr);
  EXPECT_DEATH(
      {
        Sleep s = sleep(absl::Milliseconds(1));
        (void)PollOnce(s, noop_waker());
      },
      "sleep\\(\\) needs a runtime with time enabled \\(Runtime::Builder\\(\\)\\.enable_time\\(\\)\\) "
      "or a TimeDriver");
  // Even an already-due sleep: the same program must not work only by luck.
  EXPECT_DEATH(
      {
        Sleep s = sleep(absl::ZeroDuration());
        (void)PollOnce(s, noop_waker());
      },
      "sleep\\(\\) needs a runtime with time enabled");
}

TEST(SleepDeathTest, MovingARegisteredSleepIsCaught) {
  EXPECT_DEATH(
      {
        timer::TimerQueue q;
        timer::CurrentTimerQueueGuard g(&q);
        Sleep s = sleep(absl::Seconds(1));
        (void)PollOnce(s, noop_waker());
        Sleep moved(std::move(s));
      },
      "a Sleep was moved after a Pending poll registered its timer");
}

TEST(SleepDeathTest, DroppingARegisteredSleepOnAnotherThreadIsCaught) {
  EXPECT_DEATH(
      {
        timer::TimerQueue q;
        timer::CurrentTimerQueueGuard g(&q);
        auto* s = new Sleep(sleep(absl::Seconds(1)));
        (void)PollOnce(*s, noop_waker());
        std::thread([s] { delete s; }).join();
      },
      "dropped on a thread other than its TimerQueue's");
}

// ---------------------------------------------------------------- under an executor

// Spawns a task that sleeps until `deadline`, then logs its id and now().
struct WakeLog {
  std::vector<int> ids;
  std::vector<Instant> at;
};

struct LogWake {
  int id;
  WakeLog* log;
  timer::TimerQueue* q;
  void operator()() const {
    log->ids.push_back(id);
    log->at.push_back(q->now());
  }
};

auto SleepAndLog(Instant deadline, int id, WakeLog& log, timer::TimerQueue& q) {
  return map(sleep_until(deadline), LogWake{id, &log, &q});
}

TEST(SleepExecutorTest, PausedSleepsFireInDeadlineOrderNeverEarlyAtMostATickLate) {
  Runtime rt;
  rt.q().pause();
  const Instant start = rt.q().now();
  constexpr int kN = 300;
  std::mt19937_64 rng(7);
  std::vector<Instant> deadlines(kN);
  for (int i = 0; i < kN; ++i) {
    // 1 ms .. 10 s, some sharing a millisecond.
    const int64_t us = i % 7 == 0 ? 1000 * (1 + static_cast<int64_t>(rng() % 30))
                                  : 1000 + static_cast<int64_t>(rng() % 9'999'000);
    deadlines[i] = start + absl::Microseconds(us);
  }
  WakeLog log;
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < kN; ++i) handles.push_back(rt.ex.spawn_local(SleepAndLog(deadlines[i], i, log, rt.q())));
  const Instant real_start = Instant::now();
  rt.ex.block_on(sleep(absl::Seconds(11)));
  EXPECT_LT(Instant::now() - real_start, absl::Seconds(5)) << "the paused clock auto-advanced";

  ASSERT_EQ(log.ids.size(), static_cast<size_t>(kN));
  for (int k = 0; k < kN; ++k) {
    const int id = log.ids[k];
    EXPECT_GE(log.at[k], deadlines[id]) << "timer " << id << " fired early";
    EXPECT_LT(log.at[k], deadlines[id] + absl::Milliseconds(1)) << "timer " << id << " late";
    if (k > 0) {
      const int prev = log.ids[k - 1];
      const uint64_t tp = rt.q().deadline_tick(deadlines[prev]);
      const uint64_t tk = rt.q().deadline_tick(deadlines[id]);
      ASSERT_LE(tp, tk) << "out of deadline order";
      if (tp == tk) {
        EXPECT_LT(prev, id) << "same tick out of insertion order";
      }
    }
  }
  EXPECT_EQ(rt.q().active_timers(), 0u);
  EXPECT_EQ(rt.ex.pending_tasks(), 0u);
}

TEST(SleepExecutorTest, SameTickSleepsCompleteInInsertionOrder) {
  Runtime rt;
  rt.q().pause();
  const Instant b = rt.q().tick_instant(rt.q().deadline_tick(rt.q().now() + absl::Milliseconds(5)));
  WakeLog log;
  constexpr int kN = 16;
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < kN; ++i) {
    // Later-spawned tasks have EARLIER deadlines within the same tick.
    handles.push_back(rt.ex.spawn_local(SleepAndLog(b - absl::Microseconds(60) * i, i, log, rt.q())));
  }
  rt.ex.block_on(sleep_until(b + absl::Milliseconds(2)));
  ASSERT_EQ(log.ids.size(), static_cast<size_t>(kN));
  for (int i = 0; i < kN; ++i) {
    EXPECT_EQ(log.ids[i], i);
    EXPECT_EQ(log.at[i], b);
  }
}

// Keeps yielding (executor/yield_now.h) until `stop`, counting its polls;
// optionally advances the paused clock on every iteration.
struct Busy {
  using Output = void;
  bool* stop;
  int64_t* polls;
  absl::Duration advance_by = absl::ZeroDuration();
  YieldNow y{};

  Poll<void> poll(Context& cx) {
    for (;;) {
      if (*stop || *polls >= kLimit) return Ready{};
      if (y.poll(cx).is_pending()) return Pending{};
      y = YieldNow{};
      ++*polls;
      if (advance_by > absl::ZeroDuration()) timer::advance(advance_by);
    }
  }
  static constexpr int64_t kLimit = 3'000'000;
};

TEST(SleepExecutorTest, SleepCompletesWhileOtherTasksKeepTheExecutorBusy) {
  Runtime rt;
  bool stop = false;
  int64_t polls = 0;
  std::vector<JoinHandle<void>> handles;
  for (int i = 0; i < 100; ++i) handles.push_back(rt.ex.spawn_local(Busy{&stop, &polls}));
  const Instant start = Instant::now();
  rt.ex.block_on(map(sleep(absl::Milliseconds(5)), [&] { stop = true; }));
  EXPECT_GE(Instant::now() - start, absl::Milliseconds(5));
  EXPECT_LT(polls, Busy::kLimit) << "the sleep only completed once the busy tasks gave up";
  EXPECT_GT(polls, 0);
  rt.ex.run_until_idle();
  EXPECT_EQ(rt.ex.pending_tasks(), 0u);
}

TEST(SleepExecutorTest, PausedSleepCompletesWhileBusyTasksAdvanceTheClock) {
  Runtime rt;
  rt.q().pause();
  bool stop = false;
  int64_t polls = 0;
  std::vector<JoinHandle<void>> handles;
  handles.push_back(rt.ex.spawn_local(Busy{&stop, &polls, absl::Microseconds(100)}));
  for (int i = 0; i < 99; ++i) handles.push_back(rt.ex.spawn_local(Busy{&stop, &polls}));
  Sleep s = sleep(absl::Milliseconds(50));
  const Instant deadline = s.deadline();
  Instant woke;
  rt.ex.block_on(map(std::move(s), [&] {
    stop = true;
    woke = rt.q().now();
  }));
  EXPECT_GE(woke, deadline);
  EXPECT_LT(woke, deadline + absl::Milliseconds(2));
  EXPECT_LT(polls, Busy::kLimit);
  EXPECT_EQ(rt.drv.blocking_parks(), 0u) << "the executor never went idle";
}

// The pin count of the task polling this future (RuntimeContext::task_pins).
struct ReadPins {
  using Output = uint32_t;
  Poll<uint32_t> poll(Context&) {
    return Ready(RuntimeContext::current().task_pins->load(std::memory_order_relaxed));
  }
};

// Polls `*s` once from inside the task, then reports the task's pins.
struct PollSleepOnceThenPins {
  using Output = uint32_t;
  Sleep* s;
  Poll<uint32_t> poll(Context& cx) {
    (void)s->poll(cx);
    return ReadPins{}.poll(cx);
  }
};

TEST(SleepExecutorTest, ARegisteredSleepPinsItsTaskUntilItCompletesOrIsDropped) {
  Runtime rt;
  rt.q().pause();
  std::vector<uint32_t> seen;
  JoinHandle<void> h = rt.ex.spawn_local([&]() -> Task<void> {
    seen.push_back(co_await ReadPins{});
    {
      Sleep dropped = sleep(absl::Seconds(5));
      seen.push_back(co_await PollSleepOnceThenPins{&dropped});
    }
    seen.push_back(co_await ReadPins{});
    Sleep s = sleep(absl::Milliseconds(3));
    seen.push_back(co_await PollSleepOnceThenPins{&s});
    co_await s;  // fires: the pin goes with the entry
    seen.push_back(co_await ReadPins{});
    s.reset(timer::now() + absl::Milliseconds(2));
    co_await s;
    seen.push_back(co_await ReadPins{});
  });
  EXPECT_TRUE(rt.ex.block_on(std::move(h)).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(0u, 1u, 0u, 1u, 0u, 0u));
}

TEST(SleepDeathTest, ASleepPolledByATaskThatFinishesBeforeItIsCaught) {
  // The Sleep lives outside the task that polled it: when the task ends,
  // the Sleep still holds a pin into the task's cell. That is an abort with
  // a message, never a later write into freed memory.
  EXPECT_DEATH(
      {
        Runtime rt;
        Sleep outside = sleep(absl::Seconds(5));
        (void)rt.ex.block_on(rt.ex.spawn_local([&]() -> Task<void> {
          (void)co_await PollSleepOnceThenPins{&outside};
        }));
      },
      "a task finished while an I/O operation, AcceptStream or Sleep it polled still holds");
}

TEST(SleepExecutorTest, RealClockSleepIsNeverEarly) {
  Runtime rt;
  for (absl::Duration d : {absl::Milliseconds(1), absl::Milliseconds(20), absl::Milliseconds(3)}) {
    const Instant start = Instant::now();
    rt.ex.block_on(sleep(d));
    const absl::Duration took = Instant::now() - start;
    EXPECT_GE(took, d);
    EXPECT_LT(took, absl::Seconds(2));
  }
}

TEST(SleepExecutorTest, DroppingTasksWithPendingSleepsLeaksNothing) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  {
    Runtime rt;
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < 50; ++i) {
      handles.push_back(rt.ex.spawn_local(
          map(sleep(absl::Seconds(100 + i)), [c = Counted(i)] { (void)c; })));
    }
    rt.ex.run_until_idle();
    EXPECT_EQ(rt.q().active_timers(), 50u);
    EXPECT_EQ(Counted::live(), 50);
    handles[0].abort();
    rt.ex.run_until_idle();
    EXPECT_EQ(rt.q().active_timers(), 49u) << "an aborted task's Sleep is unregistered";
    EXPECT_EQ(Counted::live(), 49);
  }  // the executor drops the rest before the driver goes
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(live_task_cells(), cells_before);
}

}  // namespace
}  // namespace pollux
