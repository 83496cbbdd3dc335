#include "future/task.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "future/box_future.h"
#include "future/internal/frame_allocator.h"
#include "future/join.h"
#include "future/map.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/select.h"
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
using testing::ManualHandle;

static_assert(Future<Task<int>>);
static_assert(Future<Task<void>>);
static_assert(Future<Task<int&>>);
static_assert(Future<Task<std::unique_ptr<int>>>);
static_assert(std::is_same_v<output_t<Task<int&>>, int&>);
static_assert(!std::is_copy_constructible_v<Task<int>>);
static_assert(std::is_nothrow_move_constructible_v<Task<int>>);

// Polls a future by hand, as an executor would.
class Poller {
 public:
  Poller() : waker_(cw_.waker()), cx_(waker_, budget_) {}
  template <class F>
  auto poll(F& f) {
    return f.poll(cx_);
  }
  Context& cx() { return cx_; }
  CountingWaker& cw() { return cw_; }

  // Waits (bounded) until the waker has been woken more than `seen` times.
  bool wait_for_wake(int64_t seen) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (cw_.wakes() <= seen) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
    return true;
  }

 private:
  Budget budget_ = Budget::unlimited();
  CountingWaker cw_;
  Waker waker_;
  Context cx_;
};

template <class T>
uint64_t resumed(const Task<T>& t) {
  return detail::TaskAccess::frames_resumed(t);
}

// ---------------------------------------------------------------------------
// Basics

Task<int> add(int a, int b) { co_return a + b; }

TEST(TaskTest, IsLazyAndReadyOnFirstPoll) {
  bool ran = false;
  auto body = [](bool& ran) -> Task<int> {
    ran = true;
    co_return 7;
  };
  Task<int> t = body(ran);
  EXPECT_FALSE(ran);
  Poller p;
  Poll<int> r = p.poll(t);
  EXPECT_TRUE(ran);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 7);
}

TEST(TaskTest, AwaitsReadyFuturesWithoutSuspending) {
  auto body = []() -> Task<int> {
    int sum = 0;
    for (int i = 0; i < 100; ++i) sum += co_await ready(i);
    co_await ready();  // a void future
    co_return sum;
  };
  Poller p;
  Task<int> t = body();
  Poll<int> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 4950);
  EXPECT_EQ(resumed(t), 1u);  // the frame never suspended on a future
}

TEST(TaskTest, AwaitsLvalueFutureInPlace) {
  auto [fut, h] = make_manual_future<int>();
  auto body = [](ManualFuture<int>& f) -> Task<int> { co_return co_await f + 1; };
  Poller p;
  Task<int> t = body(fut);
  EXPECT_TRUE(p.poll(t).is_pending());
  h.complete(41);
  Poll<int> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(h.polls(), 2);
  EXPECT_FALSE(h.dropped());  // the future lives outside the frame
}

TEST(TaskTest, ManualFutureCompletedFromAnotherThread) {
  auto [fut, h] = make_manual_future<std::string>();
  auto body = [](ManualFuture<std::string> f) -> Task<std::string> {
    std::string s = co_await std::move(f);
    co_return s + "!";
  };
  {
    Poller p;
    Task<std::string> t = body(std::move(fut));
    ASSERT_TRUE(p.poll(t).is_pending());
    ASSERT_TRUE(h.has_waker());
    const int64_t seen = p.cw().wakes();
    std::thread completer([&h = h] { h.complete("hi"); });
    ASSERT_TRUE(p.wait_for_wake(seen));
    completer.join();
    Poll<std::string> r = p.poll(t);
    ASSERT_TRUE(r.is_ready());
    EXPECT_EQ(r.value(), "hi!");
    EXPECT_EQ(p.cw().live(), 1);  // only the Poller's own waker is left
    // `f` is a parameter: it lives in the frame until the Task is destroyed.
    EXPECT_FALSE(h.dropped());
  }
  EXPECT_TRUE(h.dropped());
}

