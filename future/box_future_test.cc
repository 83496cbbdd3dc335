// Tests for BoxFuture<T> (box_future.h).
//
// This file replaces the global operator new/delete with counting versions so
// the tests can prove BoxFuture makes exactly one allocation and frees it.
#include "future/box_future.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "future/context.h"
#include "future/future.h"
#include "future/map.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/testing/counted.h"
#include "future/testing/manual_future.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"

// ---------------------------------------------------------------------------
// Counting global allocation functions (every thread; tests read deltas on
// the test thread while no other thread allocates).

namespace {
// Relaxed: plain event counters; tests read them on the thread that allocated.
std::atomic<int64_t> g_news{0};
std::atomic<int64_t> g_deletes{0};
std::atomic<void*> g_last_new{nullptr};
std::atomic<void*> g_last_delete{nullptr};

void* counted_alloc(std::size_t n, std::size_t align) {
  if (n == 0) n = 1;
  void* p = nullptr;
  if (align <= alignof(std::max_align_t)) {
    p = std::malloc(n);
  } else {
    p = std::aligned_alloc(align, (n + align - 1) / align * align);
  }
  if (p == nullptr) throw std::bad_alloc();
  g_news.fetch_add(1, std::memory_order_relaxed);
  g_last_new.store(p, std::memory_order_relaxed);
  return p;
}

void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  g_deletes.fetch_add(1, std::memory_order_relaxed);
  g_last_delete.store(p, std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

namespace pollux {
namespace {

using testing::Counted;
using testing::make_manual_future;
using testing::ManualFuture;

int64_t news() { return g_news.load(std::memory_order_relaxed); }
int64_t deletes() { return g_deletes.load(std::memory_order_relaxed); }

using testing::Harness;

// Wraps a future and records the address it is polled at.
template <class F>
class AddressRecorder {
 public:
  using Output = output_t<F>;
  AddressRecorder(F inner, std::vector<const void*>* addresses)
      : inner_(std::move(inner)), addresses_(addresses) {}
  Poll<Output> poll(Context& cx) {
    addresses_->push_back(this);
    return inner_.poll(cx);
  }

 private:
  F inner_;
  std::vector<const void*>* addresses_;
};

// A future too big for any small-buffer optimisation; Ready(sum of bytes).
struct BigFuture {
  using Output = int;
  std::array<unsigned char, 512> bytes{};
  Counted payload{9};
  Poll<int> poll(Context&) {
    int sum = 0;
    for (unsigned char b : bytes) sum += b;
    return Ready(sum + payload.value);
  }
};

struct alignas(64) OverAlignedFuture {
  using Output = uintptr_t;
  char c = 0;
  Poll<uintptr_t> poll(Context&) { return Ready(reinterpret_cast<uintptr_t>(this)); }
};

struct ThrowingFuture {
  using Output = int;
  Poll<int> poll(Context&) { throw std::runtime_error("boom"); }
};

static_assert(Future<BoxFuture<int>>);
static_assert(Future<BoxFuture<void>>);
static_assert(!std::is_copy_constructible_v<BoxFuture<int>>);
static_assert(!std::is_copy_assignable_v<BoxFuture<int>>);
static_assert(std::is_nothrow_move_constructible_v<BoxFuture<int>>);
static_assert(std::is_nothrow_move_assignable_v<BoxFuture<int>>);
// Only futures with exactly the right output convert.
static_assert(std::is_convertible_v<ReadyFuture<int>, BoxFuture<int>>);
static_assert(!std::is_constructible_v<BoxFuture<int>, ReadyFuture<long>>);
static_assert(!std::is_constructible_v<BoxFuture<int>, ReadyFuture<void>>);
static_assert(!std::is_constructible_v<BoxFuture<int>, int>);

TEST(BoxFutureTest, PollsThroughErasure) {
  Harness h;
  BoxFuture<int> a = ready(5);
  Poll<int> pa = a.poll(h.cx);
  ASSERT_TRUE(pa.is_ready());
  EXPECT_EQ(pa.value(), 5);

  BoxFuture<void> v = ready();
  EXPECT_TRUE(v.poll(h.cx).is_ready());

  BoxFuture<std::unique_ptr<int>> u = ready(std::make_unique<int>(3));
  Poll<std::unique_ptr<int>> pu = u.poll(h.cx);
  ASSERT_TRUE(pu.is_ready());
  EXPECT_EQ(*pu.value(), 3);
}

TEST(BoxFutureTest, HoldsDifferentFutureTypesInOneContainer) {
  Harness h;
  int calls = 0;
  std::vector<BoxFuture<int>> futures;
  futures.emplace_back(ready(1));
  futures.emplace_back(map(ready(1), [](int x) { return x + 1; }));
  futures.emplace_back(poll_fn([&calls](Context&) -> Poll<int> {
    if (++calls < 2) return Pending{};
    return Ready(3);
  }));
  futures.emplace_back(BigFuture{});
  std::vector<int> out(futures.size(), -1);
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < futures.size(); ++i) {
      if (out[i] != -1) continue;
      Poll<int> p = futures[i].poll(h.cx);
      if (p.is_ready()) out[i] = p.value();
    }
  }
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 9}));
  EXPECT_EQ(calls, 2);
}

