#include "future/poll_into.h"

#include <optional>
#include <utility>

#include "future/join.h"
#include "future/poll.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::Harness;
using testing::InPlaceFuture;

// Every Counted ever made: the live ones and the destroyed ones.
int64_t made() { return Counted::live() + Counted::destructions(); }

TEST(MadeByTest, EmplaceBuildsWhatTheFunctionReturnsInPlace) {
  Counted::reset();
  std::optional<Counted> out;
  out.emplace(MadeBy{[] { return Counted(3); }});
  EXPECT_EQ(out->value, 3);
  EXPECT_EQ(made(), 1) << "the prvalue must initialise the optional's object, no move";
}

TEST(PollIntoTest, CallsTheFuturesOwnPollIntoAndLeavesOutEmptyWhilePending) {
  Counted::reset();
  Harness h;
  InPlaceFuture<> f(/*pending_polls=*/1, 5);
  static_assert(PollsInto<InPlaceFuture<>>);
  std::optional<Counted> out;
  EXPECT_FALSE(poll_into(f, h.cx, out));
  EXPECT_FALSE(out.has_value());
  EXPECT_EQ(h.cw.wakes_by_ref(), 1);
  EXPECT_TRUE(poll_into(f, h.cx, out));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->value, 5);
  EXPECT_EQ(made(), 1);
}

TEST(PollIntoTest, FallsBackToPollForAFutureWithoutIt) {
  Harness h;
  auto f = ready(41);
  static_assert(!PollsInto<decltype(f)>);
  std::optional<int> out;
  EXPECT_TRUE(poll_into(f, h.cx, out));
  EXPECT_EQ(out, 41);
}

TEST(PollIntoTest, PollOfAPollIntoFutureGivesTheSameOutput) {
  Harness h;
  InPlaceFuture<> f(/*pending_polls=*/1, 9);
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  Poll<Counted> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value().value, 9);
}

Task<int> await_in_place(int pending_polls) {
  Counted c = co_await InPlaceFuture<>(pending_polls, 7);
  co_return c.value;
}

// The output is built in the awaiter and moved once, into the coroutine's
// variable: a result passed up through Poll and Ready is made 6 times.
TEST(PollIntoTest, CoAwaitBuildsTheOutputInTheAwaiterAndMovesItOnce) {
  for (int pending_polls : {0, 1}) {
    Counted::reset();
    Harness h;
    {
      Task<int> t = await_in_place(pending_polls);
      Poll<int> p = t.poll(h.cx);
      if (pending_polls > 0) {
        EXPECT_TRUE(p.is_pending());
        p = t.poll(h.cx);  // the leaf's re-poll (FutureAwaiter::poll_leaf)
      }
      ASSERT_TRUE(p.is_ready());
      EXPECT_EQ(p.value(), 7);
    }
    EXPECT_EQ(made(), 2) << "pending polls: " << pending_polls;
    EXPECT_EQ(Counted::live(), 0);
  }
}

Task<int> await_select_in_place() {
  auto r = co_await select(InPlaceFuture<>(0, 3), pending<int>());
  co_return r.index == 0 ? std::get<0>(r.value).value : -1;
}

// The winner's output is built in the select's own slot, moved into the
// result, and the result moved once into the coroutine.
TEST(PollIntoTest, SelectMovesTheWinnersOutputOnceIntoItsResult) {
  Counted::reset();
  Harness h;
  {
    Task<int> t = await_select_in_place();
    Poll<int> p = t.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value(), 3);
  }
  EXPECT_EQ(made(), 3);
  EXPECT_EQ(Counted::live(), 0);
}

Task<int> await_join_in_place() {
  auto [a, b] = co_await join(InPlaceFuture<>(1, 4), InPlaceFuture<>(0, 5));
  co_return a.value * 10 + b.value;
}

// Each child's output is built in its slot, moved once into the tuple, and
// the tuple moved once into the coroutine.
TEST(PollIntoTest, JoinMovesEachOutputOnceIntoItsTuple) {
  Counted::reset();
  Harness h;
  {
    Task<int> t = await_join_in_place();
    EXPECT_TRUE(t.poll(h.cx).is_pending());
    Poll<int> p = t.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value(), 45);
  }
  EXPECT_EQ(made(), 2 * 3);
  EXPECT_EQ(Counted::live(), 0);
}

}  // namespace
}  // namespace pollux