TEST(TaskTest, RepollUsesTheNewContextsWaker) {
  auto [fut, h] = make_manual_future<int>();
  auto body = [](ManualFuture<int> f) -> Task<int> { co_return co_await std::move(f); };
  Task<int> t = body(std::move(fut));
  CountingWaker a, b;
  Budget budget = Budget::unlimited();
  {
    Waker wa = a.waker();
    Context cx(wa, budget);
    ASSERT_TRUE(t.poll(cx).is_pending());
  }
  {
    Waker wb = b.waker();
    Context cx(wb, budget);
    ASSERT_TRUE(t.poll(cx).is_pending());
  }
  h.complete(5);
  EXPECT_EQ(a.wakes(), 0);
  EXPECT_EQ(b.wakes(), 1);
  Poller p;
  Poll<int> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 5);
  EXPECT_EQ(a.live(), 0);
  EXPECT_EQ(b.live(), 0);
}

TEST(TaskTest, TaskVoid) {
  auto [fut, h] = make_manual_future<void>();
  int steps = 0;
  auto inner = [](ManualFuture<void> f, int& steps) -> Task<void> {
    ++steps;
    co_await std::move(f);
    ++steps;
  };
  auto outer = [&](ManualFuture<void> f) -> Task<> {
    co_await inner(std::move(f), steps);
    ++steps;
    co_return;
  };
  Poller p;
  Task<void> t = outer(std::move(fut));
  EXPECT_TRUE(p.poll(t).is_pending());
  EXPECT_EQ(steps, 1);
  h.complete();
  EXPECT_TRUE(p.poll(t).is_ready());
  EXPECT_EQ(steps, 3);
}

TEST(TaskTest, MoveOnlyOutput) {
  auto [fut, h] = make_manual_future<std::unique_ptr<int>>();
  auto inner = [](ManualFuture<std::unique_ptr<int>> f) -> Task<std::unique_ptr<int>> {
    std::unique_ptr<int> v = co_await std::move(f);
    *v += 1;
    co_return v;  // implicitly moved
  };
  auto outer = [&](ManualFuture<std::unique_ptr<int>> f) -> Task<std::unique_ptr<int>> {
    std::unique_ptr<int> v = co_await inner(std::move(f));
    co_return std::make_unique<int>(*v * 2);
  };
  Poller p;
  Task<std::unique_ptr<int>> t = outer(std::move(fut));
  EXPECT_TRUE(p.poll(t).is_pending());
  h.complete(std::make_unique<int>(20));
  Poll<std::unique_ptr<int>> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(*r.value(), 42);
}

TEST(TaskTest, ReferenceOutput) {
  int slots[3] = {1, 2, 3};
  auto pick = [](int* s, int i) -> Task<int&> { co_return s[i]; };
  auto outer = [&](int* s) -> Task<int&> {
    int& r = co_await pick(s, 1);
    r = 20;
    co_return co_await pick(s, 2);
  };
  Poller p;
  Task<int&> t = outer(slots);
  Poll<int&> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(&r.value(), &slots[2]);
  EXPECT_EQ(slots[1], 20);
}

TEST(TaskTest, BracedCoReturnAndConversion) {
  auto pair = []() -> Task<std::pair<int, std::string>> { co_return {1, "one"}; };
  auto widen = []() -> Task<long> { co_return 3; };
  Task<std::pair<int, std::string>> t1 = pair();
  Poller p;
  Task<long> t2 = widen();
  Poll<std::pair<int, std::string>> r1 = p.poll(t1);
  ASSERT_TRUE(r1.is_ready());
  EXPECT_EQ(r1.value().second, "one");
  Poll<long> r2 = p.poll(t2);
  ASSERT_TRUE(r2.is_ready());
  EXPECT_EQ(r2.value(), 3);
}

TEST(TaskTest, AwaitsLvalueTask) {
  auto outer = []() -> Task<int> {
    Task<int> child = add(2, 3);
    int a = co_await child;
    co_return a + co_await add(10, 20);
  };
  Poller p;
  Task<int> t = outer();
  Poll<int> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 35);
}