TEST(BoxFutureTest, PendingAndWakeGoThroughErasure) {
  Harness h;
  auto [fut, handle] = make_manual_future<std::string>();
  BoxFuture<std::string> b = std::move(fut);
  EXPECT_TRUE(b.poll(h.cx).is_pending());
  EXPECT_TRUE(handle.has_waker());
  handle.complete("hi");
  EXPECT_EQ(h.cw.wakes_by_value(), 1);
  Poll<std::string> p = b.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), "hi");
}

TEST(BoxFutureTest, ConstructionMakesExactlyOneAllocation) {
  {
    BigFuture big;
    const int64_t before = news();
    BoxFuture<int> b(std::move(big));
    const int64_t made = news() - before;
    EXPECT_EQ(made, 1);
  }
  {
    // Small futures are boxed too: no small buffer (the future must not move).
    auto small = ready(1);
    const int64_t before = news();
    BoxFuture<int> b(std::move(small));
    const int64_t made = news() - before;
    EXPECT_EQ(made, 1);
  }
}

TEST(BoxFutureTest, FreesItsAllocation) {
  Harness h;
  const int64_t news_before = news();
  const int64_t deletes_before = deletes();
  void* allocation = nullptr;
  int64_t deletes_at_destruction = 0;
  {
    BoxFuture<int> b = BigFuture{};
    allocation = g_last_new.load(std::memory_order_relaxed);
    Poll<int> p = b.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value(), 9);
    EXPECT_EQ(deletes(), deletes_before);  // polling to Ready frees nothing
    deletes_at_destruction = deletes();
  }
  const int64_t freed_at_destruction = deletes() - deletes_at_destruction;
  void* last_freed = g_last_delete.load(std::memory_order_relaxed);
  EXPECT_EQ(freed_at_destruction, 1);
  EXPECT_EQ(last_freed, allocation);
  EXPECT_EQ(news() - news_before, deletes() - deletes_before);
}

TEST(BoxFutureTest, MoveAfterPollKeepsWorkingWithoutReallocating) {
  Harness h;
  std::vector<const void*> addresses;
  auto [fut, handle] = make_manual_future<int>();
  BoxFuture<int> a = AddressRecorder(std::move(fut), &addresses);
  EXPECT_TRUE(a.poll(h.cx).is_pending());

  const int64_t news_before = news();
  const int64_t deletes_before = deletes();
  BoxFuture<int> b = std::move(a);
  BoxFuture<int> c;
  c = std::move(b);
  const int64_t news_in_moves = news() - news_before;
  const int64_t deletes_in_moves = deletes() - deletes_before;
  EXPECT_EQ(news_in_moves, 0);
  EXPECT_EQ(deletes_in_moves, 0);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(c.empty());
  EXPECT_FALSE(handle.dropped());

  EXPECT_TRUE(c.poll(h.cx).is_pending());
  std::thread t([handle = handle]() mutable { handle.complete(11); });
  t.join();
  EXPECT_EQ(h.cw.wakes_by_value(), 1);
  Poll<int> p = c.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 11);
  ASSERT_EQ(addresses.size(), 3u);
  EXPECT_EQ(addresses[0], addresses[1]);  // the boxed future itself never moved
  EXPECT_EQ(addresses[1], addresses[2]);
}

