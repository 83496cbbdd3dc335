// Tests for the multi_thread and thread_per_core runtime flavours
// (runtime.h), each run on both with 2 threads: block_on from a foreign
// thread, spawning from inside and outside (counted, freed exactly once),
// work reaching both threads, timers and real sockets on every thread,
// Handle::spawn and spawn_on, the paused clock refused, block_on inside a
// worker refused with a message, and shutdown with tasks parked on timers
// and I/O on every thread (cancelled, nothing leaked: cells, objects, fds).
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/ready.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"
#include "timer/timer_queue.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::open_fd_count;
using testing::Watchdog;

enum class Flavour { kMultiThread, kThreadPerCore };

std::string flavour_name(const ::testing::TestParamInfo<Flavour>& info) {
  return info.param == Flavour::kMultiThread ? "MultiThread" : "ThreadPerCore";
}

Runtime::Builder builder(Flavour f, size_t threads = 2) {
  Runtime::Builder b;
  if (f == Flavour::kMultiThread) {
    b.multi_thread(threads);
  } else {
    b.thread_per_core(threads);
  }
  return b.enable_all();
}

Runtime make_runtime(Flavour f, size_t threads = 2) {
  absl::StatusOr<Runtime> rt = builder(f, threads).build();
  POLLUX_CHECK(rt.ok(), std::string(rt.status().message()).c_str());
  return std::move(*rt);
}

template <class T>
auto join_here(JoinHandle<T> h) {
  LocalExecutor ex;
  return ex.block_on(std::move(h));
}

class FlavoursTest : public ::testing::TestWithParam<Flavour> {
 protected:
  Watchdog dog_{std::chrono::seconds(60), "flavours test"};
};

TEST_P(FlavoursTest, BlockOnFromAForeignThreadReturnsTheValueAndRethrowsAPanic) {
  Runtime rt = make_runtime(GetParam());
  EXPECT_EQ(rt.worker_count(), 2u);
  EXPECT_EQ(rt.block_on(ready(7)), 7);
  EXPECT_EQ(rt.block_on([]() -> Task<std::string> {
              co_await yield_now();
              co_return std::string("on a worker");
            }()),
            "on a worker");
  std::unique_ptr<int> p = rt.block_on(ready(std::make_unique<int>(5)));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
  EXPECT_THROW(rt.block_on([]() -> Task<int> {
    throw std::runtime_error("boom");
    co_return 1;
  }()),
               std::runtime_error);
  // Another foreign thread may block_on too, at the same time.
  std::thread other([&] { EXPECT_EQ(rt.block_on(ready(8)), 8); });
  EXPECT_EQ(rt.try_block_on(ready(9)).value(), 9);
  other.join();
}

TEST_P(FlavoursTest, EveryThreadRunsTasksAndEveryCountedFutureIsDestroyedOnce) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  constexpr int kTasks = 20000;
  std::mutex mu;
  std::set<size_t> cores;
  {
    Runtime rt = make_runtime(GetParam());
    int64_t sum = rt.block_on([&]() -> Task<int64_t> {
      std::vector<JoinHandle<int64_t>> hs;
      hs.reserve(kTasks);
      for (int i = 0; i < kTasks; ++i) {
        hs.push_back(pollux::spawn([&, c = Counted(i)]() -> Task<int64_t> {
          if (c.value % 64 == 0) {
            std::lock_guard<std::mutex> lock(mu);
            cores.insert(this_core().value_or(99));
          }
          co_await yield_now();
          co_return c.value;
        }));
      }
      int64_t total = 0;
      for (auto& h : hs) total += (co_await h).value();
      co_return total;
    }());
    EXPECT_EQ(sum, int64_t{kTasks} * (kTasks - 1) / 2);
    // From outside too.
    std::vector<JoinHandle<int>> outside;
    for (int i = 0; i < 100; ++i) outside.push_back(rt.spawn([c = Counted(i)] { return ready(c.value); }));
    for (int i = 0; i < 100; ++i) EXPECT_EQ(join_here(std::move(outside[i])).value(), i);
  }
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(live_task_cells(), cells_before);
  if (GetParam() == Flavour::kMultiThread) {
    // thread_per_core keeps the root's children on the root's core.
    EXPECT_EQ(cores, (std::set<size_t>{0, 1})) << "one worker ran everything";
  }
}

TEST_P(FlavoursTest, HandleSpawnReachesEveryCoreAndSpawnOnPicksOne) {
  Runtime rt = make_runtime(GetParam());
  Handle h = rt.handle();
  std::set<size_t> seen;
  for (int i = 0; i < 8; ++i) {
    JoinResult<size_t> r = join_here(h.spawn([] { return ready(this_core().value_or(99)); }));
    seen.insert(r.value());
  }
  if (GetParam() == Flavour::kThreadPerCore) {
    EXPECT_EQ(seen, (std::set<size_t>{0, 1})) << "Handle::spawn is round robin over the cores";
  }
  // spawn_on: that worker, for the task's whole life (multi_thread never
  // lets it be stolen, across yields and sleeps).
  for (size_t core : {1, 0, 1}) {
    auto where = [core]() -> Task<bool> {
      bool stayed = this_core() == core;
      for (int i = 0; i < 50; ++i) {
        co_await yield_now();
        if (i % 10 == 0) co_await sleep(absl::Microseconds(100));
        stayed = stayed && this_core() == core;
      }
      co_return stayed;
    };
    EXPECT_TRUE(join_here(h.spawn_on(core, where)).value());
    EXPECT_TRUE(join_here(rt.spawn_on(core, where)).value());
  }
  EXPECT_EQ(this_core(), std::nullopt);
}

