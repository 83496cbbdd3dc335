// Tests for spawn_blocking (executor/blocking/spawn_blocking.h) on every
// runtime flavour: values, void and move-only results from inside a task and
// from outside (Runtime and Handle); a throwing function is Panicked; an
// abort before the call started cancels it with the function destroyed
// unrun; the pool never runs more than max_blocking_threads at once;
// shutdown cancels queued calls unrun and waits for the running one; a spawn
// after the runtime is gone is Cancelled; nothing leaks.
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "executor/blocking/spawn_blocking.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "gtest/gtest.h"
#include "runtime/runtime.h"
#include "tests/watchdog.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::Watchdog;

enum class Flavour { kCurrentThread, kMultiThread, kThreadPerCore };

std::string flavour_name(const ::testing::TestParamInfo<Flavour>& info) {
  switch (info.param) {
    case Flavour::kCurrentThread:
      return "CurrentThread";
    case Flavour::kMultiThread:
      return "MultiThread";
    case Flavour::kThreadPerCore:
      return "ThreadPerCore";
  }
  return "?";
}

Runtime make_runtime(Flavour f, size_t max_blocking = 512) {
  Runtime::Builder b;
  switch (f) {
    case Flavour::kCurrentThread:
      b.current_thread();
      break;
    case Flavour::kMultiThread:
      b.multi_thread(2);
      break;
    case Flavour::kThreadPerCore:
      b.thread_per_core(2);
      break;
  }
  absl::StatusOr<Runtime> rt = b.enable_all().max_blocking_threads(max_blocking).build();
  POLLUX_CHECK(rt.ok(), std::string(rt.status().message()).c_str());
  return std::move(*rt);
}

template <class T>
auto join_here(JoinHandle<T> h) {
  LocalExecutor ex;
  return ex.block_on(std::move(h));
}

class SpawnBlockingTest : public ::testing::TestWithParam<Flavour> {
 protected:
  Watchdog dog_{std::chrono::seconds(60), "spawn_blocking test"};
};

TEST_P(SpawnBlockingTest, ValuesFromInsideATaskAndFromOutside) {
  const int64_t cells_before = live_task_cells();
  {
    Runtime rt = make_runtime(GetParam());
    const std::thread::id caller = std::this_thread::get_id();
    std::string s = rt.block_on([&]() -> Task<std::string> {
      const std::thread::id worker = std::this_thread::get_id();
      JoinResult<std::string> r = co_await pollux::spawn_blocking([worker, caller] {
        // On a pool thread: neither the worker nor the caller.
        const std::thread::id here = std::this_thread::get_id();
        return std::string(here != worker && here != caller ? "pool" : "not on the pool");
      });
      co_return r.value();
    }());
    EXPECT_EQ(s, "pool");
    JoinResult<std::unique_ptr<int>> p =
        join_here(rt.spawn_blocking([] { return std::make_unique<int>(7); }));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p.value(), 7);
    std::atomic<bool> ran{false};
    JoinResult<Unit> v = join_here(rt.handle().spawn_blocking([&] { ran = true; }));
    EXPECT_TRUE(v.ok());
    EXPECT_TRUE(ran.load());
  }
  EXPECT_EQ(live_task_cells(), cells_before);
}

TEST_P(SpawnBlockingTest, AThrowingFunctionIsPanicked) {
  Runtime rt = make_runtime(GetParam());
  JoinResult<int> r = join_here(rt.spawn_blocking([]() -> int { throw std::runtime_error("io"); }));
  ASSERT_TRUE(r.is_panic());
  EXPECT_THROW(r.rethrow(), std::runtime_error);
}