TEST(BoxFutureTest, MovingABoxFutureDoesNotReBox) {
  BoxFuture<int> a = ready(1);
  const int64_t before = news();
  BoxFuture<int> b(std::move(a));
  const int64_t made = news() - before;
  EXPECT_EQ(made, 0);
  Harness h;
  Poll<int> p = b.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value(), 1);
}

TEST(BoxFutureTest, MoveAssignDropsTheOldFuture) {
  Counted::reset();
  auto [fut, handle] = make_manual_future<int>();
  BoxFuture<int> a = std::move(fut);
  BoxFuture<int> b = map(ready(Counted(2)), [](Counted c) { return c.value; });
  EXPECT_EQ(Counted::live(), 1);
  const int64_t deletes_before = deletes();
  b = std::move(a);
  const int64_t freed = deletes() - deletes_before;
  EXPECT_EQ(freed, 1);
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_FALSE(handle.dropped());
  b.reset();
  EXPECT_TRUE(handle.dropped());
}

TEST(BoxFutureTest, CountedInsideDestroyedExactlyOnce) {
  Counted::reset();
  {
    Harness h;
    BoxFuture<Counted> polled = ready(Counted(1));
    BoxFuture<Counted> unpolled = ready(Counted(2));
    BoxFuture<int> fn_capture = map(ready(3), [c = Counted(4)](int x) { return x + c.value; });
    EXPECT_EQ(Counted::live(), 3);
    Poll<Counted> p = polled.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(p.value().value, 1);
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(BoxFutureTest, ResetDropsTheFutureAndFrees) {
  auto [fut, handle] = make_manual_future<void>();
  BoxFuture<void> b = std::move(fut);
  EXPECT_FALSE(b.empty());
  const int64_t deletes_before = deletes();
  b.reset();
  const int64_t freed = deletes() - deletes_before;
  EXPECT_EQ(freed, 1);
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(handle.dropped());
  b.reset();
  EXPECT_EQ(deletes() - deletes_before, 1);  // a second reset frees nothing
}

TEST(BoxFutureTest, EmptyBoxFutureOwnsNothing) {
  const int64_t news_before = news();
  const int64_t deletes_before = deletes();
  {
    BoxFuture<int> e;
    EXPECT_TRUE(e.empty());
    BoxFuture<int> m = std::move(e);
    EXPECT_TRUE(m.empty());
  }
  const int64_t news_made = news() - news_before;
  const int64_t deletes_made = deletes() - deletes_before;
  EXPECT_EQ(news_made, 0);
  EXPECT_EQ(deletes_made, 0);
}

TEST(BoxFutureTest, OverAlignedFutureIsAligned) {
  Harness h;
  BoxFuture<uintptr_t> b = OverAlignedFuture{};
  Poll<uintptr_t> p = b.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(p.value() % 64, 0u);
}

TEST(BoxFutureTest, ThrowPropagatesAndBoxIsStillFreed) {
  Harness h;
  const int64_t news_before = news();
  const int64_t deletes_before = deletes();
  {
    BoxFuture<int> b = ThrowingFuture{};
    EXPECT_THROW((void)b.poll(h.cx), std::runtime_error);
  }
  const int64_t news_made = news() - news_before;
  const int64_t deletes_made = deletes() - deletes_before;
  EXPECT_EQ(news_made, deletes_made);
}

#ifndef NDEBUG
TEST(BoxFutureDeathTest, PollingEmptyAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        BoxFuture<int> b;
        (void)b.poll(h.cx);
      },
      "polled an empty \\(moved-from or reset\\) BoxFuture");
}

TEST(BoxFutureDeathTest, PollAfterReadyAbortsThroughErasure) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Harness h;
        BoxFuture<int> b = ready(1);
        (void)b.poll(h.cx);
        (void)b.poll(h.cx);
      },
      "ready\\(\\) future polled after it returned Ready");
}
#endif

}  // namespace
}  // namespace pollux
