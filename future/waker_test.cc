// Tests for Waker (waker.h) and Budget/Context (context.h).
#include "future/waker.h"

#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "future/context.h"
#include "future/testing/counting_waker.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::CountingWaker;

// ---------------------------------------------------------------------------
// Waker

TEST(WakerTest, CountingWakerStartsWithOneLiveWaker) {
  CountingWaker cw;
  {
    Waker w = cw.waker();
    EXPECT_FALSE(w.empty());
    EXPECT_TRUE(static_cast<bool>(w));
    EXPECT_EQ(w.data(), &cw);
    EXPECT_EQ(cw.live(), 1);
    EXPECT_EQ(cw.drops(), 0);
  }
  EXPECT_EQ(cw.drops(), 1);  // the destructor drops
  EXPECT_EQ(cw.live(), 0);
  EXPECT_EQ(cw.wakes(), 0);
}

TEST(WakerTest, CopyClones) {
  CountingWaker cw;
  Waker w = cw.waker();
  const int64_t clones_before = cw.clones();
  {
    Waker c = w;
    EXPECT_EQ(cw.clones(), clones_before + 1);
    EXPECT_EQ(cw.live(), 2);
    EXPECT_TRUE(c.will_wake(w));
    EXPECT_FALSE(w.empty());  // the source is untouched
  }
  EXPECT_EQ(cw.drops(), 1);
  EXPECT_EQ(cw.live(), 1);
}

TEST(WakerTest, MoveStealsWithoutCloning) {
  CountingWaker cw;
  Waker w = cw.waker();
  const int64_t clones_before = cw.clones();
  Waker m = std::move(w);
  EXPECT_EQ(cw.clones(), clones_before);
  EXPECT_EQ(cw.drops(), 0);
  EXPECT_TRUE(w.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_FALSE(m.empty());
  EXPECT_EQ(m.data(), &cw);
  EXPECT_EQ(cw.live(), 1);
  m.wake_by_ref();
  EXPECT_EQ(cw.wakes_by_ref(), 1);
}

TEST(WakerTest, MoveAssignDropsPreviousTarget) {
  CountingWaker a, b;
  Waker w = a.waker();
  w = b.waker();
  EXPECT_EQ(a.drops(), 1);
  EXPECT_EQ(a.live(), 0);
  EXPECT_EQ(b.live(), 1);
  EXPECT_EQ(w.data(), &b);
}

TEST(WakerTest, MoveAssignSelfKeepsWaker) {
  CountingWaker cw;
  Waker w = cw.waker();
  Waker& alias = w;
  w = std::move(alias);
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(cw.drops(), 0);
  EXPECT_EQ(cw.live(), 1);
}

TEST(WakerTest, WakeConsumes) {
  CountingWaker cw;
  Waker w = cw.waker();
  std::move(w).wake();
  EXPECT_EQ(cw.wakes_by_value(), 1);
  EXPECT_EQ(cw.wakes_by_ref(), 0);
  EXPECT_EQ(cw.drops(), 0);  // wake releases ownership itself; no separate drop
  EXPECT_EQ(cw.live(), 0);
  EXPECT_TRUE(w.empty());  // NOLINT(bugprone-use-after-move)
  // Waking (or destroying) the now-empty waker again does nothing.
  std::move(w).wake();
  EXPECT_EQ(cw.wakes(), 1);
}

TEST(WakerTest, WakeByRefKeeps) {
  CountingWaker cw;
  Waker w = cw.waker();
  w.wake_by_ref();
  w.wake_by_ref();
  EXPECT_EQ(cw.wakes_by_ref(), 2);
  EXPECT_EQ(cw.wakes_by_value(), 0);
  EXPECT_EQ(cw.live(), 1);
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(cw.clones(), 1);
}

TEST(WakerTest, WillWake) {
  CountingWaker a, b;
  Waker wa = a.waker();
  Waker wa2 = a.waker();
  Waker wb = b.waker();
  Waker empty1, empty2;
  EXPECT_TRUE(wa.will_wake(wa));
  EXPECT_TRUE(wa.will_wake(wa2));
  EXPECT_FALSE(wa.will_wake(wb));
  EXPECT_FALSE(wb.will_wake(wa));
  EXPECT_FALSE(wa.will_wake(empty1));
  EXPECT_FALSE(empty1.will_wake(wa));
  EXPECT_TRUE(empty1.will_wake(empty2));
  // Same data, different behaviour: not the same waker.
  Waker noop = noop_waker();
  EXPECT_FALSE(noop.will_wake(wa));
}

TEST(WakerTest, ResetDropsOnceAndEmpties) {
  CountingWaker cw;
  Waker w = cw.waker();
  w.reset();
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(cw.drops(), 1);
  w.reset();
  EXPECT_EQ(cw.drops(), 1);
  w.wake_by_ref();
  std::move(w).wake();
  EXPECT_EQ(cw.wakes(), 0);
  EXPECT_EQ(cw.live(), 0);
}

TEST(WakerTest, ResetRawDropsThePreviousAndAdoptsWithoutCloning) {
  CountingWaker a, b;
  Waker w = a.waker();
  Waker counted = b.waker();  // the reference reset_raw adopts
  w.reset_raw(counted.release(), b.waker().vtable());
  EXPECT_EQ(a.drops(), 1);
  EXPECT_EQ(a.live(), 0);
  EXPECT_EQ(w.data(), &b);
  EXPECT_EQ(b.live(), 1);
  w.wake_by_ref();
  EXPECT_EQ(b.wakes_by_ref(), 1);
}

TEST(WakerTest, EmptyWakerOpsAreNoOps) {
  Waker e;
  EXPECT_TRUE(e.empty());
  EXPECT_FALSE(static_cast<bool>(e));
  EXPECT_EQ(e.data(), nullptr);
  EXPECT_EQ(e.vtable(), nullptr);
  e.wake_by_ref();
  Waker c = e;  // cloning an empty waker gives an empty waker
  EXPECT_TRUE(c.empty());
  Waker m = std::move(c);
  EXPECT_TRUE(m.empty());
  std::move(m).wake();
  e.reset();
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e.release(), nullptr);
}