TEST(TaskTest, PollFnPollsByHand) {
  auto body = []() -> Task<int> {
    int calls = 0;
    int v = co_await poll_fn([&](Context& cx) -> Poll<int> {
      if (++calls < 3) {
        cx.waker().wake_by_ref();
        return Pending{};
      }
      return Ready(7 * calls);
    });
    co_return v;
  };
  Poller p;
  Task<int> t = body();
  EXPECT_TRUE(p.poll(t).is_pending());
  EXPECT_EQ(p.cw().wakes(), 1);
  EXPECT_TRUE(p.poll(t).is_pending());
  EXPECT_EQ(p.cw().wakes(), 2);
  Poll<int> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 21);
}

TEST(TaskTest, IsAFutureForCombinators) {
  auto [f1, h1] = make_manual_future<int>();
  auto [f2, h2] = make_manual_future<int>();
  auto wait = [](ManualFuture<int> f) -> Task<int> { co_return co_await std::move(f); };
  auto both = join(wait(std::move(f1)), map(wait(std::move(f2)), [](int x) { return x * 10; }));
  Poller p;
  BoxFuture<std::tuple<int, int>> boxed(std::move(both));
  EXPECT_TRUE(p.poll(boxed).is_pending());
  h2.complete(4);
  EXPECT_TRUE(p.poll(boxed).is_pending());
  h1.complete(3);
  Poll<std::tuple<int, int>> r = p.poll(boxed);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), std::make_tuple(3, 40));
}

// ---------------------------------------------------------------------------
// Mixed chains: coroutine -> hand-written future -> coroutine.

// A hand-written future that waits on a ManualFuture and doubles its value.
class Doubler {
 public:
  using Output = int;
  explicit Doubler(ManualFuture<int> f) : inner_(std::move(f)) {}
  Poll<int> poll(Context& cx) {
    ++polls;
    return inner_.poll(cx).map([](int v) { return v * 2; });
  }
  int polls = 0;

 private:
  ManualFuture<int> inner_;
};

TEST(TaskTest, MixedChainCompletedFromAnotherThread) {
  auto [work, work_h] = make_manual_future<int>();
  auto [other, other_h] = make_manual_future<int>();
  Counted::reset();
  auto middle = [](ManualFuture<int> f) -> Task<int> {
    Counted c(1);
    int v = co_await Doubler(std::move(f));
    co_return v + c.value;
  };
  auto outer = [&](ManualFuture<int> w, ManualFuture<int> o) -> Task<int> {
    Counted c(2);
    // select is a hand-written combinator polling the middle Task as its own root.
    auto res = co_await select(middle(std::move(w)), std::move(o));
    EXPECT_EQ(res.index, 0u);
    co_return std::get<0>(res.value) * 100 + c.value;
  };
  {
    Poller p;
    Task<int> t = outer(std::move(work), std::move(other));
    ASSERT_TRUE(p.poll(t).is_pending());
    ASSERT_TRUE(p.poll(t).is_pending());  // a spurious re-poll
    EXPECT_EQ(Counted::live(), 2);
    EXPECT_EQ(work_h.polls(), 2);
    EXPECT_EQ(other_h.polls(), 2);
    const int64_t seen = p.cw().wakes();
    std::thread completer([&h = work_h] { h.complete(20); });
    ASSERT_TRUE(p.wait_for_wake(seen));
    completer.join();
    Poll<int> r = p.poll(t);
    ASSERT_TRUE(r.is_ready());
    EXPECT_EQ(r.value(), (20 * 2 + 1) * 100 + 2);
    EXPECT_TRUE(other_h.dropped());  // the loser was destroyed at once
    EXPECT_TRUE(work_h.dropped());
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(TaskTest, MixedChainLoserBranchWins) {
  auto [work, work_h] = make_manual_future<int>();
  auto [other, other_h] = make_manual_future<int>();
  Counted::reset();
  auto middle = [](ManualFuture<int> f) -> Task<int> {
    Counted c(1);
    co_return co_await Doubler(std::move(f));
  };
  auto outer = [&](ManualFuture<int> w, ManualFuture<int> o) -> Task<int> {
    auto res = co_await select(middle(std::move(w)), std::move(o));
    co_return static_cast<int>(res.index);
  };
  Poller p;
  Task<int> t = outer(std::move(work), std::move(other));
  ASSERT_TRUE(p.poll(t).is_pending());
  EXPECT_EQ(Counted::live(), 1);
  std::thread completer([&h = other_h] { h.complete(1); });
  completer.join();
  Poll<int> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 1);
  // The losing Task was cancelled: its frame, its local and its leaf are gone.
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_TRUE(work_h.dropped());
}

// ---------------------------------------------------------------------------
// The cost of a poll does not grow with the depth of the chain.

Task<int> nest(int depth, ManualFuture<int>& leaf) {
  if (depth == 0) co_return co_await leaf;
  co_return 1 + co_await nest(depth - 1, leaf);
}

TEST(TaskTest, RepollCostDoesNotGrowWithDepth) {
  constexpr int kDepth = 1000;
  auto [leaf, h] = make_manual_future<int>();
  Poller p;
  Task<int> t = nest(kDepth, leaf);
  ASSERT_TRUE(p.poll(t).is_pending());
  // The first poll ran each of the kDepth + 1 frames once.
  EXPECT_EQ(resumed(t), uint64_t{kDepth + 1});
  EXPECT_EQ(h.polls(), 1);
  for (int i = 1; i <= 10; ++i) {
    h.wake_spuriously();
    ASSERT_TRUE(p.poll(t).is_pending());
    EXPECT_EQ(h.polls(), 1 + i) << "each re-poll polls the leaf exactly once";
    EXPECT_EQ(resumed(t), uint64_t{kDepth + 1}) << "a re-poll while pending resumes no frame";
  }
  h.complete(0);
  Poll<int> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), kDepth);
  EXPECT_EQ(h.polls(), 12);
  // Completion resumed the innermost frame, then each parent once.
  EXPECT_EQ(resumed(t), uint64_t{2 * (kDepth + 1)});
}

