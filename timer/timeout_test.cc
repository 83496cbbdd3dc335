#include "timer/timeout.h"

#include <gtest/gtest.h>

#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executor/local_executor.h"
#include "future/map.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "future/testing/manual_future.h"
#include "future/testing/probe_futures.h"
#include "timer/instant.h"
#include "timer/time_driver.h"
#include "timer/timer_queue.h"

namespace pollux {
namespace {

using ::pollux::testing::Counted;
using ::pollux::testing::CountingWaker;
using ::pollux::testing::make_manual_future;

template <class F>
auto PollOnce(F& f, const Waker& w) {
  Budget budget;
  Context cx(w, budget);
  return f.poll(cx);
}

class TimeoutTest : public ::testing::Test {
 protected:
  TimeoutTest() { q.pause(); }
  // Moves the paused clock past `d` from now and fires what is due.
  void Elapse(absl::Duration d) {
    q.advance(d + absl::Milliseconds(1));
    q.process();
  }
  timer::TimerQueue q;
  timer::CurrentTimerQueueGuard guard{&q};
};

// ----------------------------------------------------------------- output types

static_assert(std::is_same_v<output_t<Timeout<ReadyFuture<int>>>, absl::StatusOr<int>>);
static_assert(std::is_same_v<output_t<Timeout<ReadyFuture<void>>>, absl::Status>);
static_assert(std::is_same_v<output_t<Timeout<ReadyFuture<absl::Status>>>, absl::Status>);
static_assert(
    std::is_same_v<output_t<Timeout<ReadyFuture<absl::StatusOr<double>>>>, absl::StatusOr<double>>);

TEST_F(TimeoutTest, ReadyInnerWinsEvenWithAZeroOrPastDeadline) {
  auto t = timeout(ready(7), absl::ZeroDuration());
  auto p = PollOnce(t, noop_waker());
  ASSERT_TRUE(p.is_ready());
  ASSERT_TRUE(p.value().ok());
  EXPECT_EQ(*p.value(), 7);

  auto t2 = timeout_at(ready(8), Instant());
  auto p2 = PollOnce(t2, noop_waker());
  ASSERT_TRUE(p2.is_ready());
  EXPECT_EQ(*p2.value(), 8);
  EXPECT_EQ(q.active_timers(), 0u);
}

TEST_F(TimeoutTest, InnerThatNeverCompletesTimesOutAndIsDroppedExactlyOnceAtThatMoment) {
  Counted::reset();
  CountingWaker cw;
  Waker w = cw.waker();
  auto [fut, handle] = make_manual_future<int>();
  auto t = timeout(map(std::move(fut), [c = Counted(1)](int v) { return v + c.value; }),
                   absl::Milliseconds(50));
  EXPECT_EQ(Counted::live(), 1);
  EXPECT_TRUE(PollOnce(t, w).is_pending());
  EXPECT_EQ(q.active_timers(), 1u);

  Elapse(absl::Milliseconds(30));
  EXPECT_EQ(cw.wakes(), 0);
  EXPECT_TRUE(PollOnce(t, w).is_pending());
  EXPECT_FALSE(handle.dropped());

  Elapse(absl::Milliseconds(20));
  EXPECT_EQ(cw.wakes(), 1);
  EXPECT_FALSE(handle.dropped()) << "dropped on the expiring poll, not by the timer";
  const int64_t destroyed_before = Counted::destructions();
  auto p = PollOnce(t, w);
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(handle.dropped()) << "the inner future is dropped at expiry";
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(Counted::destructions(), destroyed_before + 1) << "destroyed exactly once";
  EXPECT_EQ(handle.polls(), 3) << "polled first on every poll, the expiring one too";
  EXPECT_TRUE(absl::IsDeadlineExceeded(p.value().status()));
  EXPECT_EQ(p.value().status().message(), "operation timed out after 50ms");
  EXPECT_EQ(q.active_timers(), 0u);
  handle.complete(1);  // harmless after the drop
}

TEST_F(TimeoutTest, ReadyInnerWinsOverAnExpiredDeadlineAndUnregistersTheTimer) {
  auto [fut, handle] = make_manual_future<int>();
  auto t = timeout(std::move(fut), absl::Milliseconds(5));
  EXPECT_TRUE(PollOnce(t, noop_waker()).is_pending());
  Elapse(absl::Milliseconds(5));
  handle.complete(3);  // both are ready now: the inner one wins
  auto p = PollOnce(t, noop_waker());
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(*p.value(), 3);

  auto [fut2, handle2] = make_manual_future<int>();
  auto t2 = timeout(std::move(fut2), absl::Seconds(5));
  EXPECT_TRUE(PollOnce(t2, noop_waker()).is_pending());
  EXPECT_EQ(q.active_timers(), 1u);
  handle2.complete(4);
  ASSERT_TRUE(PollOnce(t2, noop_waker()).is_ready());
  EXPECT_EQ(q.active_timers(), 0u) << "the timer is released as soon as the inner wins";
}

// timeout_on: the borrowed Sleep stays armed when the inner future wins,
// is pushed back by a reset (no new registration), and expires a later
// operation; reset again, it serves the next one.
TEST_F(TimeoutTest, TimeoutOnKeepsItsSleepArmedAcrossOperations) {
  CountingWaker cw;
  Waker w = cw.waker();
  Sleep idle = sleep_until(Instant::max());
  idle.reset(q.now() + absl::Milliseconds(20));
  {
    auto first = timeout_on(idle, ready(7));
    auto p = PollOnce(first, w);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(*p.value(), 7);
  }
  {
    auto [fut, handle] = make_manual_future<int>();
    auto second = timeout_on(idle, std::move(fut));
    EXPECT_TRUE(PollOnce(second, w).is_pending());
    EXPECT_EQ(q.active_timers(), 1u);
    handle.complete(8);
    auto p = PollOnce(second, w);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(*p.value(), 8);
  }
  EXPECT_EQ(q.active_timers(), 1u) << "the inner future's win unregistered the borrowed Sleep";
  EXPECT_EQ(cw.wakes(), 1) << "the manual future's completion";
  idle.reset(q.now() + absl::Milliseconds(50));  // later: a store
  Elapse(absl::Milliseconds(20));
  EXPECT_EQ(cw.wakes(), 1) << "woken at the old deadline";
  {
    auto [fut, handle] = make_manual_future<int>();
    auto third = timeout_on(idle, std::move(fut));
    EXPECT_TRUE(PollOnce(third, w).is_pending());
    Elapse(absl::Milliseconds(30));
    EXPECT_EQ(cw.wakes(), 2);
    auto p = PollOnce(third, w);
    ASSERT_TRUE(p.is_ready());
    EXPECT_TRUE(absl::IsDeadlineExceeded(p.value().status())) << p.value().status();
  }
  idle.reset(q.now() + absl::Milliseconds(10));
  auto fourth = timeout_on(idle, ready(9));
  auto p = PollOnce(fourth, w);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(*p.value(), 9);
}

TEST_F(TimeoutTest, VoidInnerGivesAStatus) {
  auto [fut, handle] = make_manual_future<void>();
  auto t = timeout(std::move(fut), absl::Milliseconds(5));
  EXPECT_TRUE(PollOnce(t, noop_waker()).is_pending());
  handle.complete();
  auto p = PollOnce(t, noop_waker());
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(p.value().ok());

  auto [fut2, handle2] = make_manual_future<void>();
  auto t2 = timeout(std::move(fut2), absl::Milliseconds(5));
  EXPECT_TRUE(PollOnce(t2, noop_waker()).is_pending());
  Elapse(absl::Milliseconds(5));
  auto p2 = PollOnce(t2, noop_waker());
  ASSERT_TRUE(p2.is_ready());
  EXPECT_TRUE(absl::IsDeadlineExceeded(p2.value()));
  EXPECT_TRUE(handle2.dropped());
}

TEST_F(TimeoutTest, StatusIsFoldedNotNested) {
  auto t = timeout(ready(absl::NotFoundError("nope")), absl::Seconds(1));
  auto p = PollOnce(t, noop_waker());
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(absl::IsNotFound(p.value()));

  auto [fut, handle] = make_manual_future<absl::Status>();
  auto t2 = timeout(std::move(fut), absl::Milliseconds(2));
  EXPECT_TRUE(PollOnce(t2, noop_waker()).is_pending());
  Elapse(absl::Milliseconds(2));
  auto p2 = PollOnce(t2, noop_waker());
  ASSERT_TRUE(p2.is_ready());
  EXPECT_TRUE(absl::IsDeadlineExceeded(p2.value()));
  EXPECT_EQ(p2.value().message(), "operation timed out after 2ms");
}

TEST_F(TimeoutTest, StatusOrIsFoldedNotNested) {
  auto t = timeout(ready(absl::StatusOr<int>(absl::UnavailableError("down"))), absl::Seconds(1));
  auto p = PollOnce(t, noop_waker());
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(absl::IsUnavailable(p.value().status()));

  auto t2 = timeout(ready(absl::StatusOr<int>(9)), absl::Seconds(1));
  auto p2 = PollOnce(t2, noop_waker());
  ASSERT_TRUE(p2.is_ready());
  EXPECT_EQ(*p2.value(), 9);

  auto [fut, handle] = make_manual_future<absl::StatusOr<int>>();
  auto t3 = timeout_at(std::move(fut), q.now() + absl::Milliseconds(1500));
  EXPECT_TRUE(PollOnce(t3, noop_waker()).is_pending());
  Elapse(absl::Milliseconds(1500));
  auto p3 = PollOnce(t3, noop_waker());
  ASSERT_TRUE(p3.is_ready());
  EXPECT_TRUE(absl::IsDeadlineExceeded(p3.value().status()));
  EXPECT_EQ(p3.value().status().message(), "operation timed out after 1.5s");
}

// poll_into (future/poll_into.h): a StatusOr inner output is built once, in
// the caller's storage; any other is moved once into the StatusOr. Through
// Poll and Ready each would be made several times more.
TEST_F(TimeoutTest, PollIntoPassesAStatusOrInnerStraightThrough) {
  Counted::reset();
  {
    auto t = timeout(testing::InPlaceFuture<absl::StatusOr<Counted>>(1, 4), absl::Seconds(1));
    static_assert(PollsInto<decltype(t)>);
    testing::Harness h;
    std::optional<absl::StatusOr<Counted>> out;
    EXPECT_FALSE(poll_into(t, h.cx, out));
    EXPECT_EQ(q.active_timers(), 1u);
    ASSERT_TRUE(poll_into(t, h.cx, out));
    ASSERT_TRUE(out->ok());
    EXPECT_EQ((*out)->value, 4);
    EXPECT_EQ(q.active_timers(), 0u);
    // The Counted the future makes and its move into the StatusOr it builds.
    EXPECT_EQ(Counted::live() + Counted::destructions(), 2);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST_F(TimeoutTest, PollIntoWrapsAnObjectInnerWithOneMove) {
  Counted::reset();
  {
    auto t = timeout(testing::InPlaceFuture<Counted>(0, 6), absl::Seconds(1));
    testing::Harness h;
    std::optional<absl::StatusOr<Counted>> out;
    ASSERT_TRUE(poll_into(t, h.cx, out));
    EXPECT_EQ((*out)->value, 6);
    EXPECT_EQ(Counted::live() + Counted::destructions(), 2);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST_F(TimeoutTest, DroppingBeforeCompletionCancelsBoth) {
  Counted::reset();
  auto [fut, handle] = make_manual_future<int>();
  {
    auto t = timeout(map(std::move(fut), [c = Counted()](int v) { return v; }), absl::Seconds(1));
    EXPECT_TRUE(PollOnce(t, noop_waker()).is_pending());
    EXPECT_EQ(q.active_timers(), 1u);
    EXPECT_EQ(Counted::live(), 1);
  }
  EXPECT_EQ(q.active_timers(), 0u);
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(Counted::live(), 0);
}

TEST_F(TimeoutTest, ZeroDurationExpiresOnFirstPollWithoutRegistering) {
  auto [fut, handle] = make_manual_future<int>();
  auto t = timeout(std::move(fut), absl::ZeroDuration());
  auto p = PollOnce(t, noop_waker());
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(absl::IsDeadlineExceeded(p.value().status()));
  EXPECT_EQ(p.value().status().message(), "operation timed out after 0");
  EXPECT_EQ(handle.polls(), 1) << "the inner future was still polled first";
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(q.active_timers(), 0u);
}

// An inner future that uses up the whole budget on every poll and asks to be
// polled again (a hot producer).
struct BudgetHog {
  using Output = int;
  Poll<int> poll(Context& cx) {
    while (cx.budget().try_take()) {
    }
    cx.waker().wake_by_ref();
    return Pending{};
  }
};

TEST_F(TimeoutTest, DeadlineFiresEvenWhenTheInnerFutureSpendsTheBudget) {
  auto t = timeout(BudgetHog{}, absl::Milliseconds(10));
  Budget budget(128);
  Context cx(noop_waker(), budget);
  EXPECT_TRUE(t.poll(cx).is_pending());
  EXPECT_EQ(q.active_timers(), 1u) << "the timer registered despite the spent budget";
  Elapse(absl::Milliseconds(10));
  budget.reset();
  auto p = t.poll(cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(absl::IsDeadlineExceeded(p.value().status()));
}

TEST_F(TimeoutTest, ExhaustedBudgetOnEntryYieldsWithoutTouchingTheTimer) {
  CountingWaker cw;
  Waker w = cw.waker();
  auto [fut, handle] = make_manual_future<int>();
  auto t = timeout(std::move(fut), absl::ZeroDuration());
  Budget spent(0);
  Context cx(w, spent);
  EXPECT_TRUE(t.poll(cx).is_pending()) << "the sleep honours the budget";
  EXPECT_GE(cw.wakes_by_ref(), 1);
}

// ----------------------------------------------------------------- under an executor

TEST(TimeoutExecutorTest, RealClockTimeoutAroundAFutureThatNeverCompletes) {
  timer::TimeDriver drv;
  LocalExecutor ex(drv);
  auto entered = drv.enter();
  auto [fut, handle] = make_manual_future<int>();
  const Instant start = Instant::now();
  absl::StatusOr<int> r = ex.block_on(timeout(std::move(fut), absl::Milliseconds(20)));
  const absl::Duration took = Instant::now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status()));
  EXPECT_GE(took, absl::Milliseconds(20));
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(drv.queue().active_timers(), 0u);
}

TEST(TimeoutExecutorTest, SelectLoserTimeoutIsCancelled) {
  timer::TimeDriver drv;
  LocalExecutor ex(drv);
  auto entered = drv.enter();
  drv.queue().pause();
  auto [fut, handle] = make_manual_future<int>();
  // The slow branch is a timeout around a never-completing future; the fast
  // branch a short sleep. select drops the loser at once.
  auto r = ex.block_on(select(timeout(std::move(fut), absl::Hours(1)),
                              sleep(absl::Milliseconds(3))));
  EXPECT_EQ(r.index, 1u);
  EXPECT_TRUE(handle.dropped());
  EXPECT_EQ(drv.queue().active_timers(), 0u);
}

TEST(TimeoutDeathTest, WithoutATimerQueueFailsWithTheSleepMessage) {
  auto poll_timeout = [] {
    auto [fut, handle] = make_manual_future<int>();
    auto t = timeout(std::move(fut), absl::Milliseconds(1));
    (void)PollOnce(t, noop_waker());
  };
  EXPECT_DEATH(poll_timeout(), "sleep\\(\\) needs a runtime with time enabled");
}

}  // namespace
}  // namespace pollux
