// Tests for select() (select.h).
#include "future/select.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "future/context.h"
#include "future/future.h"
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

static_assert(Future<Select<ReadyFuture<int>>>);

TEST(SelectTest, SameOutputTypesDistinguishedByIndex) {
  for (size_t winner : {size_t{0}, size_t{1}}) {
    Harness h;
    auto [fa, ha] = make_manual_future<int>();
    auto [fb, hb] = make_manual_future<int>();
    auto s = select(std::move(fa), std::move(fb));
    static_assert(std::is_same_v<output_t<decltype(s)>, SelectResult<int, int>>);
    EXPECT_TRUE(s.poll(h.cx).is_pending());
    if (winner == 0) {
      ha.complete(10);
    } else {
      hb.complete(20);
    }
    auto p = s.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    const SelectResult<int, int>& r = p.value();
    EXPECT_EQ(r.index, winner);
    EXPECT_EQ(r.value.index(), winner);  // in_place_index, not "first alternative of type int"
    if (winner == 0) {
      EXPECT_EQ(std::get<0>(r.value), 10);
    } else {
      EXPECT_EQ(std::get<1>(r.value), 20);
    }
  }
}

TEST(SelectTest, DifferentOutputTypes) {
  Harness h;
  auto s = select(pending<int>(), ready(std::string("x")), pending<double>());
  static_assert(
      std::is_same_v<output_t<decltype(s)>, SelectResult<int, std::string, double>>);
  auto p = s.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 1u);
  EXPECT_EQ(std::get<1>(p.value().value), "x");
}

TEST(SelectTest, MoveOnlyOutput) {
  Harness h;
  auto s = select(pending<std::unique_ptr<int>>(), ready(std::make_unique<int>(3)));
  auto p = s.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  auto r = std::move(p).value();
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(*std::get<1>(r.value), 3);
}

TEST(SelectTest, VoidChildrenGiveUnit) {
  Harness h;
  auto s = select(pending(), ready(), ready(5));
  static_assert(std::is_same_v<output_t<decltype(s)>, SelectResult<Unit, Unit, int>>);
  auto p = s.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 1u);
  ASSERT_EQ(p.value().value.index(), 1u);
  EXPECT_EQ(std::get<1>(p.value().value), Unit{});
}

TEST(SelectTest, LeftmostReadyWinsAndLaterChildrenAreNotPolled) {
  Harness h;
  Probe a, b, c;
  auto s = select(ProbeFuture<>(&a, kForever), ProbeFuture<>(&b, 0, 2), ProbeFuture<>(&c, 0, 3));
  auto p = s.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 1u);
  EXPECT_EQ(std::get<1>(p.value().value), 2);
  EXPECT_EQ(a.polls, 1);
  EXPECT_EQ(b.polls, 1);
  // Polling c would complete it and silently lose its output.
  EXPECT_EQ(c.polls, 0);
}

TEST(SelectTest, PollsInArgumentOrderUntilOneIsReady) {
  Harness h;
  Probe a, b;
  auto s = select(ProbeFuture<>(&a, 2, 1), ProbeFuture<>(&b, 2, 2));
  EXPECT_TRUE(s.poll(h.cx).is_pending());
  EXPECT_EQ(a.polls, 1);
  EXPECT_EQ(b.polls, 1);  // every pending child is polled (and registers the waker)
  EXPECT_TRUE(s.poll(h.cx).is_pending());
  auto p = s.poll(h.cx);  // both are ready on their third poll; the left one wins
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 0u);
  EXPECT_EQ(a.polls, 3);
  EXPECT_EQ(b.polls, 2);
}

