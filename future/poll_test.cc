#include "future/poll.h"

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "future/testing/counted.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::Counted;

TEST(PollTest, ReadyHoldsValue) {
  Poll<int> p = Ready(42);
  EXPECT_TRUE(p.is_ready());
  EXPECT_FALSE(p.is_pending());
  EXPECT_TRUE(static_cast<bool>(p));
  EXPECT_EQ(p.value(), 42);
  p.value() = 7;  // value() & gives mutable access to the stored value
  EXPECT_EQ(p.value(), 7);
}

TEST(PollTest, PendingHoldsNothing) {
  Poll<int> p = Pending{};
  EXPECT_TRUE(p.is_pending());
  EXPECT_FALSE(p.is_ready());
  EXPECT_FALSE(static_cast<bool>(p));
}

TEST(PollTest, StaticFactories) {
  Poll<std::string> r = Poll<std::string>::ready("abc");
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), "abc");
  EXPECT_TRUE(Poll<std::string>::pending().is_pending());
}

TEST(PollTest, ReadyConvertsToConstructibleType) {
  // Ready<const char*> -> Poll<std::string>; Ready<int> -> Poll<long>.
  Poll<std::string> s = Ready("hello");
  ASSERT_TRUE(s.is_ready());
  EXPECT_EQ(s.value(), "hello");
  Poll<long> l = Ready(5);
  EXPECT_EQ(l.value(), 5L);
}

TEST(PollTest, ReadyLvalueIsCopiedNotMoved) {
  Ready<std::string> r(std::string("keep me"));
  Poll<std::string> p = r;
  EXPECT_EQ(p.value(), "keep me");
  EXPECT_EQ(r.value, "keep me");
}

TEST(PollTest, FalsyValuesAreStillReady) {
  // A ready value that is itself "falsy" is still Ready.
  Poll<int> zero = Ready(0);
  EXPECT_TRUE(zero.is_ready());
  Poll<bool> f = Ready(false);
  EXPECT_TRUE(f.is_ready());
  EXPECT_FALSE(f.value());
  Poll<std::unique_ptr<int>> null = Ready(std::unique_ptr<int>());
  EXPECT_TRUE(null.is_ready());
}

TEST(PollTest, VoidReadyAndPending) {
  Poll<void> r = Ready{};
  EXPECT_TRUE(r.is_ready());
  EXPECT_FALSE(r.is_pending());
  EXPECT_TRUE(static_cast<bool>(r));
  r.value();  // no-op on Ready

  Poll<void> q = Pending{};
  EXPECT_TRUE(q.is_pending());
  EXPECT_FALSE(static_cast<bool>(q));

  EXPECT_TRUE(Poll<void>::ready().is_ready());
  EXPECT_TRUE(Poll<void>::pending().is_pending());
}

TEST(PollTest, ReferenceRefersToOriginalObject) {
  int x = 1;
  Poll<int&> p = Ready(std::ref(x));
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(&p.value(), &x);
  p.value() = 9;
  EXPECT_EQ(x, 9);

  Poll<int&> q = Poll<int&>::ready(x);
  EXPECT_EQ(&q.value(), &x);

  Poll<int&> pend = Pending{};
  EXPECT_TRUE(pend.is_pending());
  EXPECT_FALSE(static_cast<bool>(pend));
  EXPECT_TRUE(Poll<int&>::pending().is_pending());
}

TEST(PollTest, ReferenceToConstFromMutable) {
  int x = 3;
  Poll<const int&> p = Ready(std::ref(x));
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(&p.value(), &x);
  x = 4;
  EXPECT_EQ(p.value(), 4);
}

TEST(PollTest, ReferencePollIsAPointer) {
  static_assert(std::is_trivially_copyable_v<Poll<int&>>);
  static_assert(sizeof(Poll<int&>) == sizeof(int*));
  int x = 5;
  Poll<int&> p = Poll<int&>::ready(x);
  Poll<int&> copy = p;
  EXPECT_EQ(&copy.value(), &x);
}

