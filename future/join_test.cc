// Tests for join() (join.h).
#include "future/join.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "future/context.h"
#include "future/future.h"
#include "future/map.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "future/testing/manual_future.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::CountingWaker;
using testing::make_manual_future;
using testing::Harness;
using testing::kForever;
using testing::Probe;
using testing::ProbeFuture;
using testing::TestError;
using testing::ThrowingFuture;

static_assert(Future<Join<ReadyFuture<int>>>);

TEST(JoinTest, OutputsInArgumentOrderWithUnitForVoid) {
  Harness h;
  auto j = join(ready(1), ready(std::string("two")), ready(), ready(3.5));
  static_assert(
      std::is_same_v<output_t<decltype(j)>, std::tuple<int, std::string, Unit, double>>);
  Poll<std::tuple<int, std::string, Unit, double>> p = j.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  auto [a, b, c, d] = std::move(p).value();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, "two");
  EXPECT_EQ(c, Unit{});
  EXPECT_EQ(d, 3.5);
}

TEST(JoinTest, SingleAndAllVoidChildren) {
  Harness h;
  auto one = join(ready(7));
  static_assert(std::is_same_v<output_t<decltype(one)>, std::tuple<int>>);
  Poll<std::tuple<int>> p = one.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::get<0>(p.value()), 7);

  auto voids = join(ready(), ready());
  static_assert(std::is_same_v<output_t<decltype(voids)>, std::tuple<Unit, Unit>>);
  EXPECT_TRUE(voids.poll(h.cx).is_ready());
}

TEST(JoinTest, MoveOnlyOutputs) {
  Harness h;
  auto j = join(ready(std::make_unique<int>(1)), ready(std::make_unique<int>(2)));
  auto p = j.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  auto [a, b] = std::move(p).value();
  EXPECT_EQ(*a, 1);
  EXPECT_EQ(*b, 2);
}

TEST(JoinTest, ArgumentOrderIndependentOfCompletionOrder) {
  Harness h;
  auto [fa, ha] = make_manual_future<int>();
  auto [fb, hb] = make_manual_future<std::string>();
  auto [fc, hc] = make_manual_future<void>();
  auto j = join(std::move(fa), std::move(fb), std::move(fc));
  EXPECT_TRUE(j.poll(h.cx).is_pending());
  hc.complete();
  EXPECT_TRUE(j.poll(h.cx).is_pending());
  ha.complete(10);
  EXPECT_TRUE(j.poll(h.cx).is_pending());
  hb.complete("b");
  auto p = j.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::get<0>(p.value()), 10);
  EXPECT_EQ(std::get<1>(p.value()), "b");
  EXPECT_EQ(std::get<2>(p.value()), Unit{});
  EXPECT_EQ(h.cw.wakes_by_value(), 3);  // each completion woke the join's waker
}

TEST(JoinTest, PollsEveryUnfinishedChildOnEachPoll) {
  Harness h;
  Probe a, b, c;
  auto j = join(ProbeFuture<>(&a, 2, 1), ProbeFuture<>(&b, 1, 2), ProbeFuture<>(&c, 0, 3));
  EXPECT_TRUE(j.poll(h.cx).is_pending());
  // A pending child must not stop the others from being polled.
  EXPECT_EQ(a.polls, 1);
  EXPECT_EQ(b.polls, 1);
  EXPECT_EQ(c.polls, 1);
  EXPECT_TRUE(j.poll(h.cx).is_pending());
  EXPECT_EQ(a.polls, 2);
  EXPECT_EQ(b.polls, 2);
  EXPECT_EQ(c.polls, 1);
  auto p = j.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), std::make_tuple(1, 2, 3));
  EXPECT_EQ(a.polls, 3);
  EXPECT_EQ(b.polls, 2);
  EXPECT_EQ(c.polls, 1);
}

TEST(JoinTest, FinishedChildDestroyedAtOnceAndNeverPolledAgain) {
  Counted::reset();
  Harness h;
  Probe early;
  auto [fut, handle] = make_manual_future<int>();
  {
    auto j = join(ProbeFuture<Counted>(&early, 0, Counted(5)), std::move(fut));
    const int64_t live_before = Counted::live();  // early's payload + its value
    EXPECT_TRUE(j.poll(h.cx).is_pending());
    EXPECT_EQ(early.polls, 1);
    EXPECT_EQ(early.destroyed, 1);  // destroyed while the other child is pending
    EXPECT_EQ(Counted::live(), live_before - 1);  // the payload died; the output is kept

    for (int i = 0; i < 3; ++i) EXPECT_TRUE(j.poll(h.cx).is_pending());
    EXPECT_EQ(early.polls, 1);
    EXPECT_EQ(handle.polls(), 4);

    handle.complete(6);
    auto p = j.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(std::get<0>(p.value()).value, 5);
    EXPECT_EQ(std::get<1>(p.value()), 6);
    EXPECT_EQ(early.polls, 1);
    EXPECT_EQ(early.destroyed, 1);
  }
  EXPECT_EQ(early.destroyed, 1);
  EXPECT_EQ(Counted::live(), 0);
}