TEST(WakerTest, CopyAssignFromEmptyDropsOld) {
  CountingWaker cw;
  Waker w = cw.waker();
  const Waker empty;
  w = empty;
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(cw.drops(), 1);
  EXPECT_EQ(cw.live(), 0);
}

TEST(WakerTest, CopyAssignDifferentClonesNewAndDropsOld) {
  CountingWaker a, b;
  Waker wa = a.waker();
  Waker wb = b.waker();
  wa = wb;
  EXPECT_EQ(a.drops(), 1);
  EXPECT_EQ(a.live(), 0);
  EXPECT_EQ(b.clones(), 2);
  EXPECT_EQ(b.live(), 2);
  EXPECT_TRUE(wa.will_wake(wb));
}

TEST(WakerTest, CopyAssignSameWakerDoesNotReclone) {
  CountingWaker cw;
  Waker a = cw.waker();
  Waker b = a;
  ASSERT_EQ(cw.clones(), 2);
  b = a;  // already wakes the same target: no clone, no drop
  EXPECT_EQ(cw.clones(), 2);
  EXPECT_EQ(cw.drops(), 0);
  const Waker& self = a;
  a = self;  // self-assignment
  EXPECT_EQ(cw.clones(), 2);
  EXPECT_EQ(cw.drops(), 0);
  EXPECT_EQ(cw.live(), 2);
}

TEST(WakerTest, ReleaseAndFromRawTransferOwnership) {
  CountingWaker cw;
  Waker w = cw.waker();
  const WakerVTable* vt = w.vtable();
  void* data = w.release();
  EXPECT_EQ(data, &cw);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(cw.drops(), 0);  // release does not drop
  {
    Waker adopted = Waker::from_raw(data, vt);
    EXPECT_EQ(cw.clones(), 1);  // from_raw does not clone
    EXPECT_TRUE(adopted.will_wake(adopted));
  }
  EXPECT_EQ(cw.drops(), 1);
  EXPECT_EQ(cw.live(), 0);
}

TEST(WakerTest, NoopWakerIsHarmless) {
  const Waker& n = noop_waker();
  EXPECT_FALSE(n.empty());
  EXPECT_EQ(&noop_waker(), &n);  // one shared instance
  Waker c = n;
  EXPECT_FALSE(c.empty());
  EXPECT_TRUE(c.will_wake(n));
  c.wake_by_ref();
  n.wake_by_ref();
  std::move(c).wake();
  EXPECT_TRUE(c.empty());  // NOLINT(bugprone-use-after-move)
  Waker d = n;
  d.reset();
  EXPECT_TRUE(d.empty());
  EXPECT_FALSE(noop_waker().empty());  // the shared instance is untouched
}