TEST_P(FlavoursTest, SleepsAndSocketsWorkOnEveryThread) {
  Runtime rt = make_runtime(GetParam());
  std::vector<JoinHandle<absl::Status>> hs;
  for (size_t core = 0; core < 2; ++core) {
    auto body = [core]() -> Task<absl::Status> {
      const absl::Time start = absl::Now();
      co_await sleep(absl::Milliseconds(5));
      absl::Status bad = absl::InternalError(absl::StrCat("on core ", core));
      if (absl::Now() - start < absl::Milliseconds(5)) co_return bad;
      std::array<int, 2> p{};
      if (::pipe2(p.data(), O_CLOEXEC) != 0) co_return bad;
      OwnedFd r(p[0]);
      OwnedFd w(p[1]);
      std::vector<char> hi(2, 'h');
      reactor::IoResult wr = co_await reactor::write(w.get(), std::move(hi));
      if (!wr.n.ok()) co_return wr.n.status();
      reactor::IoResult rd = co_await reactor::read(r.get(), std::vector<char>(2));
      if (!rd.n.ok()) co_return rd.n.status();
      if (*rd.n != 2 || rd.buf[0] != 'h') co_return bad;
      co_return absl::OkStatus();
    };
    hs.push_back(GetParam() == Flavour::kThreadPerCore ? rt.spawn_on(core, body) : rt.spawn(body));
  }
  for (auto& h : hs) EXPECT_TRUE(join_here(std::move(h)).value().ok());
}

TEST_P(FlavoursTest, ThePausedClockIsRefusedWithAReason) {
  Runtime rt = make_runtime(GetParam());
  absl::Status s = rt.block_on([]() -> Task<absl::Status> { co_return timer::try_pause(); }());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("current_thread"), std::string::npos) << s;
}

TEST_P(FlavoursTest, BlockOnInsideATaskIsFailedPrecondition) {
  Runtime rt = make_runtime(GetParam());
  absl::Status s = rt.block_on([&]() -> Task<absl::Status> {
    co_return rt.try_block_on(ready(1)).status();
  }());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(FlavoursTest, BlockOnInsideATaskAbortsWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the watchdog's thread is running
  EXPECT_DEATH(
      {
        Runtime rt = make_runtime(GetParam());
        rt.block_on([&]() -> Task<int> { co_return rt.block_on(ready(1)); }());
      },
      "block_on called from inside a task");
}

TEST_P(FlavoursTest, ShutdownCancelsTasksParkedOnTimersAndIoOnEveryThread) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  const int fds_before = open_fd_count();
  std::vector<JoinHandle<void>> hs;
  std::vector<int> write_ends;
  {
    Runtime rt = make_runtime(GetParam());
    std::atomic<int> parked{0};
    for (size_t i = 0; i < 16; ++i) {
      int p[2];
      ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
      write_ends.push_back(p[1]);
      auto body = [&parked, r = std::make_shared<OwnedFd>(p[0]), c = Counted(int(i)),
                   i]() -> Task<void> {
        parked.fetch_add(1);
        if (i % 2 == 0) {
          co_await sleep(absl::Hours(1));
        } else {
          (void)co_await reactor::read(r->get(), std::vector<char>(16));
        }
        ADD_FAILURE() << "task " << c.value << " finished";
      };
      hs.push_back(GetParam() == Flavour::kThreadPerCore ? rt.spawn_on(i % 2, body)
                                                          : rt.spawn(body));
    }
    // Busy tasks too, queued and running on every thread when shutdown comes.
    for (int i = 0; i < 64; ++i) {
      rt.spawn([c = Counted(100 + i)]() -> Task<void> {
        for (;;) co_await yield_now();
      }).detach();
    }
    while (parked.load() < 16) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the reads reach the kernel
    EXPECT_GT(Counted::live(), 0);
  }
  EXPECT_EQ(Counted::live(), 0) << "a task's future outlived the runtime";
  for (auto& h : hs) EXPECT_TRUE(join_here(std::move(h)).is_cancelled());
  hs.clear();
  for (int fd : write_ends) ::close(fd);
  EXPECT_EQ(live_task_cells(), cells_before);
  EXPECT_EQ(open_fd_count(), fds_before) << "a ring, an eventfd or a pipe leaked";
}

TEST_P(FlavoursTest, SpawnAfterTheRuntimeIsGoneIsCancelled) {
  std::optional<Handle> h;
  {
    Runtime rt = make_runtime(GetParam());
    h.emplace(rt.handle());
  }
  EXPECT_TRUE(join_here(h->spawn(ready(1))).is_cancelled());
}

INSTANTIATE_TEST_SUITE_P(Flavours, FlavoursTest,
                         ::testing::Values(Flavour::kMultiThread, Flavour::kThreadPerCore),
                         flavour_name);

TEST(FlavoursBuildTest, AffinityForMoreWorkersThanCpusIsAClearError) {
  absl::StatusOr<Runtime> rt =
      Runtime::Builder().multi_thread(1000).worker_cpu_affinity().build();
  EXPECT_EQ(rt.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pollux