TEST(SelectTest, LosersDestroyedWhenSelectReturnsReady) {
  using testing::ManualFuture;
  Counted::reset();
  Probe loser_a, winner, loser_b;
  auto [lf, lh] = make_manual_future<Counted>();
  {
    Harness h;
    std::optional<Select<ProbeFuture<Counted>, ProbeFuture<Counted>, ManualFuture<Counted>,
                         ProbeFuture<>>>
        s;
    s.emplace(ProbeFuture<Counted>(&loser_a, kForever, Counted(1)),
              ProbeFuture<Counted>(&winner, 1, Counted(42)), std::move(lf),
              ProbeFuture<>(&loser_b, kForever));
    EXPECT_TRUE(s->poll(h.cx).is_pending());
    EXPECT_TRUE(lh.has_waker());

    auto p = s->poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value().index, 1u);
    EXPECT_EQ(std::get<1>(p.value().value).value, 42);
    // The select is still alive, yet the losers (and the winner's spent
    // future) are already gone; only the winner's output is alive.
    EXPECT_EQ(loser_a.destroyed, 1);
    EXPECT_EQ(winner.destroyed, 1);
    EXPECT_EQ(loser_b.destroyed, 1);
    EXPECT_TRUE(lh.dropped());
    EXPECT_FALSE(lh.has_waker());  // the loser released its waker clone
    EXPECT_EQ(Counted::live(), 1);
    EXPECT_EQ(h.cw.live(), 1);

    // Dropping the select now destroys nothing a second time.
    const int64_t destructions_before_drop = Counted::destructions();
    s.reset();
    EXPECT_EQ(Counted::destructions(), destructions_before_drop);
    EXPECT_EQ(Counted::live(), 1);
    EXPECT_EQ(loser_a.destroyed, 1);
    EXPECT_EQ(winner.destroyed, 1);
    EXPECT_EQ(loser_b.destroyed, 1);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(SelectTest, ThrowingChildDestroysAllAndRethrows) {
  Counted::reset();
  Probe before, after;
  auto [fut, handle] = make_manual_future<int>();
  {
    Harness h;
    auto s = select(ProbeFuture<Counted>(&before, kForever, Counted(1)), std::move(fut),
                    ThrowingFuture<int>(2), ProbeFuture<>(&after, kForever));
    EXPECT_TRUE(s.poll(h.cx).is_pending());
    EXPECT_GT(Counted::live(), 0);
    EXPECT_THROW((void)s.poll(h.cx), TestError);
    // Before the select is dropped, every child is gone.
    EXPECT_EQ(Counted::live(), 0);
    EXPECT_EQ(before.destroyed, 1);
    EXPECT_EQ(after.destroyed, 1);
    EXPECT_TRUE(handle.dropped());
  }
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(before.destroyed, 1);
  EXPECT_EQ(after.destroyed, 1);
}

TEST(SelectTest, DroppingBeforeReadyDestroysAllChildrenExactlyOnce) {
  Counted::reset();
  Probe a, b;
  auto [fut, handle] = make_manual_future<Counted>();
  {
    Harness h;
    auto s = select(ProbeFuture<Counted>(&a, kForever, Counted(1)), std::move(fut),
                    ProbeFuture<>(&b, kForever));
    EXPECT_TRUE(s.poll(h.cx).is_pending());
    EXPECT_TRUE(s.poll(h.cx).is_pending());
    EXPECT_EQ(a.destroyed, 0);
    EXPECT_FALSE(handle.dropped());
  }
  EXPECT_EQ(a.destroyed, 1);
  EXPECT_EQ(b.destroyed, 1);
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(Counted::live(), 0);
}

TEST(SelectTest, DroppingUnpolledDestroysAllChildrenExactlyOnce) {
  Counted::reset();
  Probe a, b;
  { auto s = select(ProbeFuture<Counted>(&a, 0, Counted(1)), ProbeFuture<>(&b, 0)); }
  EXPECT_EQ(a.polls, 0);
  EXPECT_EQ(a.destroyed, 1);
  EXPECT_EQ(b.destroyed, 1);
  EXPECT_EQ(Counted::live(), 0);
}

TEST(SelectTest, WokenFromAnotherThread) {
  Harness h;
  auto [fa, ha] = make_manual_future<int>();
  auto [fb, hb] = make_manual_future<int>();
  auto s = select(std::move(fa), std::move(fb));
  EXPECT_TRUE(s.poll(h.cx).is_pending());
  std::thread t([handle = hb]() mutable { handle.complete(2); });
  t.join();
  EXPECT_EQ(h.cw.wakes_by_value(), 1);
  auto p = s.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 1u);
  EXPECT_EQ(std::get<1>(p.value().value), 2);
  EXPECT_TRUE(ha.dropped());
  EXPECT_EQ(h.cw.live(), 1);  // the loser's stored waker clone was released
}

TEST(SelectTest, ChildrenShareTheBudget) {
  CountingWaker cw;
  Waker w = cw.waker();
  Budget budget(10);
  Context cx(w, budget);
  auto taker = [](uint32_t units, bool finish) {
    return poll_fn([units, finish](Context& c) -> Poll<uint32_t> {
      for (uint32_t i = 0; i < units; ++i) EXPECT_TRUE(c.budget().try_take());
      if (!finish) {
        c.waker().wake_by_ref();
        return Pending{};
      }
      return Ready(units);
    });
  };
  auto s = select(taker(2, false), taker(3, true));
  auto p = s.poll(cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 1u);
  EXPECT_EQ(budget.remaining(), 5u);
}

TEST(SelectTest, SpentBudgetYieldsOnceWithoutPollingAChild) {
  CountingWaker cw;
  Waker w = cw.waker();
  Budget budget(0);
  Context cx(w, budget);
  Probe a, b;
  auto s = select(ProbeFuture<int>(&a, kForever), ProbeFuture<int>(&b, 0, 2));
  EXPECT_TRUE(s.poll(cx).is_pending());
  EXPECT_EQ(a.polls + b.polls, 0);
  EXPECT_EQ(cw.wakes_by_ref(), 1);
  EXPECT_TRUE(budget.refused());
  budget.reset(1);
  auto p = s.poll(cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().index, 1u);
  EXPECT_EQ(a.polls, 1);
  EXPECT_EQ(budget.remaining(), 1u);  // the select itself took no unit
}

#ifndef NDEBUG
TEST(SelectDeathTest, PollAfterReadyAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        auto s = select(pending<int>(), ready(1));
        (void)s.poll(h.cx);
        (void)s.poll(h.cx);
      },
      "select\\(\\) future polled after it returned Ready");
}

TEST(SelectDeathTest, PollAfterThrowAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        auto s = select(ThrowingFuture<int>(1), pending<int>());
        try {
          (void)s.poll(h.cx);
        } catch (const TestError&) {
        }
        (void)s.poll(h.cx);
      },
      "select\\(\\) future polled after it returned Ready");
}
#endif

}  // namespace
}  // namespace pollux