TEST(JoinTest, EverythingDestroyedExactlyOnceWhenCompleted) {
  Counted::reset();
  Probe probe;
  {
    Harness h;
    auto [fut, handle] = make_manual_future<int>();
    auto j = join(ready(Counted(1)), ProbeFuture<Counted>(&probe, 1, Counted(2)),
                  map(std::move(fut), [c = Counted(3)](int x) { return Counted(x + c.value); }));
    EXPECT_TRUE(j.poll(h.cx).is_pending());
    EXPECT_TRUE(j.poll(h.cx).is_pending());
    handle.complete(10);
    auto p = j.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    auto [a, b, c] = std::move(p).value();
    EXPECT_EQ(a.value, 1);
    EXPECT_EQ(b.value, 2);
    EXPECT_EQ(c.value, 13);
  }
  EXPECT_EQ(probe.destroyed, 1);
  EXPECT_EQ(Counted::live(), 0);
}

TEST(JoinTest, DroppingMidwayDestroysChildrenAndKeptOutputsExactlyOnce) {
  Counted::reset();
  Probe finished, pending;
  auto [fut, handle] = make_manual_future<Counted>();
  {
    Harness h;
    auto j = join(ProbeFuture<Counted>(&finished, 0, Counted(1)),
                  ProbeFuture<Counted>(&pending, kForever, Counted(2)), std::move(fut));
    EXPECT_TRUE(j.poll(h.cx).is_pending());
    EXPECT_EQ(finished.destroyed, 1);
    EXPECT_EQ(pending.destroyed, 0);
    EXPECT_FALSE(handle.dropped());
    EXPECT_GT(Counted::live(), 0);  // the kept output and the pending child's state
  }
  EXPECT_EQ(finished.destroyed, 1);
  EXPECT_EQ(pending.destroyed, 1);
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(Counted::live(), 0);
}

TEST(JoinTest, DroppingUnpolledDestroysChildrenExactlyOnce) {
  Counted::reset();
  Probe a, b;
  {
    auto j = join(ProbeFuture<Counted>(&a, 0, Counted(1)), ProbeFuture<>(&b, 0, 2));
  }
  EXPECT_EQ(a.polls, 0);
  EXPECT_EQ(a.destroyed, 1);
  EXPECT_EQ(b.destroyed, 1);
  EXPECT_EQ(Counted::live(), 0);
}

TEST(JoinTest, ThrowingChildDestroysTheRestAndRethrows) {
  Counted::reset();
  Probe done, running;
  auto [fut, handle] = make_manual_future<Counted>();
  {
    Harness h;
    auto j = join(ProbeFuture<Counted>(&done, 0, Counted(1)), ThrowingFuture<int>(2),
                  ProbeFuture<Counted>(&running, kForever, Counted(3)), std::move(fut));
    EXPECT_TRUE(j.poll(h.cx).is_pending());
    EXPECT_EQ(done.destroyed, 1);  // finished; its output is kept
    EXPECT_GT(Counted::live(), 0);

    EXPECT_THROW((void)j.poll(h.cx), TestError);
    // Before the join itself is dropped, every child and kept output is gone.
    EXPECT_EQ(Counted::live(), 0);
    EXPECT_EQ(running.destroyed, 1);
    EXPECT_TRUE(handle.dropped());
  }
  // ... and dropping the join destroys nothing a second time.
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(done.destroyed, 1);
  EXPECT_EQ(running.destroyed, 1);
}

