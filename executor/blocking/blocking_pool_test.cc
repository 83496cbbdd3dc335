// Tests for BlockingPool: every job runs exactly once, the pool grows to its
// bound and queues beyond it, idle threads exit, shutdown abandons what is
// still queued and refuses new jobs, and many submitting threads at once
// (the TSan run checks the locking).
#include "executor/blocking/blocking_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/watchdog.h"

namespace pollux::blocking {
namespace {

// A gate jobs wait at until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void pass() {
    std::unique_lock lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void wait_for_waiters(int n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return waiting >= n; });
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

// Counts its runs and abandons, then deletes itself (jobs own their memory).
struct CountingJob final : BlockingJob {
  std::atomic<int>* runs;
  std::atomic<int>* abandons;
  Gate* gate;
  CountingJob(std::atomic<int>* r, std::atomic<int>* a, Gate* g) : runs(r), abandons(a), gate(g) {}
  void run() noexcept override {
    if (gate != nullptr) gate->pass();
    runs->fetch_add(1);
    delete this;
  }
  void abandon() noexcept override {
    abandons->fetch_add(1);
    delete this;
  }
};

// Waits (bounded) until `pred` holds; the bound only turns a hang into a failure.
template <class Pred>
bool eventually(Pred pred) {
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!pred()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class BlockingPoolTest : public ::testing::Test {
 protected:
  testing::Watchdog dog_{std::chrono::seconds(60), "blocking pool test"};
};

TEST_F(BlockingPoolTest, EveryJobRunsExactlyOnce) {
  std::atomic<int> runs{0}, abandons{0};
  {
    BlockingPool pool({.max_threads = 4});
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, nullptr)));
    }
    ASSERT_TRUE(eventually([&] { return runs.load() == 1000; }));
    EXPECT_LE(pool.stats().spawned, 4u);
  }
  EXPECT_EQ(runs.load(), 1000);
  EXPECT_EQ(abandons.load(), 0);
}

TEST_F(BlockingPoolTest, GrowsToItsBoundThenQueues) {
  std::atomic<int> runs{0}, abandons{0};
  Gate gate;
  BlockingPool pool({.max_threads = 3});
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, &gate)));
  gate.wait_for_waiters(3);
  BlockingPoolStats s = pool.stats();
  EXPECT_EQ(s.threads, 3u);
  EXPECT_EQ(s.spawned, 3u);
  EXPECT_EQ(s.queued, 4u);
  gate.release();
  ASSERT_TRUE(eventually([&] { return runs.load() == 7; }));
  EXPECT_EQ(pool.stats().spawned, 3u) << "a queued job must reuse a thread, not start one";
}

TEST_F(BlockingPoolTest, AnIdleThreadIsReusedNotDoubled) {
  std::atomic<int> runs{0}, abandons{0};
  BlockingPool pool({.max_threads = 8});
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, nullptr)));
    ASSERT_TRUE(eventually([&] { return runs.load() == i + 1; }));
  }
  // One job at a time, each finished before the next: one thread suffices
  // (a second may start only if a submit raced the first thread going idle).
  EXPECT_LE(pool.stats().spawned, 2u);
}

TEST_F(BlockingPoolTest, IdleThreadsExitAfterKeepAlive) {
  std::atomic<int> runs{0}, abandons{0};
  Gate gate;
  BlockingPool pool({.max_threads = 4, .keep_alive = absl::Milliseconds(20)});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, &gate)));
  gate.wait_for_waiters(4);
  EXPECT_EQ(pool.stats().threads, 4u);
  gate.release();
  ASSERT_TRUE(eventually([&] { return pool.stats().threads == 0; }));
  // And it grows again afterwards (the exited threads are joined on the way).
  ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, nullptr)));
  ASSERT_TRUE(eventually([&] { return runs.load() == 5; }));
  EXPECT_EQ(pool.stats().spawned, 5u);
}