TEST_P(SpawnBlockingTest, AbortBeforeItStartsCancelsItAndDropsTheFunctionUnrun) {
  Counted::reset();
  Runtime rt = make_runtime(GetParam(), /*max_blocking=*/1);
  absl::Notification started, release;
  JoinHandle<int> busy = rt.spawn_blocking([&] {
    started.Notify();
    release.WaitForNotification();
    return 1;
  });
  started.WaitForNotification();
  std::atomic<bool> ran{false};
  JoinHandle<int> queued = rt.spawn_blocking([&ran, c = Counted(2)] {
    ran = true;
    return c.value;
  });
  EXPECT_EQ(Counted::live(), 1);
  queued.abort();
  release.Notify();
  JoinResult<int> q = join_here(std::move(queued));
  EXPECT_TRUE(q.is_cancelled());
  EXPECT_FALSE(ran.load()) << "an aborted call that had not started ran anyway";
  EXPECT_EQ(Counted::live(), 0) << "the unrun function was not destroyed";
  EXPECT_EQ(join_here(std::move(busy)).value(), 1);
}

TEST_P(SpawnBlockingTest, AbortWhileItRunsChangesNothing) {
  Runtime rt = make_runtime(GetParam());
  absl::Notification started, release;
  JoinHandle<int> h = rt.spawn_blocking([&] {
    started.Notify();
    release.WaitForNotification();
    return 5;
  });
  started.WaitForNotification();
  h.abort();
  release.Notify();
  EXPECT_EQ(join_here(std::move(h)).value(), 5);
}

TEST_P(SpawnBlockingTest, NoMoreThanMaxBlockingThreadsRunAtOnce) {
  Runtime rt = make_runtime(GetParam(), /*max_blocking=*/2);
  std::atomic<int> running{0}, most{0};
  std::vector<JoinHandle<void>> hs;
  for (int i = 0; i < 8; ++i) {
    hs.push_back(rt.spawn_blocking([&] {
      const int now = running.fetch_add(1) + 1;
      int prev = most.load();
      while (prev < now && !most.compare_exchange_weak(prev, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      running.fetch_sub(1);
    }));
  }
  for (auto& h : hs) EXPECT_TRUE(join_here(std::move(h)).ok());
  EXPECT_LE(most.load(), 2);
  EXPECT_GE(most.load(), 1);
}

TEST_P(SpawnBlockingTest, ShutdownCancelsQueuedCallsUnrunAndWaitsForTheRunningOne) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  std::optional<JoinHandle<int>> running, queued;
  std::atomic<bool> queued_ran{false}, running_finished{false};
  absl::Notification started;
  {
    Runtime rt = make_runtime(GetParam(), /*max_blocking=*/1);
    running.emplace(rt.spawn_blocking([&] {
      started.Notify();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      running_finished = true;
      return 1;
    }));
    started.WaitForNotification();
    queued.emplace(rt.spawn_blocking([&queued_ran, c = Counted(1)] {
      queued_ran = true;
      return c.value;
    }));
  }  // waits for the running call
  EXPECT_TRUE(running_finished.load()) << "the runtime went away under a running call";
  EXPECT_FALSE(queued_ran.load());
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(join_here(std::move(*running)).value(), 1);
  EXPECT_TRUE(join_here(std::move(*queued)).is_cancelled());
  running.reset();
  queued.reset();
  EXPECT_EQ(live_task_cells(), cells_before);
}

TEST_P(SpawnBlockingTest, SpawnAfterTheRuntimeIsGoneIsCancelled) {
  std::optional<Handle> h;
  {
    Runtime rt = make_runtime(GetParam());
    h.emplace(rt.handle());
  }
  std::atomic<bool> ran{false};
  EXPECT_TRUE(join_here(h->spawn_blocking([&] { ran = true; })).is_cancelled());
  EXPECT_FALSE(ran.load());
}

INSTANTIATE_TEST_SUITE_P(Flavours, SpawnBlockingTest,
                         ::testing::Values(Flavour::kCurrentThread, Flavour::kMultiThread,
                                           Flavour::kThreadPerCore),
                         flavour_name);

TEST(SpawnBlockingDeathTest, OutsideARuntimeIsAClearAbort) {
  EXPECT_DEATH((void)pollux::spawn_blocking([] { return 1; }),
               "spawn_blocking\\(\\) called on a thread with no runtime");
}

}  // namespace
}  // namespace pollux
