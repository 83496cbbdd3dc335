// Tests for AtomicWaker, UserEvent, CancellationToken and Barrier.
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"
#include "sync/atomic_waker.h"
#include "sync/barrier.h"
#include "sync/cancellation_token.h"
#include "sync/user_event.h"
#include "tests/watchdog.h"

namespace pollux::sync {
namespace {

using pollux::testing::Harness;

#if defined(POLLUX_SANITIZER)
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif

// ---- AtomicWaker ----

TEST(AtomicWakerTest, WakeWakesTheRegisteredWakerOnce) {
  AtomicWaker aw;
  Harness h;
  aw.register_waker(h.waker);
  aw.register_waker(h.waker);  // same task: not cloned again
  EXPECT_EQ(h.cw.clones(), 2) << "the harness's own waker, plus one stored clone";
  aw.wake();
  EXPECT_EQ(h.cw.wakes(), 1);
  aw.wake();  // nothing registered any more
  EXPECT_EQ(h.cw.wakes(), 1);
  EXPECT_EQ(h.cw.live(), 1);
}

// The README's pattern, from a foreign thread, many times: a flag set plus
// a wake is never lost against register-then-recheck.
TEST(AtomicWakerTest, RegisterThenRecheckNeverLosesAForeignWake) {
  struct Flag {
    std::atomic<int> value{0};
    AtomicWaker waker;
  };
  const int rounds = 100'000 / kScale;
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "atomic waker");
  Flag flag;
  std::atomic<int> acked{0};
  std::thread producer([&] {
    for (int i = 1; i <= rounds; ++i) {
      while (acked.load() < i - 1) std::this_thread::yield();
      flag.value.store(i, std::memory_order_release);
      flag.waker.wake();
    }
  });
  LocalExecutor ex;
  ex.block_on([&]() -> Task<void> {
    for (int want = 1; want <= rounds; ++want) {
      co_await poll_fn([&](Context& cx) -> Poll<Unit> {
        if (flag.value.load(std::memory_order_acquire) >= want) return Ready(Unit{});
        flag.waker.register_waker(cx.waker());
        if (flag.value.load(std::memory_order_acquire) >= want) return Ready(Unit{});
        return Pending{};
      });
      acked.store(want);
    }
  }());
  producer.join();
}

// ---- UserEvent ----

TEST(UserEventTest, ASetBeforeTheWaitIsKeptAndSetsCoalesce) {
  UserEvent ev;
  Harness h;
  ev.set();
  ev.set();
  Notified a = ev.wait();
  EXPECT_TRUE(a.poll(h.cx).is_ready());
  Notified b = ev.wait();
  EXPECT_TRUE(b.poll(h.cx).is_pending()) << "two sets while pending are one";
}

// The scenario: set 1,000,000 times from a foreign thread; the
// consumer drains a sequence counter after each wake and never misses the
// last value (a lost wake would hang: the watchdog).
TEST(UserEventTest, AMillionForeignSetsNeverLoseTheLastOne) {
  const int sets = 1'000'000 / kScale;
  pollux::testing::Watchdog dog(std::chrono::seconds(120), "user event");
  UserEvent ev;
  std::atomic<int> seq{0};
  std::thread producer([&] {
    for (int i = 1; i <= sets; ++i) {
      seq.store(i, std::memory_order_release);
      ev.set();
    }
  });
  LocalExecutor ex;
  const int wakes = ex.block_on([&]() -> Task<int> {
    int seen = 0, n = 0;
    while (seen < sets) {
      co_await ev.wait();
      ++n;
      const int now = seq.load(std::memory_order_acquire);
      EXPECT_GE(now, seen) << "the sequence went back";
      seen = now;
    }
    co_return n;
  }());
  producer.join();
  EXPECT_GE(wakes, 1);
  std::fprintf(stderr, "user event: %d sets, %d wakes (coalesced)\n", sets, wakes);
}

// ---- CancellationToken ----

TEST(CancellationTokenTest, CancellingAParentCancelsItsChildrenNotTheReverse) {
  CancellationToken root;
  CancellationToken child = root.child_token();
  CancellationToken grandchild = child.child_token();
  CancellationToken sibling = root.child_token();
  child.cancel();
  EXPECT_TRUE(child.is_cancelled());
  EXPECT_TRUE(grandchild.is_cancelled());
  EXPECT_FALSE(root.is_cancelled()) << "a child never cancels its parent";
  EXPECT_FALSE(sibling.is_cancelled());
  root.cancel();
  EXPECT_TRUE(sibling.is_cancelled());
  CancellationToken late = root.child_token();
  EXPECT_TRUE(late.is_cancelled()) << "a child of a cancelled token starts cancelled";
}

TEST(CancellationTokenTest, CancelledCompletesForWaitersAndCopiesShareTheToken) {
  CancellationToken t;
  CancellationToken copy = t;
  Harness h;
  auto waiting = copy.cancelled();
  ASSERT_TRUE(waiting.poll(h.cx).is_pending());
  t.cancel();
  EXPECT_EQ(h.cw.wakes(), 1);
  EXPECT_TRUE(waiting.poll(h.cx).is_ready());
  auto after = t.cancelled();
  EXPECT_TRUE(after.poll(h.cx).is_ready()) << "already cancelled: at once";
}

TEST(CancellationTokenTest, TheDropGuardCancelsUnlessDisarmed) {
  CancellationToken a, b;
  { auto g = a.drop_guard(); }
  EXPECT_TRUE(a.is_cancelled());
  {
    auto g = b.drop_guard();
    CancellationToken back = std::move(g).disarm();
  }
  EXPECT_FALSE(b.is_cancelled());
}

TEST(CancellationTokenTest, ChildrenThatGoAwayLeaveTheirParent) {
  CancellationToken root;
  for (int i = 0; i < 10'000; ++i) {
    CancellationToken c = root.child_token();
    (void)c;
  }
  // Had the children stayed registered, this cancel would visit 10,000.
  root.cancel();
  EXPECT_TRUE(root.is_cancelled());
}

TEST(CancellationTokenTest, StopsAServerLikeLoopFromAnotherThread) {
  pollux::testing::Watchdog dog(std::chrono::seconds(30), "token stop");
  CancellationToken stop;
  std::thread canceller([stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stop.cancel();
  });
  LocalExecutor ex;
  auto r = ex.block_on(select(stop.cancelled(), pending<int>()));
  EXPECT_EQ(r.index, 0u);
  canceller.join();
}

// ---- Barrier ----

TEST(BarrierTest, ReleasesAllNWithExactlyOneLeaderPerGeneration) {
  Barrier b(3);
  LocalExecutor ex;
  int leaders = 0, released = 0;
  std::vector<JoinHandle<void>> hs;
  for (int gen = 0; gen < 4; ++gen) {
    for (int i = 0; i < 3; ++i) {
      hs.push_back(ex.spawn_local([&]() -> Task<void> {
        BarrierWaitResult r = co_await b.wait();
        if (r.is_leader()) ++leaders;
        ++released;
      }));
    }
  }
  ex.run_until_idle();
  EXPECT_EQ(released, 12);
  EXPECT_EQ(leaders, 4);
}

TEST(BarrierTest, WaitersOfTheNextGenerationWaitForIt) {
  Barrier b(2);
  Harness h1, h2, h3;
  auto w1 = b.wait();
  ASSERT_TRUE(w1.poll(h1.cx).is_pending());
  auto w2 = b.wait();
  auto p2 = w2.poll(h2.cx);
  ASSERT_TRUE(p2.is_ready());
  EXPECT_TRUE(std::move(p2).value().is_leader());
  auto w3 = b.wait();  // the next generation, alone
  ASSERT_TRUE(w3.poll(h3.cx).is_pending());
  auto p1 = w1.poll(h1.cx);
  ASSERT_TRUE(p1.is_ready());
  EXPECT_FALSE(std::move(p1).value().is_leader());
  EXPECT_TRUE(w3.poll(h3.cx).is_pending()) << "released with the previous generation";
}

TEST(BarrierTest, ThreadsMeetAtTheBarrierRepeatedly) {
  constexpr int kThreads = 4;
  const int rounds = 2'000 / kScale;
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "barrier threads");
  Barrier b(kThreads);
  std::atomic<int> leaders{0};
  std::atomic<int> phase_sum{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      LocalExecutor ex;
      ex.block_on([&]() -> Task<void> {
        for (int r = 0; r < rounds; ++r) {
          phase_sum.fetch_add(1);
          BarrierWaitResult res = co_await b.wait();
          if (res.is_leader()) leaders.fetch_add(1);
          // After the barrier every thread has added for this round.
          EXPECT_GE(phase_sum.load(), (r + 1) * kThreads);
        }
      }());
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(leaders.load(), rounds);
}

}  // namespace
}  // namespace pollux::sync