TEST_F(BlockingPoolTest, ShutdownAbandonsQueuedJobsAndRefusesNewOnes) {
  std::atomic<int> runs{0}, abandons{0};
  Gate gate;
  auto pool = std::make_unique<BlockingPool>(BlockingPoolOptions{.max_threads = 1});
  ASSERT_TRUE(pool->submit(new CountingJob(&runs, &abandons, &gate)));
  gate.wait_for_waiters(1);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool->submit(new CountingJob(&runs, &abandons, nullptr)));
  std::thread stopper([&] { pool->shutdown(); });
  // Once shutdown has begun, submit refuses (and the job stays ours).
  CountingJob* refused = new CountingJob(&runs, &abandons, nullptr);
  int accepted_late = 0;
  while (pool->submit(refused)) {
    ++accepted_late;
    refused = new CountingJob(&runs, &abandons, nullptr);
    std::this_thread::yield();
  }
  delete refused;
  gate.release();  // the running job finishes; shutdown abandons the rest
  stopper.join();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(abandons.load(), 5 + accepted_late);
  EXPECT_EQ(pool->stats().threads, 0u);
  CountingJob* after = new CountingJob(&runs, &abandons, nullptr);
  EXPECT_FALSE(pool->submit(after));
  delete after;
  pool.reset();
}

TEST_F(BlockingPoolTest, ManySubmittersAtOnce) {
  std::atomic<int> runs{0}, abandons{0};
  constexpr int kThreads = 8;
  constexpr int kEach = 500;
  {
    BlockingPool pool({.max_threads = 6, .keep_alive = absl::Milliseconds(1)});
    std::vector<std::thread> submitters;
    for (int t = 0; t < kThreads; ++t) {
      submitters.emplace_back([&] {
        for (int i = 0; i < kEach; ++i) {
          EXPECT_TRUE(pool.submit(new CountingJob(&runs, &abandons, nullptr)));
          if (i % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      });
    }
    for (std::thread& t : submitters) t.join();
  }  // the destructor waits for every thread (abandoning what is still queued)
  EXPECT_EQ(runs.load() + abandons.load(), kThreads * kEach);
}

// shutdown_until: a job still running at the deadline is left to its
// detached thread, which finishes it after the pool is gone (the shared
// state outlives the pool); queued jobs are abandoned, idle threads exit.
TEST_F(BlockingPoolTest, ShutdownUntilLeavesARunningJobToItsThread) {
  std::atomic<int> runs{0};
  std::atomic<int> abandons{0};
  Gate gate;
  const absl::Time start = absl::Now();
  {
    BlockingPool pool({.max_threads = 1});
    ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, &gate)));
    ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, nullptr)));  // queued
    gate.wait_for_waiters(1);
    EXPECT_EQ(pool.shutdown_until(absl::Now() + absl::Milliseconds(50)), 1u);
    EXPECT_EQ(pool.stats().detached, 1u);
    auto* refused = new CountingJob(&runs, &abandons, nullptr);
    EXPECT_FALSE(pool.submit(refused));
    delete refused;  // still ours
    pool.shutdown();  // does not wait for the detached thread
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(runs.load(), 0);
  gate.release();
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (runs.load() + abandons.load() < 2 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(abandons.load(), 1);
}

// With nothing running, shutdown_until returns 0 and joins every thread.
TEST_F(BlockingPoolTest, ShutdownUntilWithNothingRunningJoinsEveryThread) {
  std::atomic<int> runs{0};
  std::atomic<int> abandons{0};
  BlockingPool pool;
  ASSERT_TRUE(pool.submit(new CountingJob(&runs, &abandons, nullptr)));
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (runs.load() < 1 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(pool.shutdown_until(absl::Now() + absl::Seconds(10)), 0u);
  EXPECT_EQ(pool.stats().threads, 0u);
  EXPECT_EQ(pool.stats().detached, 0u);
}

}  // namespace
}  // namespace pollux::blocking
