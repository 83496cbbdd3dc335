// Task chains far deeper than any stack: the trampoline must keep the stack
// flat when a chain starts, completes, unwinds an exception or is destroyed.
// Every test runs on a thread whose stack is 1 MiB; recursion per level (even
// a few dozen bytes) would overflow it long before 1,000,000 levels.
#include <pthread.h>

#include <cstdint>
#include <functional>
#include <stdexcept>

#include "future/task.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "future/testing/manual_future.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::CountingWaker;
using testing::Counted;
using testing::make_manual_future;
using testing::ManualFuture;

constexpr int kDepth = 1'000'000;
constexpr size_t kStackBytes = 1 << 20;

// Runs `fn` to completion on a new thread with a `kStackBytes` stack.
void run_on_small_stack(std::function<void()> fn) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, kStackBytes), 0);
  pthread_t thread;
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, trampoline, &fn), 0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
}

// A chain of `depth` + 1 frames; the innermost awaits `leaf` (or, without one,
// completes at once).
Task<int> chain(int depth, ManualFuture<int>* leaf) {
  if (depth == 0) {
    if (leaf == nullptr) co_return 0;
    co_return co_await *leaf;
  }
  co_return 1 + co_await chain(depth - 1, leaf);
}

struct Poller {
  Budget budget = Budget::unlimited();
  CountingWaker cw;
  Waker waker = cw.waker();
  Context cx{waker, budget};
};

TEST(TaskDeepTest, MillionDeepChainCompletesAtOnce) {
  run_on_small_stack([] {
    Poller p;
    Task<int> t = chain(kDepth, nullptr);
    Poll<int> r = t.poll(p.cx);
    ASSERT_TRUE(r.is_ready());
    EXPECT_EQ(r.value(), kDepth);
  });
}

TEST(TaskDeepTest, MillionDeepChainWaitingOnALeafCompletes) {
  run_on_small_stack([] {
    auto [leaf, h] = make_manual_future<int>();
    Poller p;
    Task<int> t = chain(kDepth, &leaf);
    ASSERT_TRUE(t.poll(p.cx).is_pending());
    ASSERT_TRUE(t.poll(p.cx).is_pending());
    EXPECT_EQ(h.polls(), 2);
    h.complete(7);
    EXPECT_EQ(p.cw.wakes(), 1);
    Poll<int> r = t.poll(p.cx);
    ASSERT_TRUE(r.is_ready());
    EXPECT_EQ(r.value(), kDepth + 7);
  });
}

TEST(TaskDeepTest, MillionDeepSuspendedChainIsDestroyedIteratively) {
  run_on_small_stack([] {
    Poller p;  // outlives `leaf`, which keeps a clone of its waker
    auto [leaf, h] = make_manual_future<int>();
    {
      Task<int> t = chain(kDepth, &leaf);
      ASSERT_TRUE(t.poll(p.cx).is_pending());
      EXPECT_FALSE(h.dropped());
    }
    // `leaf` lives outside the frames; the innermost frame only held a
    // reference, so it is still alive (and still holds its waker).
    EXPECT_FALSE(h.dropped());
  });
}

// Same, but the leaf future is owned by the innermost frame and each frame
// has a local with a destructor.
Task<int> owning_chain(int depth, ManualFuture<int> leaf) {
  Counted c(depth);
  if (depth == 0) co_return co_await leaf;
  co_return c.value + co_await owning_chain(depth - 1, std::move(leaf));
}

TEST(TaskDeepTest, MillionDeepChainDestructionCancelsTheLeafAndEveryLocal) {
  run_on_small_stack([] {
    Counted::reset();
    auto [leaf, h] = make_manual_future<int>();
    {
      Poller p;
      Task<int> t = owning_chain(kDepth, std::move(leaf));
      ASSERT_TRUE(t.poll(p.cx).is_pending());
      EXPECT_EQ(Counted::live(), kDepth + 1);
      EXPECT_TRUE(h.has_waker());
    }
    EXPECT_TRUE(h.dropped());
    EXPECT_FALSE(h.has_waker());
    EXPECT_EQ(Counted::live(), 0);
    EXPECT_EQ(Counted::destructions(), kDepth + 1);
  });
}

TEST(TaskDeepTest, ManySequentialAwaitsOfFinishedChildren) {
  run_on_small_stack([] {
    auto child = [](int i) -> Task<int> { co_return i & 1; };
    // 300,000 start/finish round trips: far more than a 1 MiB stack could
    // hold if each one nested a resume inside the previous one.
    auto loop = [](decltype(child) make, int n) -> Task<int64_t> {
      int64_t sum = 0;
      for (int i = 0; i < n; ++i) sum += co_await make(i);
      co_return sum;
    };
    Poller p;
    Task<int64_t> t = loop(child, 300'000);
    Poll<int64_t> r = t.poll(p.cx);
    ASSERT_TRUE(r.is_ready());
    EXPECT_EQ(r.value(), 150'000);
  });
}

Task<int> throwing_chain(int depth) {
  if (depth == 0) throw std::runtime_error("bottom");
  co_return 1 + co_await throwing_chain(depth - 1);
}

TEST(TaskDeepTest, ExceptionUnwindsADeepChain) {
  // Each level rethrows once, which is slow (microseconds per throw), so this
  // chain is shorter; the stack is still far too small for recursion.
  run_on_small_stack([] {
    Poller p;
    Task<int> t = throwing_chain(100'000);
    EXPECT_THROW((void)t.poll(p.cx), std::runtime_error);
  });
}

}  // namespace
}  // namespace pollux
