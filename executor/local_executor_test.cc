// Tests for LocalExecutor (local_executor.h) and spawn_local (spawn.h):
// block_on and run_until_idle, wakes from this and other threads (including
// wakes racing the poll that registered them), wake coalescing, wakers that
// outlive the executor, scale, exceptions, shutdown, tick fairness, the coop
// budget, and the misuse checks.
#include "executor/local_executor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "executor/driver.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "executor/testing/executor_fixtures.h"
#include "executor/thread_parker.h"
#include "future/map.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "future/testing/manual_future.h"
#include "gtest/gtest.h"
#include "tests/sanitizers.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::make_manual_future;
using testing::ManualHandle;

using testing::CountingDriver;
using testing::ExecutorTest;
using testing::Probe;
using testing::ProbeLog;
using testing::Watchdog;

// Pending forever, without registering anything (fine for shutdown tests).
struct Never {
  using Output = int;
  Poll<int> poll(Context&) { return Pending{}; }
};

// Yields `n` times (waking itself), then completes, counting completions.
struct Yielder {
  using Output = void;
  int left;
  int* completed;
  Poll<void> poll(Context& cx) {
    if (left-- > 0) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    if (completed != nullptr) ++*completed;
    return Ready{};
  }
};

class LocalExecutorTest : public ExecutorTest {};

// ---------------------------------------------------------------------------
// block_on, spawn, run_until_idle

TEST_F(LocalExecutorTest, BlockOnReturnsTheRootsOutput) {
  LocalExecutor ex;
  EXPECT_EQ(ex.block_on(ready(42)), 42);
  ex.block_on(ready());
  auto p = ex.block_on(ready(std::make_unique<int>(7)));
  EXPECT_EQ(*p, 7);
}

TEST_F(LocalExecutorTest, BlockOnRunsSpawnedTasksWhileItWaits) {
  LocalExecutor ex;
  int completed = 0;
  for (int i = 0; i < 10; ++i) ex.spawn_local(Yielder{i, &completed}).detach();
  auto last = ex.spawn_local(Yielder{20, &completed});
  EXPECT_TRUE(ex.block_on(std::move(last)).ok());
  EXPECT_EQ(completed, 11);
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

TEST_F(LocalExecutorTest, TasksRunInSpawnOrderAndARequeuedTaskGoesToTheBack) {
  LocalExecutor ex;
  std::vector<int> order;
  for (int id = 0; id < 4; ++id) {
    ex.spawn_local(poll_fn([&order, id, first = true](Context& cx) mutable -> Poll<void> {
        order.push_back(id);
        if (id == 1 && first) {  // woken during its poll: after 2 and 3
          first = false;
          cx.waker().wake_by_ref();
          return Pending{};
        }
        return Ready{};
      })).detach();
  }
  EXPECT_EQ(ex.run_until_idle(), 5u);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 1}));
}

