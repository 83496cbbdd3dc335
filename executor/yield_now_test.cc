// Tests for yield_now() (yield_now.h).
#include "executor/yield_now.h"

#include <atomic>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "executor/driver.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/testing/executor_fixtures.h"
#include "executor/thread_parker.h"
#include "future/map.h"
#include "future/poll_fn.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::CountingDriver;
using testing::CountingWaker;

TEST(YieldNowTest, FirstPollWakesAndIsPendingSecondIsReady) {
  CountingWaker cw;
  {
    Waker w = cw.waker();
    Budget b;
    Context cx(w, b);
    YieldNow y = yield_now();
    EXPECT_TRUE(y.poll(cx).is_pending());
    EXPECT_EQ(cw.wakes_by_ref(), 1);
    EXPECT_EQ(cw.wakes_by_value(), 0);
    EXPECT_EQ(cw.clones(), 1) << "yield_now must not clone the waker";
    EXPECT_TRUE(y.poll(cx).is_ready());
    EXPECT_EQ(cw.wakes(), 1);
    EXPECT_EQ(b.remaining(), Budget::kDefault) << "yield_now is not a budgeted leaf";
  }
  EXPECT_EQ(cw.live(), 0);
}

TEST(YieldNowTest, DroppingItLosesNothing) {
  CountingWaker cw;
  {
    Waker w = cw.waker();
    Budget b;
    Context cx(w, b);
    {
      YieldNow y = yield_now();
      EXPECT_TRUE(y.poll(cx).is_pending());
    }
  }
  EXPECT_EQ(cw.live(), 0);
}

// Two tasks that each yield three times alternate: a yield puts the task at
// the back of the run queue.
TEST(YieldNowTest, YieldingTasksInterleave) {
  LocalExecutor ex;
  std::vector<char> order;
  auto make = [&order](char name) {
    return poll_fn([&order, name, y = YieldNow(), left = 3](Context& cx) mutable -> Poll<void> {
      order.push_back(name);
      while (left > 0) {
        if (y.poll(cx).is_pending()) return Pending{};
        y = YieldNow();
        --left;
      }
      return Ready{};
    });
  };
  auto a = ex.spawn_local(make('a'));
  auto b = ex.spawn_local(make('b'));
  EXPECT_EQ(ex.run_until_idle(), 8u);
  EXPECT_EQ(order, (std::vector<char>{'a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'}));
  EXPECT_TRUE(a.is_finished());
  EXPECT_TRUE(b.is_finished());
}

TEST(YieldNowTest, ATaskThatYieldsRunsOnceMorePerYield) {
  LocalExecutor ex;
  int polls = 0;
  auto h = ex.spawn_local(map(poll_fn([&polls, y = YieldNow()](Context& cx) mutable -> Poll<void> {
                                ++polls;
                                return y.poll(cx);
                              }),
                              [] { return 7; }));
  EXPECT_EQ(ex.run_until_idle(), 2u);
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(ex.block_on(std::move(h)).value(), 7);
}

// A yield on the owner thread must neither park nor unpark the driver.
TEST(YieldNowTest, YieldingInBlockOnNeitherParksNorUnparks) {
  CountingDriver driver;
  LocalExecutor ex(driver);
  int polls = 0;
  ex.block_on(poll_fn([&polls, y = YieldNow(), left = 1000](Context& cx) mutable -> Poll<void> {
    ++polls;
    while (left > 0) {
      if (y.poll(cx).is_pending()) return Pending{};
      y = YieldNow();
      --left;
    }
    return Ready{};
  }));
  EXPECT_EQ(polls, 1001);
  EXPECT_EQ(driver.parks, 0);
  EXPECT_EQ(driver.unparks(), 0);
}

// A task that yields forever, holding a Counted: the yield is queued without
// a state transition (the task stays RUNNING in the queue), so these check
// that abort and shutdown still reach it.
auto yield_forever(int* polls) {
  return poll_fn([polls, c = testing::Counted(), y = YieldNow()](Context& cx) mutable -> Poll<int> {
    ++*polls;
    y = YieldNow();
    (void)y.poll(cx);  // always Pending on a fresh YieldNow: wakes the task
    return Pending{};
  });
}

TEST(YieldNowTest, AbortReachesATaskQueuedAfterYielding) {
  testing::Counted::reset();
  const int64_t cells = live_task_cells();
  {
    LocalExecutor ex;
    int polls = 0;
    JoinHandle<int> spinner = ex.spawn_local(yield_forever(&polls));
    // The aborter runs after the spinner's first poll, while the spinner is
    // queued again: the abort must cancel it at its next turn.
    auto aborter = ex.spawn_local(poll_fn([&](Context&) -> Poll<void> {
      spinner.abort();
      return Ready{};
    }));
    ex.run_until_idle();  // returns only once the spinner stopped yielding
    EXPECT_TRUE(spinner.is_finished());
    JoinResult<int> r = ex.block_on(std::move(spinner));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
    EXPECT_EQ(polls, 1) << "the spinner ran again after it was aborted";
    EXPECT_EQ(testing::Counted::live(), 0) << "the aborted future was not destroyed";
    (void)aborter;
  }
  EXPECT_EQ(live_task_cells(), cells);
}

TEST(YieldNowTest, ShutdownDropsATaskQueuedAfterYielding) {
  testing::Counted::reset();
  const int64_t cells = live_task_cells();
  int polls = 0;
  {
    LocalExecutor ex;
    auto spinner = ex.spawn_local(yield_forever(&polls));
    // Three root polls, each running a tick in which the spinner yields.
    ex.block_on(poll_fn([left = 3](Context& cx) mutable -> Poll<void> {
      if (--left == 0) return Ready{};
      cx.waker().wake_by_ref();
      return Pending{};
    }));
    EXPECT_GE(polls, 2);
    EXPECT_EQ(testing::Counted::live(), 1);
    (void)spinner;  // detached: the executor's shutdown must drop the task
  }
  EXPECT_EQ(testing::Counted::live(), 0) << "shutdown did not drop the yielding task";
  EXPECT_EQ(live_task_cells(), cells);
}

TEST(YieldNowTest, WakeFromAnotherThreadWhileQueuedAfterYieldingIsNotLost) {
  LocalExecutor ex;
  std::atomic<int> phase{0};
  Waker stored;
  int polls = 0;
  // Yields once, then waits for another thread's wake (which arrives while
  // the task may still be queued after its yield).
  auto h = ex.spawn_local(poll_fn([&, y = YieldNow()](Context& cx) mutable -> Poll<int> {
    ++polls;
    if (y.poll(cx).is_pending()) {
      stored = cx.waker();
      Waker w = stored;
      std::thread([&w, &phase] {
        phase.store(1);
        std::move(w).wake();
      }).join();
      return Pending{};
    }
    if (phase.load() == 1 && polls >= 2) return Ready(5);
    return Pending{};
  }));
  EXPECT_EQ(ex.block_on(std::move(h)).value(), 5);
  stored = Waker();
}

}  // namespace
}  // namespace pollux