TEST(WakerTest, WakesFromOtherThreadsAreCounted) {
  CountingWaker cw;
  Waker w = cw.waker();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([clone = Waker(w)]() mutable {
      for (int i = 0; i < kPerThread; ++i) clone.wake_by_ref();
      std::move(clone).wake();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cw.wakes_by_ref(), kThreads * kPerThread);
  EXPECT_EQ(cw.wakes_by_value(), kThreads);
  EXPECT_EQ(cw.live(), 1);  // only `w` is left
}

static_assert(std::is_nothrow_copy_constructible_v<Waker>);
static_assert(std::is_nothrow_move_constructible_v<Waker>);
static_assert(std::is_nothrow_copy_assignable_v<Waker>);
static_assert(std::is_nothrow_move_assignable_v<Waker>);
static_assert(sizeof(Waker) == 2 * sizeof(void*));

// ---------------------------------------------------------------------------
// Budget

TEST(BudgetTest, DefaultExhaustsAfter128) {
  Budget b;
  EXPECT_EQ(Budget::kDefault, 128u);
  EXPECT_EQ(b.remaining(), 128u);
  EXPECT_FALSE(b.is_unlimited());
  for (int i = 0; i < 128; ++i) ASSERT_TRUE(b.try_take()) << "take #" << i;
  EXPECT_EQ(b.remaining(), 0u);
  EXPECT_FALSE(b.try_take());
  EXPECT_FALSE(b.try_take());
  EXPECT_EQ(b.remaining(), 0u);  // a failed take does not underflow
}

TEST(BudgetTest, RefundGivesBackOneUnit) {
  Budget b(2);
  ASSERT_TRUE(b.try_take());
  ASSERT_TRUE(b.try_take());
  ASSERT_FALSE(b.try_take());
  b.refund();
  EXPECT_EQ(b.remaining(), 1u);
  EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.try_take());
}

TEST(BudgetTest, ExplicitUnitsAndReset) {
  Budget zero(0);
  EXPECT_FALSE(zero.try_take());
  zero.reset();
  EXPECT_EQ(zero.remaining(), Budget::kDefault);
  zero.reset(3);
  EXPECT_EQ(zero.remaining(), 3u);
  EXPECT_TRUE(zero.try_take());
  EXPECT_EQ(zero.remaining(), 2u);
}

TEST(BudgetTest, UnlimitedNeverRunsOut) {
  Budget b = Budget::unlimited();
  EXPECT_TRUE(b.is_unlimited());
  const uint32_t before = b.remaining();
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(b.try_take());
  EXPECT_EQ(b.remaining(), before);
  b.refund();  // must not wrap around to 0
  EXPECT_TRUE(b.is_unlimited());
  EXPECT_TRUE(b.try_take());
  b.reset();
  EXPECT_FALSE(b.is_unlimited());
  EXPECT_EQ(b.remaining(), Budget::kDefault);
}

// An unlimited budget counts down like any other and is refilled at 0: a
// refund past its top wraps it to 0, and the next take still succeeds.
TEST(BudgetTest, UnlimitedIsRefilledWhereItWouldRunOut) {
  Budget b = Budget::unlimited();
  b.refund();
  EXPECT_TRUE(b.try_take());
  EXPECT_TRUE(b.try_take());
  EXPECT_FALSE(b.refused());
  EXPECT_TRUE(b.is_unlimited());
}

// ---------------------------------------------------------------------------
// Context

TEST(ContextTest, BorrowsWakerAndBudgetWithoutCloning) {
  CountingWaker cw;
  Waker w = cw.waker();
  Budget b(10);
  Context cx(w, b);
  EXPECT_EQ(&cx.waker(), &w);
  EXPECT_EQ(&cx.budget(), &b);
  EXPECT_EQ(cw.clones(), 1);
  EXPECT_TRUE(cx.budget().try_take());
  EXPECT_EQ(b.remaining(), 9u);
  static_assert(!std::is_copy_constructible_v<Context>);
  static_assert(!std::is_copy_assignable_v<Context>);
}

TEST(ContextTest, WithWakerSharesBudget) {
  CountingWaker parent_cw, child_cw;
  Waker pw = parent_cw.waker();
  Waker cwk = child_cw.waker();
  Budget b(3);
  Context parent(pw, b);
  Context child = parent.with_waker(cwk);

  EXPECT_EQ(&child.waker(), &cwk);
  EXPECT_EQ(&parent.waker(), &pw);  // the parent keeps its own waker
  EXPECT_EQ(&child.budget(), &parent.budget());
  EXPECT_EQ(parent_cw.clones(), 1);
  EXPECT_EQ(child_cw.clones(), 1);

  ASSERT_TRUE(child.budget().try_take());
  EXPECT_EQ(parent.budget().remaining(), 2u);
  ASSERT_TRUE(child.budget().try_take());
  ASSERT_TRUE(parent.budget().try_take());
  EXPECT_FALSE(child.budget().try_take());  // the parent's take spent the child's budget
  child.budget().refund();
  EXPECT_EQ(parent.budget().remaining(), 1u);

  child.waker().wake_by_ref();
  EXPECT_EQ(child_cw.wakes(), 1);
  EXPECT_EQ(parent_cw.wakes(), 0);
}

}  // namespace
}  // namespace pollux