// ---------------------------------------------------------------------------
// Cancellation: destroying a suspended chain at every suspension point.

// Hands out ManualFutures and remembers their handles, in order.
struct Script {
  ManualFuture<int> next() {
    auto [f, h] = make_manual_future<int>();
    handles.push_back(h);
    return std::move(f);
  }
  std::vector<ManualHandle<int>> handles;
};

Task<int> level3(Script& s) {
  Counted a(3);
  int x = co_await s.next();
  Counted b(x);
  int y = co_await s.next();
  co_return a.value + b.value + y;
}

Task<int> level2(Script& s) {
  Counted a(2);
  int x = co_await s.next();
  Counted b(x);
  int y = co_await level3(s);
  Counted c(y);
  int z = co_await s.next();
  co_return a.value + b.value + c.value + z;
}

Task<int> level1(Script& s) {
  Counted a(1);
  int x = co_await s.next();
  int y = co_await level2(s);
  Counted b(y);
  int z = co_await s.next();
  co_return a.value + x + b.value + z;
}

// Suspension points, in order: level1 x, level2 x, level3 x, level3 y,
// level2 z, level1 z.
constexpr int kSuspensionPoints = 6;
// How many Counted locals exist (or existed) by the time each point is reached.
constexpr int64_t kConstructedBy[kSuspensionPoints] = {1, 2, 4, 5, 6, 7};

TEST(TaskTest, DestroyAtEverySuspensionPointDestroysEachLocalOnce) {
  for (int stop = 0; stop < kSuspensionPoints; ++stop) {
    SCOPED_TRACE("destroyed at suspension point " + std::to_string(stop));
    Counted::reset();
    Script s;
    {
      Poller p;
      Task<int> t = level1(s);
      ASSERT_TRUE(p.poll(t).is_pending());
      for (int i = 0; i < stop; ++i) {
        ASSERT_EQ(s.handles.size(), size_t(i + 1));
        s.handles.back().complete(10);
        ASSERT_TRUE(p.poll(t).is_pending());
      }
      ASSERT_EQ(s.handles.size(), size_t(stop + 1));
      EXPECT_GT(Counted::live(), 0);
      EXPECT_FALSE(s.handles.back().dropped());
      EXPECT_TRUE(s.handles.back().has_waker());
    }
    EXPECT_EQ(Counted::live(), 0) << "every local destroyed exactly once";
    EXPECT_EQ(Counted::destructions(), kConstructedBy[stop]);
    for (auto& h : s.handles) EXPECT_TRUE(h.dropped());
    EXPECT_FALSE(s.handles.back().has_waker());
  }
}