TEST(PollTest, MoveOnlyValue) {
  Poll<std::unique_ptr<int>> p = Ready(std::make_unique<int>(7));
  ASSERT_TRUE(p.is_ready());
  std::unique_ptr<int> out = std::move(p).value();
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 7);
  EXPECT_EQ(p.value(), nullptr);  // the value was moved out, not copied
  static_assert(!std::is_copy_constructible_v<Poll<std::unique_ptr<int>>>);
  static_assert(std::is_move_constructible_v<Poll<std::unique_ptr<int>>>);
}

TEST(PollTest, MovingPollMovesValue) {
  Poll<std::unique_ptr<int>> p = Ready(std::make_unique<int>(8));
  Poll<std::unique_ptr<int>> q = std::move(p);
  ASSERT_TRUE(q.is_ready());
  EXPECT_EQ(*q.value(), 8);
}

TEST(PollTest, StoredValueDestroyedExactlyOnce) {
  Counted::reset();
  {
    Poll<Counted> p = Ready(Counted(3));
    EXPECT_EQ(Counted::live(), 1);
    EXPECT_EQ(p.value().value, 3);
    Poll<Counted> q = Pending{};
    EXPECT_EQ(Counted::live(), 1);  // Pending constructs no value
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(PollTest, MapTransformsReady) {
  Poll<int> p = Ready(2);
  Poll<std::string> s = std::move(p).map([](int x) { return std::to_string(x * 3); });
  ASSERT_TRUE(s.is_ready());
  EXPECT_EQ(s.value(), "6");
}

TEST(PollTest, MapKeepsPendingAndDoesNotCallFn) {
  int calls = 0;
  Poll<int> p = Pending{};
  Poll<int> q = std::move(p).map([&](int x) {
    ++calls;
    return x + 1;
  });
  EXPECT_TRUE(q.is_pending());
  EXPECT_EQ(calls, 0);
}

TEST(PollTest, MapToVoid) {
  int seen = 0;
  Poll<void> r = Poll<int>(Ready(11)).map([&](int x) { seen = x; });
  EXPECT_TRUE(r.is_ready());
  EXPECT_EQ(seen, 11);

  Poll<void> pend = Poll<int>(Pending{}).map([&](int x) { seen = -1; });
  EXPECT_TRUE(pend.is_pending());
  EXPECT_EQ(seen, 11);
}

TEST(PollTest, MapMovesMoveOnlyValue) {
  Poll<std::unique_ptr<int>> p = Ready(std::make_unique<int>(4));
  Poll<std::unique_ptr<int>> q = std::move(p).map([](std::unique_ptr<int> v) {
    *v += 1;
    return v;
  });
  ASSERT_TRUE(q.is_ready());
  EXPECT_EQ(*q.value(), 5);
}

TEST(PollTest, UnitAndOrUnit) {
  EXPECT_TRUE(Unit{} == Unit{});
  static_assert(std::is_same_v<OrUnit<void>, Unit>);
  static_assert(std::is_same_v<OrUnit<int>, int>);
  static_assert(std::is_same_v<OrUnit<int&>, int&>);
  Poll<Unit> u = Ready(Unit{});
  EXPECT_TRUE(u.is_ready());
}

#ifndef NDEBUG
TEST(PollDeathTest, ValueOnPendingAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Poll<int> p = Pending{};
        (void)p.value();
      },
      "Poll::value\\(\\) called on Pending");
  EXPECT_DEATH(
      {
        Poll<void> p = Pending{};
        p.value();
      },
      "Poll::value\\(\\) called on Pending");
  EXPECT_DEATH(
      {
        Poll<int&> p = Pending{};
        (void)p.value();
      },
      "Poll::value\\(\\) called on Pending");
}
#endif

}  // namespace
}  // namespace pollux
