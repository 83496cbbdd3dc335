// Tests for yield_now() (yield_now.h).
#include "executor/yield_now.h"

#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "executor/driver.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/testing/executor_fixtures.h"
#include "executor/thread_parker.h"
#include "future/map.h"
#include "future/poll_fn.h"
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

}  // namespace
}  // namespace pollux