TEST(TaskTest, ThreeLevelChainRunsToCompletion) {
  Counted::reset();
  Script s;
  {
    Poller p;
    Task<int> t = level1(s);
    ASSERT_TRUE(p.poll(t).is_pending());
    for (int i = 0; i < kSuspensionPoints - 1; ++i) {
      s.handles.back().complete(10);
      ASSERT_TRUE(p.poll(t).is_pending());
    }
    s.handles.back().complete(10);
    Poll<int> r = p.poll(t);
    ASSERT_TRUE(r.is_ready());
    // level3 = 3 + 10 + 10; level2 = 2 + 10 + 23 + 10; level1 = 1 + 10 + 45 + 10.
    EXPECT_EQ(r.value(), 66);
    EXPECT_EQ(Counted::live(), 0);  // locals die when each body ends
  }
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(Counted::destructions(), 7);
}

TEST(TaskTest, DroppingAnUnpolledTaskDestroysItsArguments) {
  Counted::reset();
  auto body = [](Counted c) -> Task<int> { co_return c.value; };
  {
    Task<int> t = body(Counted(4));
    EXPECT_GE(Counted::live(), 1);
  }
  EXPECT_EQ(Counted::live(), 0);
}

// ---------------------------------------------------------------------------
// Exceptions.

Task<int> thrower(ManualFuture<int> f, const char* what) {
  Counted c(0);
  co_await std::move(f);
  throw std::runtime_error(what);
}

Task<int> middle_catches(Script& s) {
  Counted c(0);
  int caught = 0;
  try {
    co_await thrower(s.next(), "first");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
    caught = 1;
  }
  Counted d(caught);
  // The second one is not caught here: it propagates to the root.
  co_return caught + co_await thrower(s.next(), "second");
}

Task<int> root_does_not_catch(Script& s) {
  Counted c(0);
  int v = co_await middle_catches(s);
  ADD_FAILURE() << "the root continued after its child threw";
  co_return v;
}

TEST(TaskTest, ExceptionsPropagateAcrossThreeLevels) {
  Counted::reset();
  Script s;
  {
    Poller p;
    Task<int> t = root_does_not_catch(s);
    ASSERT_TRUE(p.poll(t).is_pending());
    s.handles.back().complete(1);
    ASSERT_TRUE(p.poll(t).is_pending());  // caught in the middle, now on the second
    EXPECT_EQ(s.handles.size(), 2u);
    EXPECT_EQ(Counted::live(), 4);  // root c, middle c and d, second thrower's c
    s.handles.back().complete(1);
    try {
      (void)p.poll(t);
      ADD_FAILURE() << "poll did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "second");
    }
    // Every body has unwound; the frames themselves go with `t`.
    EXPECT_EQ(Counted::live(), 0);
  }
  EXPECT_EQ(Counted::live(), 0);
}

// A future that returns Pending once, then throws from its poll.
struct ThrowsOnSecondPoll {
  using Output = int;
  Poll<int> poll(Context& cx) {
    if (polls++ == 0) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    throw std::logic_error("poll threw");
  }
  int polls = 0;
};

TEST(TaskTest, LeafPollExceptionIsThrownAtTheCoAwait) {
  auto body = []() -> Task<std::string> {
    try {
      co_await ThrowsOnSecondPoll{};
    } catch (const std::logic_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not thrown";
  };
  Poller p;
  Task<std::string> t = body();
  ASSERT_TRUE(p.poll(t).is_pending());
  Poll<std::string> r = p.poll(t);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), "caught poll threw");
}

