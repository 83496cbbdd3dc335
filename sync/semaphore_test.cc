// Tests for sync::Semaphore (semaphore.h): fairness (FIFO, a large
// acquire_many at the head is not overtaken), try_acquire not jumping the
// queue, close, permits passed on by dropped waiters, and many threads.
#include "sync/semaphore.h"

#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/task.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"
#include "tests/watchdog.h"

namespace pollux::sync {
namespace {

using pollux::testing::Harness;

TEST(SemaphoreTest, AcquireAndReleaseWithoutWaiting) {
  Semaphore s(3);
  Harness h;
  Acquire a = s.acquire(2);
  Poll<absl::StatusOr<SemaphorePermit>> p = a.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  absl::StatusOr<SemaphorePermit> permit = std::move(p).value();
  ASSERT_TRUE(permit.ok());
  EXPECT_EQ(permit->count(), 2u);
  EXPECT_EQ(s.available_permits(), 1u);
  permit = absl::StatusOr<SemaphorePermit>(absl::CancelledError("drop"));  // releases
  EXPECT_EQ(s.available_permits(), 3u);
}

TEST(SemaphoreTest, WaitersAreServedInOrderAndABigRequestIsNotOvertaken) {
  Semaphore s(0);
  Harness hbig, hsmall;
  Acquire big = s.acquire(5);
  Acquire small = s.acquire(1);
  ASSERT_TRUE(big.poll(hbig.cx).is_pending());
  ASSERT_TRUE(small.poll(hsmall.cx).is_pending());
  s.release(3);  // set aside for the head: the small one behind must not take one
  EXPECT_EQ(hsmall.cw.wakes(), 0);
  EXPECT_EQ(hbig.cw.wakes(), 0);
  EXPECT_FALSE(s.try_acquire(1).ok()) << "try_acquire jumped the queue";
  EXPECT_EQ(s.available_permits(), 0u);
  s.release(3);  // 5 for big, 1 for small
  EXPECT_EQ(hbig.cw.wakes(), 1);
  EXPECT_EQ(hsmall.cw.wakes(), 1);
  auto pb = big.poll(hbig.cx);
  auto ps = small.poll(hsmall.cx);
  ASSERT_TRUE(pb.is_ready() && ps.is_ready());
  {
    absl::StatusOr<SemaphorePermit> bp = std::move(pb).value();
    EXPECT_EQ(bp->count(), 5u);
  }  // released here
  EXPECT_EQ(s.available_permits(), 5u);
}

TEST(SemaphoreTest, ADroppedWaiterGivesBackWhatWasSetAsideAndLosesItsPlace) {
  Semaphore s(0);
  Harness ha, hb;
  auto a = std::make_unique<Acquire>(s.acquire(4));
  Acquire b = s.acquire(2);
  ASSERT_TRUE(a->poll(ha.cx).is_pending());
  ASSERT_TRUE(b.poll(hb.cx).is_pending());
  s.release(3);  // set aside for a
  a.reset();     // its 3 permits go to b (needs 2), 1 is stored
  EXPECT_EQ(hb.cw.wakes(), 1);
  ASSERT_TRUE(b.poll(hb.cx).is_ready());
  EXPECT_EQ(s.available_permits(), 1u + 2u) << "b's permit was released with its result";
}

TEST(SemaphoreTest, AGrantedButUnpolledWaiterThatIsDroppedPassesItsPermitsOn) {
  Semaphore s(0);
  Harness ha, hb;
  auto a = std::make_unique<Acquire>(s.acquire(1));
  Acquire b = s.acquire(1);
  ASSERT_TRUE(a->poll(ha.cx).is_pending());
  ASSERT_TRUE(b.poll(hb.cx).is_pending());
  s.release(1);  // granted to a
  EXPECT_EQ(ha.cw.wakes(), 1);
  a.reset();
  EXPECT_EQ(hb.cw.wakes(), 1);
  EXPECT_TRUE(b.poll(hb.cx).is_ready());
}

TEST(SemaphoreTest, CloseFailsWaitersAndLaterAcquiresWithADistinctStatus) {
  Semaphore s(1);
  Harness h;
  absl::StatusOr<SemaphorePermit> held = s.try_acquire(1);
  ASSERT_TRUE(held.ok());
  Acquire w = s.acquire(1);
  ASSERT_TRUE(w.poll(h.cx).is_pending());
  s.close();
  EXPECT_EQ(h.cw.wakes(), 1);
  auto r = w.poll(h.cx);
  ASSERT_TRUE(r.is_ready());
  absl::StatusOr<SemaphorePermit> failed = std::move(r).value();
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(is_closed_status(failed.status())) << failed.status();
  EXPECT_TRUE(is_closed_status(s.try_acquire(1).status()));
  Acquire later = s.acquire(1);
  auto l = later.poll(h.cx);
  ASSERT_TRUE(l.is_ready());
  EXPECT_TRUE(is_closed_status(std::move(l).value().status()));
  EXPECT_FALSE(is_closed_status(absl::FailedPreconditionError("other")));
}

TEST(SemaphoreTest, TryAcquireSaysWhyItFailed) {
  Semaphore s(1);
  absl::StatusOr<SemaphorePermit> two = s.try_acquire(2);
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().code(), absl::StatusCode::kResourceExhausted) << two.status();
}

TEST(SemaphoreTest, ReleasingToManyWaitersWakesThemAllAcrossBatches) {
  Semaphore s(0);
  std::vector<std::unique_ptr<Acquire>> ws;
  Harness h;
  for (int i = 0; i < 100; ++i) {
    ws.push_back(std::make_unique<Acquire>(s.acquire(1)));
    ASSERT_TRUE(ws.back()->poll(h.cx).is_pending());
  }
  s.release(100);
  EXPECT_EQ(h.cw.wakes(), 100);
  std::vector<SemaphorePermit> permits;
  for (auto& w : ws) {
    auto p = w->poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    permits.push_back(*std::move(p).value());
  }
  EXPECT_EQ(s.available_permits(), 0u);
  permits.clear();
  EXPECT_EQ(s.available_permits(), 100u);
}

// Random acquires (1-3 permits) dropped at random points, with fixed seeds:
// afterwards every permit is back and no waiter is left behind.
TEST(SemaphoreTest, RandomDropsLoseNoPermit) {
  constexpr size_t kPermits = 5;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    Semaphore s(kPermits);
    std::vector<std::unique_ptr<Acquire>> pending;
    std::vector<SemaphorePermit> held;
    Harness h;
    for (int step = 0; step < 10'000; ++step) {
      switch (rng() % 4) {
        case 0: {
          auto a = std::make_unique<Acquire>(s.acquire(1 + rng() % 3));
          auto p = a->poll(h.cx);
          if (p.is_ready()) {
            held.push_back(*std::move(p).value());
          } else {
            pending.push_back(std::move(a));
          }
          break;
        }
        case 1:
          if (!held.empty()) held.erase(held.begin() + rng() % held.size());
          break;
        case 2:
          if (!pending.empty()) pending.erase(pending.begin() + rng() % pending.size());
          break;
        case 3:
          for (size_t i = 0; i < pending.size(); ++i) {
            auto p = pending[i]->poll(h.cx);
            if (p.is_ready()) {
              held.push_back(*std::move(p).value());
              pending.erase(pending.begin() + i);
              break;
            }
          }
          break;
      }
    }
    pending.clear();
    held.clear();
    EXPECT_EQ(s.available_permits(), kPermits) << "seed " << seed;
    EXPECT_EQ(h.cw.live(), 1) << "a waiter kept its waker, seed " << seed;
  }
}

// Four threads, each with its own executor, share three permits; every
// holder checks that at most three hold at once. TSan-clean in CI.
TEST(SemaphoreTest, ThreadsSharePermitsNeverOverCommitted) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 5'000;
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "semaphore threads");
  Semaphore s(3);
  std::atomic<int> holding{0};
  std::atomic<int> max_holding{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      LocalExecutor ex;
      ex.block_on([&]() -> Task<void> {
        for (int i = 0; i < kRounds; ++i) {
          absl::StatusOr<SemaphorePermit> p = co_await s.acquire(1);
          EXPECT_TRUE(p.ok());
          const int now = holding.fetch_add(1) + 1;
          int seen = max_holding.load();
          while (now > seen && !max_holding.compare_exchange_weak(seen, now)) {
          }
          holding.fetch_sub(1);
        }
      }());
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_LE(max_holding.load(), 3);
  EXPECT_EQ(s.available_permits(), 3u);
}

}  // namespace
}  // namespace pollux::sync
