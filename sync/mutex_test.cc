// Tests for sync::Mutex and sync::RwLock (mutex.h, rwlock.h): FIFO handoff,
// try_lock, a dropped Lock passing the lock on, write preference, and
// threads incrementing a guarded counter (TSan in CI).
#include "sync/mutex.h"

#include <memory>
#include <thread>
#include <vector>

#include "executor/local_executor.h"
#include "future/task.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"
#include "sync/rwlock.h"
#include "tests/watchdog.h"

namespace pollux::sync {
namespace {

using pollux::testing::Harness;

TEST(MutexTest, LockGuardsTheValueAndUnlocksWhenDropped) {
  Mutex<int> m(5);
  Harness h;
  {
    auto l = m.lock();
    auto p = l.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    MutexGuard<int> g = std::move(p).value();
    *g += 1;
    EXPECT_FALSE(m.try_lock().has_value());
  }
  std::optional<MutexGuard<int>> g = m.try_lock();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(**g, 6);
}

TEST(MutexTest, WaitersGetTheLockInTheOrderTheyAsked) {
  Mutex<std::vector<int>> m;
  Harness h0, h1, h2;
  std::optional<MutexGuard<std::vector<int>>> g0 = m.try_lock();
  ASSERT_TRUE(g0.has_value());
  auto l1 = m.lock();
  auto l2 = m.lock();
  ASSERT_TRUE(l2.poll(h2.cx).is_pending());  // l2 queued first
  ASSERT_TRUE(l1.poll(h1.cx).is_pending());
  g0.reset();
  EXPECT_EQ(h2.cw.wakes(), 1);
  EXPECT_EQ(h1.cw.wakes(), 0);
  EXPECT_TRUE(l1.poll(h1.cx).is_pending());
  auto p2 = l2.poll(h2.cx);
  ASSERT_TRUE(p2.is_ready());
  { MutexGuard<std::vector<int>> g2 = std::move(p2).value(); }
  EXPECT_EQ(h1.cw.wakes(), 1);
  EXPECT_TRUE(l1.poll(h1.cx).is_ready());
}

TEST(MutexTest, ADroppedLockFutureHandedTheLockPassesItOn) {
  Mutex<int> m(0);
  Harness ha, hb;
  std::optional<MutexGuard<int>> g = m.try_lock();
  auto a = std::make_unique<Mutex<int>::Lock>(m.lock());
  auto b = m.lock();
  ASSERT_TRUE(a->poll(ha.cx).is_pending());
  ASSERT_TRUE(b.poll(hb.cx).is_pending());
  g.reset();  // the lock goes to a
  a.reset();  // never polled again: it goes to b
  EXPECT_EQ(hb.cw.wakes(), 1);
  EXPECT_TRUE(b.poll(hb.cx).is_ready());
}

TEST(MutexTest, ThreadsIncrementAGuardedCounter) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 5'000;
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "mutex threads");
  Mutex<long> m(0);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      LocalExecutor ex;
      ex.block_on([&]() -> Task<void> {
        for (int i = 0; i < kRounds; ++i) {
          MutexGuard<long> g = co_await m.lock();
          ++*g;
        }
      }());
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(m.get_mut(), long{kThreads} * kRounds);
}

TEST(RwLockTest, ReadersShareAndAWriterExcludesThem) {
  RwLock<int> l(1);
  std::optional<ReadGuard<int>> r1 = l.try_read();
  std::optional<ReadGuard<int>> r2 = l.try_read();
  ASSERT_TRUE(r1 && r2);
  EXPECT_FALSE(l.try_write().has_value());
  r1.reset();
  r2.reset();
  std::optional<WriteGuard<int>> w = l.try_write();
  ASSERT_TRUE(w.has_value());
  **w = 2;
  EXPECT_FALSE(l.try_read().has_value());
  w.reset();
  EXPECT_EQ(**l.try_read(), 2);
}

TEST(RwLockTest, AQueuedWriterIsNotOvertakenByLaterReaders) {
  RwLock<int> l(0);
  Harness hw, hr;
  std::optional<ReadGuard<int>> first = l.try_read();
  auto write = l.write();
  ASSERT_TRUE(write.poll(hw.cx).is_pending());
  auto read = l.read();
  ASSERT_TRUE(read.poll(hr.cx).is_pending()) << "a reader jumped a queued writer";
  EXPECT_FALSE(l.try_read().has_value());
  first.reset();
  EXPECT_EQ(hw.cw.wakes(), 1);
  EXPECT_EQ(hr.cw.wakes(), 0);
  {
    auto p = write.poll(hw.cx);
    ASSERT_TRUE(p.is_ready());
    WriteGuard<int> g = std::move(p).value();
    *g = 7;
  }
  EXPECT_EQ(hr.cw.wakes(), 1);
  auto r = read.poll(hr.cx);
  ASSERT_TRUE(r.is_ready());
  EXPECT_EQ(*std::move(r).value(), 7);
}

TEST(RwLockTest, ADroppedHalfFilledWriterLetsTheReadersBehindItIn) {
  RwLock<int> l(0);
  Harness hw, hr;
  std::optional<ReadGuard<int>> first = l.try_read();
  auto write = std::make_unique<RwLock<int>::Wait<WriteGuard<int>>>(l.write());
  ASSERT_TRUE(write->poll(hw.cx).is_pending());  // took all but one permit
  auto read = l.read();
  ASSERT_TRUE(read.poll(hr.cx).is_pending());
  write.reset();
  EXPECT_EQ(hr.cw.wakes(), 1);
  EXPECT_TRUE(read.poll(hr.cx).is_ready());
}

}  // namespace
}  // namespace pollux::sync
