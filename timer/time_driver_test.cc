#include "timer/time_driver.h"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <thread>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "future/map.h"
#include "future/select.h"
#include "future/testing/counting_waker.h"
#include "future/testing/manual_future.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timer_queue.h"

namespace pollux::timer {
namespace {

using ::pollux::testing::CountingWaker;
using ::pollux::testing::make_manual_future;

absl::Duration ThreadCpuTime() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

template <class F>
auto PollOnce(F& f, const Waker& w) {
  Budget budget;
  Context cx(w, budget);
  return f.poll(cx);
}

TEST(TimeDriverTest, EnterMakesItsQueueCurrent) {
  TimeDriver drv;
  EXPECT_EQ(current_timer_queue(), nullptr);
  {
    auto entered = drv.enter();
    EXPECT_EQ(current_timer_queue(), &drv.queue());
  }
  EXPECT_EQ(current_timer_queue(), nullptr);
}

TEST(TimeDriverTest, ParkSleepsUntilTheNextTimerInsteadOfSpinning) {
  TimeDriver drv;
  auto entered = drv.enter();
  CountingWaker cw;
  Sleep s = sleep(absl::Milliseconds(100));
  ASSERT_TRUE(PollOnce(s, cw.waker()).is_pending());
  const Instant start = Instant::now();
  const absl::Duration cpu_start = ThreadCpuTime();
  while (cw.wakes() == 0) drv.park(std::nullopt);
  const absl::Duration took = Instant::now() - start;
  const absl::Duration cpu = ThreadCpuTime() - cpu_start;
  EXPECT_GE(Instant::now(), s.deadline());
  EXPECT_GE(took, absl::Milliseconds(90));  // the sleep was created just before `start`
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_LT(cpu, took / 2) << "the driver parked rather than polling the clock";
  EXPECT_GE(drv.blocking_parks(), 1u);
  EXPECT_TRUE(PollOnce(s, cw.waker()).is_ready());
}

TEST(TimeDriverTest, RealClockSleepCompletesWhileNothingElseHappens) {
  TimeDriver drv;
  LocalExecutor ex(drv);
  auto entered = drv.enter();
  const Instant start = Instant::now();
  ex.block_on(sleep(absl::Milliseconds(30)));
  const absl::Duration took = Instant::now() - start;
  EXPECT_GE(took, absl::Milliseconds(30));
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_GE(drv.blocking_parks(), 1u);
  EXPECT_EQ(drv.queue().active_timers(), 0u);
}

TEST(TimeDriverTest, UnparkFromAnotherThreadEndsAParkEarly) {
  TimeDriver drv;
  auto entered = drv.enter();
  Sleep s = sleep(absl::Seconds(30));
  ASSERT_TRUE(PollOnce(s, noop_waker()).is_pending());
  std::shared_ptr<Unparker> unparker = drv.unparker();
  const Instant start = Instant::now();
  std::thread t([unparker] {
    absl::SleepFor(absl::Milliseconds(20));
    unparker->unpark();
  });
  drv.park(std::nullopt);
  const absl::Duration took = Instant::now() - start;
  t.join();
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_FALSE(s.is_elapsed());
}

TEST(TimeDriverTest, WakeFromAnotherThreadBeatsALongSleep) {
  TimeDriver drv;
  LocalExecutor ex(drv);
  auto entered = drv.enter();
  auto [fut, handle] = make_manual_future<int>();
  const Instant start = Instant::now();
  std::thread t([h = std::move(handle)]() mutable {
    absl::SleepFor(absl::Milliseconds(20));
    h.complete(5);
  });
  auto r = ex.block_on(select(sleep(absl::Seconds(30)), std::move(fut)));
  t.join();
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(std::get<1>(r.value), 5);
  EXPECT_LT(Instant::now() - start, absl::Seconds(10));
  EXPECT_EQ(drv.queue().active_timers(), 0u) << "the losing sleep was unregistered";
}

TEST(TimeDriverTest, PausedClockAutoAdvancesWhenIdle) {
  TimeDriver drv;
  LocalExecutor ex(drv);
  auto entered = drv.enter();
  pause();
  const Instant start = drv.queue().now();
  const Instant real_start = Instant::now();
  ex.block_on(sleep(absl::Hours(5)));
  EXPECT_GE(drv.queue().now(), start + absl::Hours(5));
  EXPECT_LT(drv.queue().now(), start + absl::Hours(5) + absl::Milliseconds(1));
  EXPECT_LT(Instant::now() - real_start, absl::Seconds(2));
  EXPECT_EQ(drv.blocking_parks(), 0u);
}

TEST(TimeDriverTest, PausedClockDoesNotJumpPastAPendingRemoteWake) {
  TimeDriver drv;
  auto entered = drv.enter();
  drv.queue().pause();
  const Instant start = drv.queue().now();
  CountingWaker cw;
  Sleep s = sleep(absl::Hours(1));
  ASSERT_TRUE(PollOnce(s, cw.waker()).is_pending());
  // Another thread woke a task (inject queue + unpark) just before the
  // executor went idle: that task must run before time jumps an hour.
  std::thread([u = drv.unparker()] { u->unpark(); }).join();
  drv.park(std::nullopt);
  EXPECT_EQ(drv.queue().now(), start);
  EXPECT_EQ(cw.wakes(), 0);
  // Truly idle now: the clock jumps to the timer.
  drv.park(std::nullopt);
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_GE(drv.queue().now(), start + absl::Hours(1));
  EXPECT_EQ(drv.blocking_parks(), 0u);
}

TEST(TimeDriverTest, PollNonblockingFiresDueTimersWithoutBlocking) {
  TimeDriver drv;
  auto entered = drv.enter();
  CountingWaker cw;
  Sleep s = sleep(absl::Milliseconds(2));
  ASSERT_TRUE(PollOnce(s, cw.waker()).is_pending());
  drv.poll_now();
  EXPECT_EQ(cw.wakes(), 0);
  absl::SleepFor(absl::Milliseconds(4));
  drv.poll_now();
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_EQ(drv.blocking_parks(), 0u);
}

TEST(TimeDriverTest, ParkWithNoTimersBlocksUntilUnpark) {
  TimeDriver drv;
  std::shared_ptr<Unparker> unparker = drv.unparker();
  std::atomic<bool> unparked{false};
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(20));
    unparked.store(true, std::memory_order_relaxed);  // joined before read again
    unparker->unpark();
  });
  const Instant start = Instant::now();
  drv.park(std::nullopt);
  const absl::Duration took = Instant::now() - start;
  t.join();
  EXPECT_TRUE(unparked.load(std::memory_order_relaxed));
  EXPECT_GE(took, absl::Milliseconds(10)) << "park() with no timer blocked until the unpark";
}

TEST(TimeDriverTest, UnparkerOutlivesTheDriver) {
  std::shared_ptr<Unparker> unparker;
  {
    TimeDriver drv;
    unparker = drv.unparker();
  }
  unparker->unpark();  // harmless
}

}  // namespace
}  // namespace pollux::timer