TEST_F(LocalExecutorTest, SpawnLocalInsideATaskSpawnsOntoTheSameExecutor) {
  LocalExecutor ex;
  int completed = 0;
  auto parent = ex.spawn_local(poll_fn([&completed, children = std::vector<JoinHandle<void>>()](
                                           Context& cx) mutable -> Poll<int> {
    if (children.empty()) {
      for (int i = 0; i < 5; ++i) children.push_back(spawn_local(Yielder{i, &completed}));
    }
    if (completed < 5) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready(completed);
  }));
  EXPECT_EQ(ex.pending_tasks(), 1u);
  EXPECT_EQ(ex.block_on(std::move(parent)).value(), 5);
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

TEST_F(LocalExecutorTest, RunUntilIdleReturnsWhenNothingIsRunnableWithoutParking) {
  CountingDriver driver;
  LocalExecutor ex(driver);
  EXPECT_EQ(ex.run_until_idle(), 0u);
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(std::move(fut));
  int completed = 0;
  ex.spawn_local(Yielder{3, &completed}).detach();
  EXPECT_EQ(ex.run_until_idle(), 5u);  // 1 + 4 polls; the manual task is still pending
  EXPECT_EQ(completed, 1);
  EXPECT_EQ(ex.pending_tasks(), 1u);
  EXPECT_EQ(ex.run_until_idle(), 0u);
  EXPECT_EQ(driver.parks.load(), 0) << "run_until_idle must never park";
  std::thread([m = manual]() mutable { m.complete(1); }).join();
  EXPECT_EQ(ex.run_until_idle(), 1u);  // the remote wake is picked up
  EXPECT_EQ(ex.pending_tasks(), 0u);
  EXPECT_EQ(driver.parks.load(), 0);
  EXPECT_EQ(ex.block_on(std::move(h)).value(), 1);
}

TEST_F(LocalExecutorTest, ExternalDriverIsParkedOnlyWhenNothingIsRunnable) {
  CountingDriver driver;
  LocalExecutor ex(driver);
  auto [fut, manual] = make_manual_future<int>();
  std::thread completer([m = manual, &driver]() mutable {
    while (driver.parks.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    m.complete(3);
  });
  EXPECT_EQ(ex.block_on(std::move(fut)), 3);
  completer.join();
  EXPECT_GE(driver.parks.load(), 1);
  EXPECT_GE(driver.unparks(), 1);
}

// ---------------------------------------------------------------------------
// Wakes from other threads

// A hand-written future that stores (a clone of) cx.waker() and is woken by
// another thread.
struct Flag {
  std::mutex mu;
  bool set = false;
  Waker waker;
  void fire() {
    Waker w;
    {
      std::lock_guard lock(mu);
      set = true;
      w = std::move(waker);
    }
    std::move(w).wake();  // outside the lock, by value
  }
};
class FlagFuture {
 public:
  using Output = int;
  explicit FlagFuture(std::shared_ptr<Flag> f) : flag_(std::move(f)) {}
  Poll<int> poll(Context& cx) {
    ++polls_;
    std::lock_guard lock(flag_->mu);
    if (flag_->set) return Ready(polls_);
    if (!flag_->waker.will_wake(cx.waker())) flag_->waker = cx.waker();
    return Pending{};
  }

 private:
  std::shared_ptr<Flag> flag_;
  int polls_ = 0;
};

TEST_F(LocalExecutorTest, HandWrittenFutureWokenFromAnotherThreadEndsBlockOn) {
  Watchdog dog(std::chrono::seconds(30), "block_on of a future woken from another thread");
  CountingDriver driver;
  LocalExecutor ex(driver);
  auto flag = std::make_shared<Flag>();
  std::thread waker([flag, &driver] {
    // Wake only once the owner has parked (or is about to).
    while (driver.parks.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    flag->fire();
  });
  const int polls = ex.block_on(FlagFuture(flag));
  waker.join();
  EXPECT_EQ(polls, 2);  // once Pending, once Ready: the wake was delivered once
  EXPECT_GE(driver.parks.load(), 1) << "block_on should sleep while waiting, not spin";
}

// Busy-waits for about `n` iterations (the compiler may not drop the loop).
void spin(int n) {
  for (int i = 0; i < n; ++i) asm volatile("" ::: "memory");
}

// Runs jobs on a helper thread after a random delay: none, a few cycles, a
// longer spin, or a short sleep, so a completion lands before, during or
// after the poll that registers the waker and the park that follows it.
class RandomDelayRunner {
 public:
  explicit RandomDelayRunner(uint32_t seed) : rng_(seed), thread_([this] { run(); }) {}
  ~RandomDelayRunner() {
    stop_.store(true);
    thread_.join();
  }
  void post(std::function<void()> job) {
    auto* j = new std::function<void()>(std::move(job));
    std::function<void()>* prev = slot_.exchange(j, std::memory_order_acq_rel);
    ASSERT_EQ(prev, nullptr) << "previous job not yet taken";
  }
  int jobs_run() const { return jobs_run_.load(); }

 private:
  void run() {
    while (!stop_.load()) {
      std::function<void()>* j = slot_.exchange(nullptr, std::memory_order_acq_rel);
      if (j == nullptr) {
        std::this_thread::yield();
        continue;
      }
      switch (rng_() % 8) {
        case 0:
          break;
        case 6:
          spin(static_cast<int>(rng_() % 20000));
          break;
        case 7:
          std::this_thread::sleep_for(std::chrono::microseconds(20 + rng_() % 80));
          break;
        default:
          spin(static_cast<int>(rng_() % 300));
          break;
      }
      (*j)();
      delete j;
      jobs_run_.fetch_add(1);
    }
  }
  std::mt19937 rng_;
  std::atomic<std::function<void()>*> slot_{nullptr};
  std::atomic<bool> stop_{false};
  std::atomic<int> jobs_run_{0};
  std::thread thread_;
};

constexpr int kRaceIters = 10000;

TEST_F(LocalExecutorTest, WakeRacingThePollThatRegisteredItIsNeverLost) {
  Watchdog dog(std::chrono::seconds(90), "block_on racing a remote completion");
  LocalExecutor ex;
  RandomDelayRunner runner(42);
  for (int i = 0; i < kRaceIters; ++i) {
    auto [fut, manual] = make_manual_future<int>();
    runner.post([m = manual, i]() mutable { m.complete(i); });
    ASSERT_EQ(ex.block_on(std::move(fut)), i);
  }
}

TEST_F(LocalExecutorTest, HandWrittenFutureRacingItsRemoteWakeIsNeverLost) {
  Watchdog dog(std::chrono::seconds(90), "hand-written future racing a remote wake");
  LocalExecutor ex;
  RandomDelayRunner runner(7);
  for (int i = 0; i < kRaceIters; ++i) {
    auto flag = std::make_shared<Flag>();
    runner.post([flag] { flag->fire(); });
    const int polls = ex.block_on(FlagFuture(flag));
    ASSERT_GE(polls, 1);
    ASSERT_LE(polls, 2) << "a single wake caused more than one extra poll";
  }
}

// The same race one level down: a spawned task awaits the ManualFuture (its
// wake goes through the inject queue) and the root awaits its JoinHandle.
TEST_F(LocalExecutorTest, TaskWakeRacingItsPollIsNeverLost) {
  Watchdog dog(std::chrono::seconds(90), "a task racing a remote completion");
  LocalExecutor ex;
  RandomDelayRunner runner(99);
  for (int i = 0; i < kRaceIters; ++i) {
    auto [fut, manual] = make_manual_future<int>();
    JoinHandle<int> h = ex.spawn_local(std::move(fut));
    runner.post([m = manual, i]() mutable { m.complete(i); });
    JoinResult<int> r = ex.block_on(std::move(h));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r.value(), i);
  }
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

// ---------------------------------------------------------------------------
// Wake semantics: during a poll, while queued, after completion

TEST_F(LocalExecutorTest, WakingATaskDuringItsOwnPollRunsItExactlyOnceMore) {
  LocalExecutor ex;
  int polls = 0;
  auto h = ex.spawn_local(poll_fn([&polls](Context& cx) -> Poll<int> {
    ++polls;
    if (polls == 1) {
      for (int i = 0; i < 5; ++i) cx.waker().wake_by_ref();
      Waker a = cx.waker();
      std::move(a).wake();  // by value too
      return Pending{};
    }
    if (polls == 2) {
      // A wake from another thread while this poll runs.
      Waker c = cx.waker();
      std::thread([c] { c.wake_by_ref(); }).join();
      return Pending{};
    }
    return Pending{};  // polls == 3: nobody wakes it
  }));
  EXPECT_EQ(ex.run_until_idle(), 3u);
  EXPECT_EQ(polls, 3);
  EXPECT_EQ(ex.pending_tasks(), 1u);
}

TEST_F(LocalExecutorTest, WakingAQueuedTaskTenTimesQueuesItOnce) {
  LocalExecutor ex;
  int polls = 0;
  std::optional<Waker> stored;
  auto h = ex.spawn_local(poll_fn([&](Context& cx) -> Poll<int> {
    ++polls;
    stored = cx.waker();
    return Pending{};
  }));
  EXPECT_EQ(ex.run_until_idle(), 1u);
  EXPECT_EQ(polls, 1);

  // From another thread, while the executor is not running.
  std::thread([&] {
    for (int i = 0; i < 10; ++i) stored->wake_by_ref();
  }).join();
  EXPECT_EQ(ex.run_until_idle(), 1u);
  EXPECT_EQ(polls, 2);

  // From this thread while not running, by reference and by value.
  for (int i = 0; i < 10; ++i) stored->wake_by_ref();
  for (int i = 0; i < 10; ++i) {
    Waker c = *stored;
    std::move(c).wake();
  }
  EXPECT_EQ(ex.run_until_idle(), 1u);
  EXPECT_EQ(polls, 3);

  // From another task while the executor runs (the local queue).
  ex.spawn_local(poll_fn([&](Context&) -> Poll<void> {
      for (int i = 0; i < 10; ++i) stored->wake_by_ref();
      for (int i = 0; i < 10; ++i) {
        Waker c = *stored;
        std::move(c).wake();
      }
      return Ready{};
    })).detach();
  EXPECT_EQ(ex.run_until_idle(), 2u);
  EXPECT_EQ(polls, 4);
  h.abort();
  ex.run_until_idle();
  stored.reset();
}

TEST_F(LocalExecutorTest, WakingACompletedTaskIsHarmless) {
  LocalExecutor ex;
  int polls = 0;
  std::optional<Waker> stored;
  auto h = ex.spawn_local(poll_fn([&](Context& cx) -> Poll<int> {
    stored = cx.waker();
    if (++polls == 1) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready(1);
  }));
  EXPECT_EQ(ex.run_until_idle(), 2u);
  ASSERT_EQ(ex.pending_tasks(), 0u);
  const int64_t cells = live_task_cells();
  stored->wake_by_ref();
  {
    Waker c = *stored;
    std::move(c).wake();
  }
  std::thread([&] {
    stored->wake_by_ref();
    Waker d = *stored;
    std::move(d).wake();
  }).join();
  EXPECT_EQ(ex.run_until_idle(), 0u);
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(live_task_cells(), cells) << "the stored waker keeps the cell alive";
  EXPECT_EQ(ex.block_on(std::move(h)).value(), 1);
  stored.reset();
  EXPECT_EQ(live_task_cells(), cells - 1);
}

TEST_F(LocalExecutorTest, WakersThatOutliveTheExecutorAreHarmless) {
  std::vector<Waker> kept;
  {
    LocalExecutor ex;
    // A task still pending at shutdown.
    ex.spawn_local(poll_fn([&kept](Context& cx) -> Poll<int> {
        kept.push_back(cx.waker());
        return Pending{};
      })).detach();
    // A task that completed.
    ex.spawn_local(poll_fn([&kept](Context& cx) -> Poll<int> {
        kept.push_back(cx.waker());
        return Ready(0);
      })).detach();
    // The block_on root's waker.
    ex.block_on(poll_fn([&kept](Context& cx) -> Poll<void> {
      kept.push_back(cx.waker());
      return Ready{};
    }));
    ex.run_until_idle();
    ASSERT_EQ(kept.size(), 3u);
  }
  for (const Waker& w : kept) w.wake_by_ref();
  std::thread([&kept] {
    for (const Waker& w : kept) {
      w.wake_by_ref();
      Waker c = w;
      std::move(c).wake();
    }
    // Half of them are dropped on this thread, half on the main thread.
    kept.resize(1);
  }).join();
  {
    Waker c = kept[0];
    std::move(c).wake();
  }
  kept.clear();
}

// A thread keeps waking a task while the owner destroys the executor.
TEST_F(LocalExecutorTest, RemoteWakesRacingShutdownAreHarmless) {
  for (int iter = 0; iter < 200; ++iter) {
    std::optional<Waker> stored;
    auto ex = std::make_unique<LocalExecutor>();
    auto log = std::make_shared<ProbeLog>();
    ex->spawn_local(Probe(poll_fn([&stored](Context& cx) -> Poll<int> {
                            if (!stored) stored = cx.waker();
                            return Pending{};
                          }),
                          log))
        .detach();
    ex->run_until_idle();
    ASSERT_TRUE(stored.has_value());
    Waker w = *stored;
    stored.reset();
    std::atomic<bool> stop{false};
    std::thread waker([&stop, w = std::move(w)] {
      while (!stop.load()) {
        w.wake_by_ref();
        Waker c = w;
        std::move(c).wake();
      }
    });
    for (int i = 0; i < iter % 5; ++i) ex->run_until_idle();
    ex.reset();
    stop.store(true);
    waker.join();
    ASSERT_EQ(log->destroyed.load(), 1);
    ASSERT_TRUE(log->all_destroyed_on(std::this_thread::get_id()));
  }
}

TEST_F(LocalExecutorTest, LocalSpawnsWakesAndYieldsMakeNoUnparkAndNoPark) {
  CountingDriver driver;
  LocalExecutor ex(driver);
  int completed = 0;
  ex.block_on(poll_fn([&, handles = std::vector<JoinHandle<void>>()](Context& cx) mutable -> Poll<void> {
    if (handles.empty()) {
      for (int i = 0; i < 100; ++i) handles.push_back(spawn_local(Yielder{10, &completed}));
    }
    while (!handles.empty()) {
      Poll<JoinResult<Unit>> p = handles.back().poll(cx);
      if (p.is_pending()) return Pending{};
      handles.pop_back();
    }
    return Ready{};
  }));
  EXPECT_EQ(completed, 100);
  EXPECT_EQ(driver.parks.load(), 0);
  EXPECT_EQ(driver.unparks(), 0) << "a wake on the owner thread must not unpark";
  EXPECT_GT(driver.nonblocking, 0);
}

// DESIGN §4: a wake on the owner thread goes to the local run queue even
// while the executor is not running (no lock, no unpark).
TEST_F(LocalExecutorTest, WakeFromTheOwnerThreadWhileNotRunningGoesToTheLocalQueue) {
  CountingDriver driver;
  LocalExecutor ex(driver);
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(std::move(fut));
  ex.run_until_idle();
  manual.complete(2);  // no executor is running on this thread
  EXPECT_EQ(driver.unparks(), 0);
  EXPECT_EQ(ex.run_until_idle(), 1u);  // the wake was not lost
  EXPECT_EQ(ex.block_on(std::move(h)).value(), 2);
}

// A root waker kept past its block_on and woken later (from this and another
// thread) disturbs neither the next block_on nor an idle executor.
TEST_F(LocalExecutorTest, StaleRootWakesAreHarmless) {
  LocalExecutor ex;
  std::optional<Waker> old_root;
  ex.block_on(poll_fn([&old_root](Context& cx) -> Poll<void> {
    old_root = cx.waker();
    return Ready{};
  }));
  old_root->wake_by_ref();
  std::thread([&old_root] { old_root->wake_by_ref(); }).join();
  EXPECT_EQ(ex.run_until_idle(), 0u);
  auto [fut, manual] = make_manual_future<int>();
  std::thread completer([m = manual]() mutable {
    while (!m.has_waker()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    m.complete(8);
  });
  EXPECT_EQ(ex.block_on(std::move(fut)), 8);
  completer.join();
  {
    Waker last = std::move(*old_root);
    std::move(last).wake();
  }
  EXPECT_EQ(ex.block_on(ready(9)), 9);
}

// ---------------------------------------------------------------------------
// Spawning from other threads (spawn_from_any_thread / detail::spawn_onto)

TEST_F(LocalExecutorTest, SpawnFromAnotherThreadIsPolledAndDroppedOnTheOwnerThread) {
  auto log = std::make_shared<ProbeLog>();
  LocalExecutor ex;
  std::optional<JoinHandle<std::thread::id>> h;
  std::thread([&] {
    h.emplace(ex.spawn_from_any_thread(Probe(
        poll_fn([](Context&) -> Poll<std::thread::id> { return Ready(std::this_thread::get_id()); }),
        log)));
  }).join();
  EXPECT_EQ(log->polls.load(), 0);
  EXPECT_EQ(ex.pending_tasks(), 0u);  // adopted at the owner's next tick
  JoinResult<std::thread::id> r = ex.block_on(std::move(*h));
  EXPECT_EQ(r.value(), std::this_thread::get_id());
  EXPECT_EQ(log->polls.load(), 1);
  EXPECT_EQ(log->destroyed.load(), 1);
  EXPECT_TRUE(log->all_destroyed_on(std::this_thread::get_id()));
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

// Threads spawn onto an executor parked in block_on; some drop their handles
// at once (detach), the rest are joined on the owner thread afterwards.
TEST_F(LocalExecutorTest, ManyThreadsSpawnOntoAParkedExecutor) {
  constexpr int kThreads = 3;
  constexpr int kPerThread = 300;
  constexpr int kTotal = kThreads * kPerThread;
  LocalExecutor ex;
  int completed = 0;  // touched only by tasks and the root, on this thread
  std::optional<Waker> root;
  std::vector<std::vector<JoinHandle<int>>> kept(kThreads);
  std::vector<std::thread> spawners;
  ex.block_on(poll_fn([&](Context& cx) -> Poll<void> {
    if (!root) {
      root = cx.waker();
      for (int t = 0; t < kThreads; ++t) {
        spawners.emplace_back([&, t] {
          for (int i = 0; i < kPerThread; ++i) {
            const int id = t * kPerThread + i;
            auto h = ex.spawn_from_any_thread(
                poll_fn([&completed, &root, id, left = id % 3](Context& tcx) mutable -> Poll<int> {
                  if (left-- > 0) {
                    tcx.waker().wake_by_ref();
                    return Pending{};
                  }
                  if (++completed == kTotal) root->wake_by_ref();
                  return Ready(id);
                }));
            if (i % 2 == 0) kept[t].push_back(std::move(h));
          }
        });
      }
    }
    return completed == kTotal ? Poll<void>(Ready{}) : Poll<void>(Pending{});
  }));
  for (auto& th : spawners) th.join();
  EXPECT_EQ(completed, kTotal);
  EXPECT_EQ(ex.pending_tasks(), 0u);
  int64_t sum = 0, expected = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (auto& h : kept[t]) sum += ex.block_on(std::move(h)).value();
    for (int i = 0; i < kPerThread; i += 2) expected += t * kPerThread + i;
  }
  EXPECT_EQ(sum, expected);
  root.reset();
}

TEST_F(LocalExecutorTest, RemoteSpawnsNeverAdoptedAreCancelledOnTheOwnerThreadAtShutdown) {
  auto log = std::make_shared<ProbeLog>();
  std::optional<JoinHandle<int>> h;
  {
    LocalExecutor ex;
    std::thread([&] { h.emplace(ex.spawn_from_any_thread(Probe(ready(1), log))); }).join();
    EXPECT_EQ(log->destroyed.load(), 0);
  }
  EXPECT_EQ(log->polls.load(), 0);
  EXPECT_EQ(log->destroyed.load(), 1);
  EXPECT_TRUE(log->all_destroyed_on(std::this_thread::get_id()));
  Poll<JoinResult<int>> p = [&] {
    Budget b = Budget::unlimited();
    Context cx(noop_waker(), b);
    return h->poll(cx);
  }();
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(std::move(p).value().is_cancelled());
}

// A cell freed on another thread while its executor is being destroyed
// must find out that it is not on the owner thread before it reads the
// owner's core, which the destructor clears (a data race, caught by TSan,
// when the check came second). Each handle is dropped off the owner thread.
TEST_F(LocalExecutorTest, CellsFreedOffThreadWhileTheExecutorIsDestroyedDoNotRace) {
  constexpr int kIters = 100;
  for (int iter = 0; iter < kIters; ++iter) {
    auto ex = std::make_unique<LocalExecutor>();
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < 8; ++i) hs.push_back(ex->spawn_local(ready(i)));
    ex->run_until_idle();  // every task is complete; the handles keep the cells
    std::atomic<bool> go{false};
    std::thread dropper([&] {
      while (!go.load()) {
      }
      hs.clear();  // frees the cells here, racing the destructor below
    });
    go.store(true);
    ex.reset();
    dropper.join();
  }
}

// What a runtime Handle does after its executor is gone: the spawn is
// cancelled at once and its never-polled future dropped on the calling thread.
TEST_F(LocalExecutorTest, SpawnOntoAClosedExecutorIsCancelledAtOnce) {
  detail::Schedule* shared = nullptr;
  {
    LocalExecutor ex;
    shared = ex.scheduler();
    shared->ref_inc();  // as a Handle would hold it
  }
  auto log = std::make_shared<ProbeLog>();
  std::thread([&] {
    auto h = detail::spawn_onto(shared, Probe(ready(1), log));
    EXPECT_EQ(log->destroyed.load(), 1);
    EXPECT_TRUE(log->all_destroyed_on(std::this_thread::get_id()));
    EXPECT_TRUE(h.is_finished());
    Budget b = Budget::unlimited();
    Context cx(noop_waker(), b);
    Poll<JoinResult<int>> p = h.poll(cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_TRUE(std::move(p).value().is_cancelled());
  }).join();
  EXPECT_EQ(log->polls.load(), 0);
  shared->ref_dec();
}

// Remote spawns racing the executor's destruction: each task either ran (its
// value arrives) or was cancelled; each future is destroyed exactly once.
TEST_F(LocalExecutorTest, RemoteSpawnsRacingShutdownEndEachTaskExactlyOnce) {
  constexpr int kIters = 40;
  constexpr int kSpawns = 100;
  for (int iter = 0; iter < kIters; ++iter) {
    auto log = std::make_shared<ProbeLog>();
    auto ex = std::make_unique<LocalExecutor>();
    detail::Schedule* shared = ex->scheduler();
    shared->ref_inc();
    std::vector<JoinHandle<int>> hs;
    hs.reserve(kSpawns);
    std::thread spawner([&] {
      for (int i = 0; i < kSpawns; ++i) hs.push_back(detail::spawn_onto(shared, Probe(ready(i), log)));
    });
    for (int i = 0; i < iter % 4; ++i) ex->run_until_idle();
    ex.reset();
    spawner.join();
    shared->ref_dec();
    ASSERT_EQ(log->destroyed.load(), kSpawns) << "iteration " << iter;
    Budget b = Budget::unlimited();
    Context cx(noop_waker(), b);
    for (int i = 0; i < kSpawns; ++i) {
      Poll<JoinResult<int>> p = hs[i].poll(cx);
      ASSERT_TRUE(p.is_ready());
      JoinResult<int> r = std::move(p).value();
      if (r.ok()) {
        EXPECT_EQ(r.value(), i);
      } else {
        EXPECT_TRUE(r.is_cancelled());
      }
    }
  }
}

TEST_F(LocalExecutorTest, LazilyBoundExecutorBelongsToTheFirstThreadThatUsesIt) {
  CountingDriver driver;
  auto ex = std::make_unique<LocalExecutor>(driver, /*bind_lazily=*/true);
  auto log = std::make_shared<ProbeLog>();
  std::optional<JoinHandle<int>> early;
  // Spawned from the constructing thread before anyone owns it.
  early.emplace(ex->spawn_from_any_thread(Probe(ready(4), log)));
  std::thread owner([&] {
    EXPECT_EQ(ex->block_on(ex->spawn_local(ready(3))).value(), 3);
    EXPECT_EQ(ex->block_on(std::move(*early)).value(), 4);
    EXPECT_TRUE(log->all_destroyed_on(std::this_thread::get_id()));
    ex.reset();  // destroyed by its owner
  });
  owner.join();
  EXPECT_EQ(log->destroyed.load(), 1);
}

// ---------------------------------------------------------------------------
// Scale

struct YieldOnceThenCount {
  using Output = void;
  int* completed;
  bool yielded = false;
  Poll<void> poll(Context& cx) {
    if (!yielded) {
      yielded = true;
      cx.waker().wake_by_ref();
      return Pending{};
    }
    ++*completed;
    return Ready{};
  }
};

// ThreadSanitizer makes each task about ten times slower; the million runs in
// the default, asan and ubsan builds.
#if defined(POLLUX_SANITIZER) && defined(POLLUX_TESTS_TSAN)
constexpr int kManyTasks = 200'000;
#else
constexpr int kManyTasks = 1'000'000;
#endif

TEST_F(LocalExecutorTest, AMillionSpawnedTasksAllComplete) {
  constexpr int kTasks = kManyTasks;
  constexpr int kInFlight = 20'000;
  const int64_t cells = live_task_cells();
  LocalExecutor ex;
  int spawned = 0;
  int completed = 0;
  int64_t max_live = 0;
  ex.block_on(poll_fn([&](Context& cx) -> Poll<void> {
    while (spawned < kTasks && spawned - completed < kInFlight) {
      spawn_local(YieldOnceThenCount{&completed}).detach();
      ++spawned;
    }
    max_live = std::max(max_live, live_task_cells() - cells);
    if (completed == kTasks) return Ready{};
    cx.waker().wake_by_ref();
    return Pending{};
  }));
  EXPECT_EQ(spawned, kTasks);
  EXPECT_EQ(completed, kTasks);
  EXPECT_EQ(ex.pending_tasks(), 0u);
  EXPECT_EQ(live_task_cells(), cells);
  EXPECT_LE(max_live, kInFlight);
  EXPECT_EQ(ex.run_until_idle(), 0u);
}

// ---------------------------------------------------------------------------
// Exceptions

TEST_F(LocalExecutorTest, BlockOnRethrowsTheRootsExceptionAndTheExecutorStaysUsable) {
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  auto task = ex.spawn_local(std::move(fut));
  int polls = 0;
  try {
    ex.block_on(poll_fn([&polls](Context& cx) -> Poll<int> {
      if (++polls == 1) {
        cx.waker().wake_by_ref();
        return Pending{};
      }
      throw std::runtime_error("root failed");
    }));
    ADD_FAILURE() << "block_on did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "root failed");
  }
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(manual.polls(), 1);  // the task ran between the root's polls
  EXPECT_EQ(ex.pending_tasks(), 1u);
  // Still usable: the old task, a new block_on, a new spawn.
  manual.complete(4);
  EXPECT_EQ(ex.block_on(std::move(task)).value(), 4);
  EXPECT_THROW(ex.block_on(poll_fn([](Context&) -> Poll<int> { throw std::logic_error("first"); })),
               std::logic_error);
  EXPECT_EQ(ex.block_on(ready(5)), 5);
  EXPECT_EQ(ex.block_on(ex.spawn_local(ready(6))).value(), 6);
}

TEST_F(LocalExecutorTest, APanickingTaskDoesNotDisturbBlockOn) {
  LocalExecutor ex;
  auto bad = ex.spawn_local(poll_fn([](Context&) -> Poll<int> { throw std::runtime_error("task"); }));
  auto good = ex.spawn_local(ready(1));
  JoinResult<int> r = ex.block_on(std::move(bad));
  EXPECT_TRUE(r.is_panic());
  EXPECT_EQ(ex.block_on(std::move(good)).value(), 1);
}

// ---------------------------------------------------------------------------
// Shutdown

TEST_F(LocalExecutorTest, DestroyingTheExecutorDropsEveryUnfinishedFutureOnceOnTheOwnerThread) {
  auto log = std::make_shared<ProbeLog>();
  std::vector<JoinHandle<int>> handles;
  std::vector<ManualHandle<int>> manuals;
  int spawned = 0;
  {
    auto ex = std::make_unique<LocalExecutor>();
    for (int i = 0; i < 8; ++i) {
      auto [f, m] = make_manual_future<int>();
      handles.push_back(ex->spawn_local(Probe(std::move(f), log)));
      manuals.push_back(m);
      ++spawned;
    }
    ex->run_until_idle();  // all idle and pending
    // Woken (or completed) from another thread: waiting in the inject queue.
    std::thread([&] {
      manuals[0].wake_spuriously();
      manuals[1].complete(5);
    }).join();
    manuals[2].wake_spuriously();  // from this thread while not running: inject queue
    handles[3].abort();            // aborted while idle: queued, CANCELLED
    // Never polled: in the local run queue.
    for (int i = 0; i < 4; ++i) {
      handles.push_back(ex->spawn_local(Probe(Never{}, log)));
      ++spawned;
    }
    // Detached while pending.
    ex->spawn_local(Probe(Never{}, log)).detach();
    ++spawned;
    // Woken on the owner thread by the root just before block_on returns:
    // in the local run queue.
    ex->block_on(poll_fn([&](Context&) -> Poll<void> {
      manuals[4].wake_spuriously();
      return Ready{};
    }));
    EXPECT_EQ(log->destroyed.load(), 0);
    EXPECT_EQ(ex->pending_tasks(), static_cast<size_t>(spawned));
    ex.reset();
  }
  EXPECT_EQ(log->destroyed.load(), spawned);
  EXPECT_TRUE(log->all_destroyed_on(std::this_thread::get_id()));
  EXPECT_EQ(Counted::live(), 0);
  for (auto& m : manuals) EXPECT_TRUE(m.dropped());
  Budget b = Budget::unlimited();
  Context cx(noop_waker(), b);
  for (auto& h : handles) {
    Poll<JoinResult<int>> p = h.poll(cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_TRUE(std::move(p).value().is_cancelled());
  }
}

// A future whose destructor spawns a task, wakes another task and aborts a
// third: run while the executor shuts down.
struct MeddlesOnDrop {
  using Output = int;
  std::optional<JoinHandle<int>>* spawned_out;
  std::shared_ptr<ProbeLog> child_log;
  Waker* other_waker;
  JoinHandle<int>* other_handle;
  MeddlesOnDrop(std::optional<JoinHandle<int>>* o, std::shared_ptr<ProbeLog> l, Waker* w,
                JoinHandle<int>* h)
      : spawned_out(o), child_log(std::move(l)), other_waker(w), other_handle(h) {}
  MeddlesOnDrop(MeddlesOnDrop&& o) noexcept
      : spawned_out(std::exchange(o.spawned_out, nullptr)),
        child_log(std::move(o.child_log)),
        other_waker(o.other_waker),
        other_handle(o.other_handle) {}
  ~MeddlesOnDrop() {
    if (spawned_out == nullptr) return;
    spawned_out->emplace(spawn_local(Probe(ready(1), child_log)));
    other_waker->wake_by_ref();
    other_handle->abort();
  }
  Poll<int> poll(Context&) { return Pending{}; }
};

TEST_F(LocalExecutorTest, TasksSpawnedWhileShuttingDownAreCancelledAndNeverPolled) {
  auto child_log = std::make_shared<ProbeLog>();
  auto log = std::make_shared<ProbeLog>();
  std::optional<JoinHandle<int>> child;
  Waker other_waker;
  std::optional<JoinHandle<int>> meddler, other, target;
  {
    LocalExecutor ex;
    // Spawned first and second, so shutdown meets them in either order.
    other.emplace(ex.spawn_local(Probe(poll_fn([&other_waker](Context& cx) -> Poll<int> {
                                          other_waker = cx.waker();
                                          return Pending{};
                                        }),
                                        log)));
    target.emplace(ex.spawn_local(Probe(Never{}, log)));
    meddler.emplace(ex.spawn_local(MeddlesOnDrop(&child, child_log, &other_waker, &*target)));
    ex.spawn_local(MeddlesOnDrop(&child, child_log, &other_waker, &*target)).detach();
    ex.run_until_idle();
    ASSERT_FALSE(other_waker.empty());
  }
  ASSERT_TRUE(child.has_value());
  EXPECT_EQ(child_log->polls.load(), 0);
  EXPECT_EQ(child_log->destroyed.load(), 2);  // both meddlers spawned one
  EXPECT_TRUE(child_log->all_destroyed_on(std::this_thread::get_id()));
  EXPECT_EQ(log->destroyed.load(), 2);
  Budget b = Budget::unlimited();
  Context cx(noop_waker(), b);
  for (auto* h : {&*child, &*meddler, &*other, &*target}) {
    Poll<JoinResult<int>> p = h->poll(cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_TRUE(std::move(p).value().is_cancelled());
  }
  other_waker.wake_by_ref();  // after the executor is gone
  other_waker.reset();
  child.reset();
  meddler.reset();
  other.reset();
  target.reset();
}

TEST_F(LocalExecutorTest, DestroyingAnIdleOrUnusedExecutorIsFine) {
  { LocalExecutor ex; }
  {
    LocalExecutor ex;
    EXPECT_EQ(ex.block_on(ready(1)), 1);
  }
  {
    LocalExecutor a;
    LocalExecutor b;  // two executors on one thread, used one after the other
    auto hb = b.spawn_local(ready(2));
    EXPECT_EQ(b.run_until_idle(), 1u);
    EXPECT_EQ(a.block_on(std::move(hb)).value(), 2);
    EXPECT_EQ(a.block_on(a.spawn_local(ready(3))).value(), 3);
  }
}

// ---------------------------------------------------------------------------
// Fairness: the tick of 61

// 100 always-yielding tasks; task 0 wakes the block_on root every time it
// runs. The root is polled at the start of the next tick, so fewer than 61
// task polls separate a wake from the root's poll: long before all 100 tasks
// ran again.
TEST_F(LocalExecutorTest, RootWokenFromATaskIsPolledWithinOneTick) {
  Watchdog dog(std::chrono::seconds(30), "the fairness test");
  LocalExecutor ex;
  constexpr int kTasks = 100;
  constexpr int kRoot = -1;
  std::vector<int> log;
  std::optional<Waker> root_waker;
  bool stop = false;
  int root_polls = 0;
  ex.block_on(poll_fn([&](Context& cx) -> Poll<void> {
    log.push_back(kRoot);
    if (++root_polls == 1) {
      root_waker = cx.waker();
      for (int id = 0; id < kTasks; ++id) {
        spawn_local(poll_fn([&, id](Context& tcx) -> Poll<void> {
          log.push_back(id);
          if (stop) return Ready{};
          if (id == 0) root_waker->wake_by_ref();
          tcx.waker().wake_by_ref();
          return Pending{};
        })).detach();
      }
      return Pending{};
    }
    if (root_polls == 10) {
      stop = true;
      return Ready{};
    }
    return Pending{};
  }));
  EXPECT_EQ(root_polls, 10);
  ex.run_until_idle();
  EXPECT_EQ(ex.pending_tasks(), 0u);

  // Every root poll after the first follows the first wake by task 0 since
  // the previous root poll within one tick: fewer than 61 task polls, so
  // fewer than all 100 tasks ran in between.
  static_assert(LocalExecutor::kTickPolls == 61);
  int first_wake = -1;
  int root_seen = 0;
  for (int i = 0; i < static_cast<int>(log.size()) && root_seen < 10; ++i) {
    if (log[i] == 0 && first_wake < 0) first_wake = i;
    if (log[i] != kRoot) continue;
    if (++root_seen > 1) {
      ASSERT_GE(first_wake, 0) << "root poll " << root_seen << " without a wake";
      const int polls_between = i - first_wake - 1;
      EXPECT_LT(polls_between, 61) << "root poll " << root_seen;
      EXPECT_LT(polls_between, kTasks) << "all tasks ran again before the woken root";
    }
    first_wake = -1;
  }
  EXPECT_EQ(root_seen, 10);
  root_waker.reset();
}

// The converse: a root that wakes itself on every poll does not starve the
// tasks; it gets one poll per tick.
TEST_F(LocalExecutorTest, SelfWakingRootDoesNotStarveTasks) {
  Watchdog dog(std::chrono::seconds(30), "the self-waking root test");
  LocalExecutor ex;
  int completed = 0;
  int root_polls = 0;
  for (int i = 0; i < 100; ++i) ex.spawn_local(Yielder{50, &completed}).detach();
  ex.block_on(poll_fn([&](Context& cx) -> Poll<void> {
    ++root_polls;
    if (completed == 100) return Ready{};
    cx.waker().wake_by_ref();
    return Pending{};
  }));
  const int task_polls = 100 * 51;
  EXPECT_LE(root_polls, task_polls / 61 + 3);  // one root poll per tick of 61
  EXPECT_GE(root_polls, task_polls / 61);
}

// A task woken from another thread is picked up while local tasks keep the
// run queue busy forever (the inject queue is drained every tick).
TEST_F(LocalExecutorTest, RemoteWakesAreNotStarvedByBusyLocalTasks) {
  Watchdog dog(std::chrono::seconds(30), "the inject fairness test");
  LocalExecutor ex;
  constexpr int kYielders = 100;
  std::atomic<int> local_polls{0};
  std::atomic<bool> stop{false};
  for (int i = 0; i < kYielders; ++i) {
    ex.spawn_local(poll_fn([&](Context& cx) -> Poll<void> {
        local_polls.fetch_add(1);
        if (stop.load()) return Ready{};
        cx.waker().wake_by_ref();
        return Pending{};
      })).detach();
  }
  auto [fut, manual] = make_manual_future<int>();
  std::atomic<int> completed_at{-1};
  int polled_at = -1;
  auto remote = ex.spawn_local(poll_fn([&, f = std::move(fut)](Context& cx) mutable -> Poll<int> {
    Poll<int> p = f.poll(cx);
    if (p.is_ready()) {
      polled_at = local_polls.load();
      stop.store(true);
    }
    return p;
  }));
  std::thread completer([&, m = manual]() mutable {
    while (local_polls.load() < 1000) std::this_thread::yield();
    m.complete(1);
    // Read after the push: polls that happen before the push don't count.
    completed_at.store(local_polls.load());
  });
  JoinResult<int> r = ex.block_on(std::move(remote));
  completer.join();
  EXPECT_EQ(r.value(), 1);
  ASSERT_GE(completed_at.load(), 0);
  // At most the rest of this tick, then a queue of 100 ahead of it.
  EXPECT_LE(polled_at - completed_at.load(), 61 + kYielders + 1);
  ex.run_until_idle();
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

// ---------------------------------------------------------------------------
// Coop budget

// A leaf resource future that is always ready but follows the try_take protocol.
struct Leaf {
  using Output = void;
  Poll<void> poll(Context& cx) {
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready{};
  }
};

// Polls 200 leaves in a loop inside one poll; records how many it got per poll.
struct Looper {
  using Output = int;
  std::vector<int>* per_poll;
  int done = 0;
  Poll<int> poll(Context& cx) {
    int now = 0;
    while (done < 200) {
      Leaf leaf;
      if (leaf.poll(cx).is_pending()) break;
      ++done;
      ++now;
    }
    per_poll->push_back(now);
    if (done < 200) return Pending{};
    return Ready(done);
  }
};

TEST_F(LocalExecutorTest, ATaskLoopingOverALeafGetsPendingAfter128Takes) {
  LocalExecutor ex;
  std::vector<int> a, b;
  auto ha = ex.spawn_local(Looper{&a});
  auto hb = ex.spawn_local(Looper{&b});
  EXPECT_EQ(ex.run_until_idle(), 4u);
  EXPECT_EQ(a, (std::vector<int>{128, 72}));
  EXPECT_EQ(b, (std::vector<int>{128, 72})) << "the budget is per task poll";
  EXPECT_EQ(ex.block_on(std::move(ha)).value(), 200);
  EXPECT_EQ(ex.block_on(std::move(hb)).value(), 200);
}

TEST_F(LocalExecutorTest, TheRootsBudgetIsRefreshedForEachPoll) {
  Watchdog dog(std::chrono::seconds(30), "the root budget test");
  LocalExecutor ex;
  std::vector<int> per_poll;
  EXPECT_EQ(ex.block_on(Looper{&per_poll}), 200);
  ASSERT_FALSE(per_poll.empty());
  for (int n : per_poll) EXPECT_GT(n, 0) << "a root poll started with a spent budget";
}

// ---------------------------------------------------------------------------
// Misuse

TEST(LocalExecutorDeathTest, BlockOnFromInsideATaskIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        auto h = ex.spawn_local(
            poll_fn([&ex](Context&) -> Poll<int> { return Ready(ex.block_on(ready(1))); }));
        ex.run_until_idle();
      },
      "block_on");
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        auto h = ex.spawn_local(poll_fn([](Context&) -> Poll<int> {
          LocalExecutor inner;  // another executor does not make it legal
          return Ready(inner.block_on(ready(1)));
        }));
        ex.run_until_idle();
      },
      "block_on");
}

TEST(LocalExecutorDeathTest, BlockOnFromInsideTheRootIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        ex.block_on(poll_fn([&ex](Context&) -> Poll<int> { return Ready(ex.block_on(ready(1))); }));
      },
      "block_on");
}

TEST(LocalExecutorDeathTest, RunUntilIdleFromInsideATaskIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        auto h = ex.spawn_local(poll_fn([&ex](Context&) -> Poll<int> {
          ex.run_until_idle();
          return Ready(0);
        }));
        ex.run_until_idle();
      },
      "executor is running on this thread");
}