TEST(TaskTest, FirstPollExceptionIsThrownAtTheCoAwait) {
  auto body = []() -> Task<int> {
    co_await poll_fn([](Context&) -> Poll<int> { throw std::out_of_range("first poll"); });
    co_return 0;
  };
  Poller p;
  Task<int> t = body();
  EXPECT_THROW((void)p.poll(t), std::out_of_range);
}

TEST(TaskDeathTest, PollingAFinishedTaskDies) {
  Poller p;
  Task<int> t = add(1, 2);
  ASSERT_TRUE(p.poll(t).is_ready());
  EXPECT_DEATH((void)p.poll(t), "Task polled after it completed");
}

TEST(TaskDeathTest, PollingATaskThatThrewDies) {
  auto body = []() -> Task<int> {
    throw std::runtime_error("x");
    co_return 0;
  };
  Poller p;
  Task<int> t = body();
  EXPECT_THROW((void)p.poll(t), std::runtime_error);
  EXPECT_DEATH((void)p.poll(t), "Task polled after it completed");
}

TEST(TaskDeathTest, AwaitingATaskTwiceDies) {
  auto body = []() -> Task<int> {
    Task<int> child = add(1, 2);
    int a = co_await child;
    int b = co_await child;
    co_return a + b;
  };
  Poller p;
  Task<int> t = body();
  EXPECT_DEATH((void)p.poll(t), "co_await on a Task that already ran");
}

TEST(TaskDeathTest, PollingAnEmptyTaskDies) {
  Poller p;
  Task<int> t;
  EXPECT_DEATH((void)p.poll(t), "polled an empty");
}

// ---------------------------------------------------------------------------
// Frame allocator.

TEST(FrameAllocatorTest, SimilarSizesReuseTheSameBlock) {
  void* a = detail::frame_alloc(100);
  detail::frame_free(a, 100);
  void* b = detail::frame_alloc(120);  // same 64-byte class (65..128)
#ifndef POLLUX_SANITIZER
  EXPECT_EQ(a, b);
#endif
  detail::frame_free(b, 120);
  // Large frames bypass the lists.
  void* big = detail::frame_alloc(detail::kMaxPooledFrame + 1);
  detail::frame_free(big, detail::kMaxPooledFrame + 1);
  EXPECT_EQ(detail::frame_cache_count(detail::kMaxPooledFrame + 1), 0u);
}

TEST(FrameAllocatorTest, TaskFramesAreReused) {
  [[maybe_unused]] void* first;
  {
    Task<int> t = add(1, 2);
    first = detail::TaskAccess::frame_address(t);
  }
  Task<int> t2 = add(3, 4);
#ifndef POLLUX_SANITIZER
  EXPECT_EQ(detail::TaskAccess::frame_address(t2), first);
#endif
  Poller p;
  Poll<int> r = p.poll(t2);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(r.value(), 7);
}

TEST(FrameAllocatorTest, ListsAreCapped) {
  constexpr size_t kSize = 200;
  const size_t cap = detail::frame_cache_capacity(kSize);
  std::vector<void*> blocks;
  for (size_t i = 0; i < cap * 3; ++i) blocks.push_back(detail::frame_alloc(kSize));
  for (void* b : blocks) detail::frame_free(b, kSize);
#ifndef POLLUX_SANITIZER
  EXPECT_EQ(detail::frame_cache_count(kSize), cap);
#else
  EXPECT_EQ(detail::frame_cache_count(kSize), 0u);
#endif
}

TEST(FrameAllocatorTest, FramesFreedOnAnotherThreadJoinThatThreadsList) {
  Task<int> t = add(5, 6);
  void* frame = detail::TaskAccess::frame_address(t);
  std::thread other([t = std::move(t), frame]() mutable {
    Poller p;
    Poll<int> r = p.poll(t);
    ASSERT_TRUE(r.is_ready());
    EXPECT_EQ(r.value(), 11);
    t = Task<int>();  // frees the frame on this thread
    Task<int> again = add(1, 1);
#ifndef POLLUX_SANITIZER
    EXPECT_EQ(detail::TaskAccess::frame_address(again), frame);
#endif
    (void)frame;
  });
  other.join();
}

}  // namespace
}  // namespace pollux