TEST(JoinTest, ThrowOnFirstPollDestroysEverything) {
  Counted::reset();
  {
    Harness h;
    auto j = join(ThrowingFuture<Counted>(1), ready(Counted(1)));
    EXPECT_THROW((void)j.poll(h.cx), TestError);
    EXPECT_EQ(Counted::live(), 0);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(JoinTest, ChildrenWokenFromOtherThreads) {
  for (int round = 0; round < 50; ++round) {
    Harness h;
    auto [fa, ha] = make_manual_future<int>();
    auto [fb, hb] = make_manual_future<int>();
    auto j = join(std::move(fa), std::move(fb));
    std::thread ta([handle = ha]() mutable { handle.complete(1); });
    std::thread tb([handle = hb]() mutable { handle.complete(2); });

    // A minimal executor: poll, and when Pending wait for a wake-up. A lost
    // wake-up shows up as a timeout instead of a hang.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::tuple<int, int> out;
    bool timed_out = false;
    while (!timed_out) {
      const int64_t wakes_before = h.cw.wakes();
      auto p = j.poll(h.cx);
      if (p.is_ready()) {
        out = std::move(p).value();
        break;
      }
      while (h.cw.wakes() == wakes_before && !timed_out) {
        timed_out = std::chrono::steady_clock::now() > deadline;
        std::this_thread::yield();
      }
    }
    ta.join();
    tb.join();
    ASSERT_FALSE(timed_out) << "lost wake-up in round " << round;
    EXPECT_EQ(out, std::make_tuple(1, 2));
    EXPECT_EQ(h.cw.live(), 1);  // every waker the children cloned was released
  }
}

TEST(JoinTest, ChildrenShareTheTasksWakerAndBudget) {
  CountingWaker cw;
  Waker w = cw.waker();
  Budget budget(10);
  Context cx(w, budget);
  int same_waker = 0;
  auto taker = [&](uint32_t units) {
    return poll_fn([&same_waker, &w, units](Context& c) -> Poll<uint32_t> {
      if (c.waker().will_wake(w)) ++same_waker;
      for (uint32_t i = 0; i < units; ++i) EXPECT_TRUE(c.budget().try_take());
      return Ready(units);
    });
  };
  auto j = join(taker(1), taker(2), taker(3));
  auto p = j.poll(cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(budget.remaining(), 4u);
  EXPECT_EQ(same_waker, 3);
}

TEST(JoinTest, ExhaustedBudgetMakesLeafYield) {
  CountingWaker cw;
  Waker w = cw.waker();
  Budget budget(1);
  Context cx(w, budget);
  int polls_a = 0, polls_b = 0;
  // The leaf-future pattern from context.h.
  auto leaf = [](int* polls, int value) {
    return poll_fn([polls, value](Context& c) -> Poll<int> {
      ++*polls;
      if (!c.budget().try_take()) {
        c.waker().wake_by_ref();
        return Pending{};
      }
      return Ready(value);
    });
  };
  auto j = join(leaf(&polls_a, 1), leaf(&polls_b, 2));
  EXPECT_TRUE(j.poll(cx).is_pending());  // the first took the only unit
  EXPECT_EQ(cw.wakes_by_ref(), 1);
  budget.reset(1);
  auto p = j.poll(cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), std::make_tuple(1, 2));
  EXPECT_EQ(polls_a, 1);
  EXPECT_EQ(polls_b, 2);
}

TEST(JoinTest, SpentBudgetYieldsOnceWithoutPollingAChild) {
  CountingWaker cw;
  Waker w = cw.waker();
  Budget budget(0);
  Context cx(w, budget);
  Probe a, b;
  auto j = join(ProbeFuture<int>(&a, 0, 1), ProbeFuture<int>(&b, 0, 2));
  EXPECT_TRUE(j.poll(cx).is_pending());
  EXPECT_EQ(a.polls + b.polls, 0);  // each leaf would only have refused
  EXPECT_EQ(cw.wakes_by_ref(), 1);  // one wake for the lot
  EXPECT_TRUE(budget.refused());    // counted as a forced yield
  budget.reset(1);
  auto p = j.poll(cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), std::make_tuple(1, 2));
  EXPECT_EQ(a.polls, 1);
  EXPECT_EQ(b.polls, 1);
  EXPECT_EQ(budget.remaining(), 1u);  // the join itself took no unit
}

#ifndef NDEBUG
TEST(JoinDeathTest, PollAfterReadyAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        auto j = join(ready(1), ready());
        (void)j.poll(h.cx);
        (void)j.poll(h.cx);
      },
      "join\\(\\) future polled after it returned Ready");
}

TEST(JoinDeathTest, PollAfterThrowAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        auto j = join(ThrowingFuture<int>(1), ready(1));
        try {
          (void)j.poll(h.cx);
        } catch (const TestError&) {
        }
        (void)j.poll(h.cx);
      },
      "join\\(\\) future polled after it returned Ready");
}
#endif

}  // namespace
}  // namespace pollux