TEST(LocalExecutorDeathTest, SpawnLocalWithNoExecutorIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH((void)spawn_local(ready(1)), "spawn_local\\(\\) called on a thread with no running executor");
  // Also after an executor ran and returned on this thread.
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        ex.block_on(ready(1));
        (void)spawn_local(ready(1));
      },
      "spawn_local");
}

TEST(LocalExecutorDeathTest, UseFromAnotherThreadIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        std::thread([&ex] { (void)ex.spawn_local(ready(1)); }).join();
      },
      "thread other than the one that created it");
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        std::thread([&ex] { ex.block_on(ready(1)); }).join();
      },
      "thread other than the one that created it");
}

TEST(LocalExecutorDeathTest, LazilyBoundExecutorRejectsASecondThread) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ThreadParker driver;
        auto ex = std::make_unique<LocalExecutor>(driver, /*bind_lazily=*/true);
        std::thread([&ex] { ex->block_on(ready(1)); }).join();
        ex->block_on(ready(1));
      },
      "thread other than the one that created it");
}

TEST(LocalExecutorDeathTest, DestroyingTheExecutorFromInsideItsOwnTaskIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* ex = new LocalExecutor;
        auto h = ex->spawn_local(poll_fn([ex](Context&) -> Poll<int> {
          delete ex;
          return Ready(0);
        }));
        ex->run_until_idle();
      },
      "destroyed from inside one of its own tasks");
}

}  // namespace
}  // namespace pollux
