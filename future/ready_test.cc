// Tests for ready(), pending() (ready.h) and poll_fn() (poll_fn.h).
#include "future/ready.h"

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "future/context.h"
#include "future/future.h"
#include "future/poll_fn.h"
#include "future/testing/counted.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::Counted;

using testing::Harness;

static_assert(Future<ReadyFuture<int>>);
static_assert(Future<ReadyFuture<void>>);
static_assert(Future<PendingFuture<int>>);
static_assert(Future<PendingFuture<void>>);
static_assert(std::is_same_v<decltype(ready(1)), ReadyFuture<int>>);
static_assert(std::is_same_v<decltype(ready()), ReadyFuture<void>>);
static_assert(std::is_same_v<decltype(pending()), PendingFuture<void>>);

TEST(ReadyTest, ReadyOnFirstPollWithoutTouchingTheWaker) {
  Harness h;
  auto f = ready(42);
  Poll<int> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 42);
  EXPECT_EQ(h.cw.clones(), 1);  // only the harness's own waker
  EXPECT_EQ(h.cw.wakes(), 0);
}

TEST(ReadyTest, VoidReady) {
  Harness h;
  auto f = ready();
  Poll<void> p = f.poll(h.cx);
  EXPECT_TRUE(p.is_ready());
  EXPECT_EQ(h.cw.wakes(), 0);
}

TEST(ReadyTest, DecaysAndCopiesLvalues) {
  Harness h;
  std::string s = "abc";
  auto f = ready(s);
  static_assert(std::is_same_v<output_t<decltype(f)>, std::string>);
  s = "changed";
  Poll<std::string> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), "abc");
  EXPECT_EQ(s, "changed");

  const char* lit = "lit";
  auto g = ready(lit);
  static_assert(std::is_same_v<output_t<decltype(g)>, const char*>);
}

TEST(ReadyTest, MoveOnlyValue) {
  Harness h;
  auto f = ready(std::make_unique<int>(5));
  static_assert(std::is_same_v<output_t<decltype(f)>, std::unique_ptr<int>>);
  Poll<std::unique_ptr<int>> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  std::unique_ptr<int> v = std::move(p).value();
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, 5);
}

TEST(ReadyTest, MovingBeforePollCarriesTheValue) {
  Harness h;
  auto f = ready(std::make_unique<int>(6));
  auto g = std::move(f);
  Poll<std::unique_ptr<int>> p = g.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(*p.value(), 6);
}

TEST(ReadyTest, ValueDestroyedExactlyOnceWhenPolled) {
  Counted::reset();
  {
    Harness h;
    auto f = ready(Counted(7));
    EXPECT_EQ(Counted::live(), 1);
    {
      Poll<Counted> p = f.poll(h.cx);
      ASSERT_TRUE(p.is_ready());
      EXPECT_EQ(p.value().value, 7);
      // The future handed its value out and keeps no copy.
      EXPECT_EQ(Counted::live(), 1);
    }
    EXPECT_EQ(Counted::live(), 0);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(ReadyTest, DroppingUnpolledDestroysValue) {
  Counted::reset();
  {
    auto f = ready(Counted(1));
    EXPECT_EQ(Counted::live(), 1);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(PendingTest, NeverReadyAndRegistersNoWaker) {
  Harness h;
  auto f = pending<int>();
  for (int i = 0; i < 5; ++i) {
    Poll<int> p = f.poll(h.cx);
    EXPECT_TRUE(p.is_pending());
  }
  auto v = pending();
  EXPECT_TRUE(v.poll(h.cx).is_pending());
  EXPECT_EQ(h.cw.clones(), 1);
  EXPECT_EQ(h.cw.wakes(), 0);
}

TEST(PollFnTest, CallsFnEveryPollAndKeepsState) {
  Harness h;
  int calls = 0;
  auto f = poll_fn([&calls, n = 0](Context& cx) mutable -> Poll<int> {
    ++calls;
    if (++n < 3) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready(n * 10);
  });
  static_assert(std::is_same_v<output_t<decltype(f)>, int>);
  static_assert(Future<decltype(f)>);
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  Poll<int> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 30);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(h.cw.wakes_by_ref(), 2);
}

TEST(PollFnTest, ReceivesTheCallersContext) {
  Harness h;
  const Context* seen = nullptr;
  auto f = poll_fn([&](Context& cx) -> Poll<void> {
    seen = &cx;
    EXPECT_TRUE(cx.budget().try_take());
    return Ready{};
  });
  Budget b(5);
  Context cx(h.waker, b);
  EXPECT_TRUE(f.poll(cx).is_ready());
  EXPECT_EQ(seen, &cx);
  EXPECT_EQ(b.remaining(), 4u);
}

TEST(PollFnTest, CanStoreTheWakerAndWakeLater) {
  Harness h;
  Waker stored;
  bool done = false;
  auto f = poll_fn([&](Context& cx) -> Poll<std::string> {
    if (done) return Ready(std::string("done"));
    if (!stored.will_wake(cx.waker())) stored = cx.waker();
    return Pending{};
  });
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  EXPECT_TRUE(f.poll(h.cx).is_pending());
  EXPECT_EQ(h.cw.clones(), 2);  // cloned once; the second poll saw the same waker
  done = true;
  std::move(stored).wake();
  EXPECT_EQ(h.cw.wakes_by_value(), 1);
  Poll<std::string> p = f.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), "done");
  EXPECT_EQ(h.cw.live(), 1);
}

TEST(PollFnTest, DroppingDestroysCapturesExactlyOnce) {
  Counted::reset();
  {
    Harness h;
    auto f = poll_fn([c = Counted(3)](Context&) -> Poll<int> { return Ready(c.value); });
    auto g = std::move(f);  // the moved-from copy is still a live Counted
    Poll<int> p = g.poll(h.cx);
    EXPECT_EQ(p.value(), 3);
    EXPECT_GE(Counted::live(), 1);
  }
  EXPECT_EQ(Counted::live(), 0);
}

#ifndef NDEBUG
TEST(ReadyDeathTest, PollAfterReadyAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        auto f = ready(1);
        (void)f.poll(h.cx);
        (void)f.poll(h.cx);
      },
      "ready\\(\\) future polled after it returned Ready");
  EXPECT_DEATH(
      {
        Harness h;
        auto f = ready();
        (void)f.poll(h.cx);
        (void)f.poll(h.cx);
      },
      "ready\\(\\) future polled after it returned Ready");
}
#endif

}  // namespace
}  // namespace pollux
