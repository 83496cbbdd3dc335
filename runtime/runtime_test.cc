// Tests for Runtime (runtime.h), current_thread flavour: building with and
// without I/O and time, block_on and try_block_on (values, void, move-only,
// wrong thread, inside a task), spawning from inside block_on and from other
// threads (Runtime::spawn and Handle::spawn), the thread-local current
// driver, timers under a busy run queue, and shutdown with tasks still
// pending on timers and I/O (JoinHandles cancelled, no task cell, fd or
// object leaked).
#include "runtime/runtime.h"

#include <fcntl.h>
#include <cerrno>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/context.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "future/testing/manual_future.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"
#include "timer/timeout.h"
#include "timer/timer_queue.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::make_manual_future;
using testing::open_fd_count;
using testing::Watchdog;

// The flavour the BUILD target names (tests/flavour.h). The tests that
// build a current_thread runtime themselves, or skip elsewhere, are about
// current_thread: the runtime driven by the test's thread.
Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

// Polls a JoinHandle to its result on this thread (outside any runtime).
template <class T>
JoinResult<OrUnit<T>> join_here(JoinHandle<T> h) {
  LocalExecutor ex;
  return ex.block_on(std::move(h));
}

class RuntimeTest : public ::testing::Test {
 protected:
  Watchdog dog_{std::chrono::seconds(60), "runtime test"};
};

// ---- Building ----

TEST_F(RuntimeTest, BuildEnableAllHasIoAndTime) {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_NE(rt->io_backend(), nullptr);
  EXPECT_NE(rt->timer_queue(), nullptr);
  EXPECT_STREQ(rt->io_backend()->name(), rt->backend().name());
  EXPECT_NE(rt->backend().kind, BackendKind::kAuto);
  EXPECT_FALSE(rt->backend().reason.empty());
  EXPECT_EQ(rt->block_on(ready(7)), 7);
}

// A write and a read through a pipe on `rt` (any backend).
std::string pipe_round_trip(Runtime& rt) {
  return rt.block_on([]() -> Task<std::string> {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    OwnedFd r(p[0]), w(p[1]);
    std::vector<char> msg(2, 'o');
    msg[1] = 'k';  // (a braced list in a coroutine trips gcc 12)
    reactor::IoResult wr = co_await reactor::write(w.get(), std::move(msg));
    EXPECT_TRUE(wr.n.ok()) << wr.n.status();
    reactor::IoResult rd = co_await reactor::read(r.get(), std::vector<char>(8));
    co_return std::string(rd.buf.data(), rd.n.value_or(0));
  }());
}

// The test binary runs twice, once with POLLUX_BACKEND=epoll (BUILD's
// cc_test_both_backends): the default kAuto must follow it.
TEST_F(RuntimeTest, TheDefaultBackendFollowsPolluxBackend) {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  ASSERT_TRUE(rt.ok()) << rt.status();
  const char* env = std::getenv("POLLUX_BACKEND");
  if (env != nullptr && std::string(env) == "epoll") {
    EXPECT_EQ(rt->backend().kind, BackendKind::kEpoll);
    EXPECT_EQ(rt->backend().reason, "POLLUX_BACKEND=epoll");
  } else if (env == nullptr || *env == '\0') {
    EXPECT_NE(rt->backend().reason.find("kAuto"), std::string::npos) << rt->backend().reason;
  }
  EXPECT_STREQ(rt->io_backend()->name(), rt->backend().name());
  EXPECT_EQ(pipe_round_trip(*rt), "ok");
}

TEST_F(RuntimeTest, AnExplicitBackendIsUsedWhateverTheEnvironmentSays) {
  absl::StatusOr<Runtime> e =
      Runtime::Builder().current_thread().enable_all().backend(BackendKind::kEpoll).build();
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->backend().kind, BackendKind::kEpoll);
  EXPECT_STREQ(e->backend().name(), "epoll");
  EXPECT_STREQ(e->io_backend()->name(), "epoll");
  EXPECT_EQ(e->backend().reason, "Builder::backend(kEpoll)");
  EXPECT_EQ(pipe_round_trip(*e), "ok");

  absl::StatusOr<Runtime> u =
      Runtime::Builder().current_thread().enable_all().backend(BackendKind::kIoUring).build();
  ASSERT_TRUE(u.ok()) << u.status() << " (io_uring works on these machines)";
  EXPECT_EQ(u->backend().kind, BackendKind::kIoUring);
  EXPECT_STREQ(u->io_backend()->name(), "io_uring");
  EXPECT_EQ(pipe_round_trip(*u), "ok");
}

TEST_F(RuntimeTest, ABadPolluxBackendIsInvalidArgumentNamingIt) {
  const char* old = std::getenv("POLLUX_BACKEND");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("POLLUX_BACKEND", "kqueue", 1);
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  if (old != nullptr) {
    ::setenv("POLLUX_BACKEND", saved.c_str(), 1);
  } else {
    ::unsetenv("POLLUX_BACKEND");
  }
  ASSERT_FALSE(rt.ok());
  EXPECT_EQ(rt.status().code(), absl::StatusCode::kInvalidArgument) << rt.status();
  EXPECT_NE(rt.status().message().find("POLLUX_BACKEND=kqueue"), absl::string_view::npos)
      << rt.status();
}

TEST_F(RuntimeTest, WithoutIoTheBackendIsNone) {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_time().build();
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ(rt->backend().kind, BackendKind::kAuto);
  EXPECT_STREQ(rt->backend().name(), "none");
}

TEST_F(RuntimeTest, BuildTimeOnlyAndBareRuntimesWork) {
  absl::StatusOr<Runtime> timed = Runtime::Builder().current_thread().enable_time().build();
  ASSERT_TRUE(timed.ok()) << timed.status();
  EXPECT_EQ(timed->io_backend(), nullptr);
  ASSERT_NE(timed->timer_queue(), nullptr);
  const absl::Time start = absl::Now();
  timed->block_on(sleep(absl::Milliseconds(5)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(5));

  absl::StatusOr<Runtime> bare = Runtime::Builder().current_thread().build();
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->io_backend(), nullptr);
  EXPECT_EQ(bare->timer_queue(), nullptr);
  EXPECT_EQ(bare->block_on(ready(std::string("bare"))), "bare");
}

// ---- block_on ----

TEST_F(RuntimeTest, BlockOnReturnsValues) {
  Runtime rt = make_runtime();
  EXPECT_EQ(rt.block_on(ready(42)), 42);
  EXPECT_EQ(rt.block_on([]() -> Task<std::string> {
              co_await yield_now();
              co_return std::string("from a coroutine");
            }()),
            "from a coroutine");
  std::unique_ptr<int> p = rt.block_on(ready(std::make_unique<int>(5)));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
  bool ran = false;
  rt.block_on([&]() -> Task<void> {
    co_await sleep(absl::Milliseconds(1));
    ran = true;
  }());
  EXPECT_TRUE(ran);
  // Many block_on calls on the same runtime in a row.
  int sum = 0;
  for (int i = 0; i < 100; ++i) sum += rt.block_on(ready(i));
  EXPECT_EQ(sum, 4950);
}

TEST_F(RuntimeTest, SleepIsNeverEarly) {
  Runtime rt = make_runtime();
  const absl::Time start = absl::Now();
  rt.block_on(sleep(absl::Milliseconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(10));
}

TEST_F(RuntimeTest, TheRuntimeContextIsSetOnlyInsideBlockOn) {
  if (!pollux::testing::on_current_thread()) GTEST_SKIP() << pollux::testing::kCurrentThreadOnly;
  Runtime rt = make_runtime();
  EXPECT_EQ(reactor::current_backend(), nullptr);
  EXPECT_EQ(timer::current_timer_queue(), nullptr);
  EXPECT_EQ(RuntimeContext::current().scheduler, nullptr);
  rt.block_on(poll_fn([&](Context&) -> Poll<Unit> {
    EXPECT_EQ(reactor::current_backend(), rt.io_backend());
    EXPECT_EQ(timer::current_timer_queue(), rt.timer_queue());
    EXPECT_NE(RuntimeContext::current().scheduler, nullptr);
    return Ready(Unit{});
  }));
  EXPECT_EQ(reactor::current_backend(), nullptr) << "block_on left its backend behind";
  EXPECT_EQ(RuntimeContext::current().scheduler, nullptr);
  EXPECT_EQ(timer::current_timer_queue(), nullptr);
  // So an operation here fails cleanly instead of touching the runtime.
  LocalExecutor ex;
  absl::Status s = ex.block_on(reactor::nop());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("enable_io"), absl::string_view::npos) << s;
}

TEST_F(RuntimeTest, TryBlockOnFromAnotherThreadIsFailedPrecondition) {
  if (!pollux::testing::on_current_thread()) GTEST_SKIP() << pollux::testing::kCurrentThreadOnly;
  Runtime rt = make_runtime();
  EXPECT_EQ(rt.block_on(ready(1)), 1);  // binds the runtime to this thread
  absl::Status other;
  std::thread t([&] { other = rt.try_block_on(ready(2)).status(); });
  t.join();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition) << other;
  EXPECT_NE(other.message().find("thread"), absl::string_view::npos) << other;
  // Still fine on its own thread, for values and for void.
  absl::StatusOr<int> v = rt.try_block_on(ready(3));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 3);
  absl::StatusOr<Unit> u = rt.try_block_on(ready());
  EXPECT_TRUE(u.ok()) << u.status();
}

TEST_F(RuntimeTest, TryBlockOnFromInsideATaskIsFailedPrecondition) {
  Runtime rt = make_runtime();
  absl::Status inner = rt.block_on(poll_fn([&](Context&) -> Poll<absl::Status> {
    return Ready(rt.try_block_on(ready(1)).status());
  }));
  EXPECT_EQ(inner.code(), absl::StatusCode::kFailedPrecondition) << inner;
  EXPECT_NE(inner.message().find("inside a task"), absl::string_view::npos) << inner;
}

TEST_F(RuntimeTest, BuiltOnOneThreadRunsOnTheFirstThreadThatEntersIt) {
  absl::StatusOr<Runtime> built = Runtime::Builder().current_thread().enable_all().build();
  ASSERT_TRUE(built.ok()) << built.status();
  std::optional<Runtime> rt(std::move(*built));
  std::string got;
  std::thread t([&] {
    got = rt->block_on([]() -> Task<std::string> {
      int p[2];
      EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
      OwnedFd r(p[0]), w(p[1]);
      std::vector<char> msg{'o', 'k'};
      reactor::IoResult wr = co_await reactor::write(w.get(), std::move(msg));
      EXPECT_TRUE(wr.n.ok()) << wr.n.status();
      reactor::IoResult rd = co_await reactor::read(r.get(), std::vector<char>(8));
      co_return std::string(rd.buf.data(), rd.n.value_or(0));
    }());
    // A ring enabled on this thread is drained on this thread.
    rt.reset();
  });
  t.join();
  EXPECT_EQ(got, "ok");
}

// Two threads racing their first block_on on a fresh runtime: exactly one
// becomes the runtime thread and the other is refused (the binding is one
// compare-exchange; when it was a plain write both could run the executor
// at once, which TSan reports). The winner destroys the runtime.
TEST_F(RuntimeTest, TwoThreadsRacingTheFirstBlockOnBindExactlyOne) {
  constexpr int kIters = 50;
  for (int iter = 0; iter < kIters; ++iter) {
    absl::StatusOr<Runtime> built = Runtime::Builder().current_thread().enable_all().build();
    ASSERT_TRUE(built.ok()) << built.status();
    std::optional<Runtime> rt(std::move(*built));
    std::atomic<int> arrived{0};
    std::atomic<int> finished{0};
    std::atomic<int> ok{0};
    std::atomic<int> refused{0};
    auto contender = [&] {
      arrived.fetch_add(1);
      while (arrived.load() < 2) {
      }
      absl::StatusOr<int> r = rt->try_block_on(ready(7));
      const bool won = r.ok();
      if (won) {
        ok.fetch_add(1);
      } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
        refused.fetch_add(1);
      }
      finished.fetch_add(1);
      if (won) {
        while (finished.load() < 2) {
        }
        rt.reset();  // on the runtime thread, once the loser is out
      }
    };
    std::thread a(contender);
    std::thread b(contender);
    a.join();
    b.join();
    ASSERT_EQ(ok.load(), 1) << "iteration " << iter;
    ASSERT_EQ(refused.load(), 1) << "iteration " << iter;
    EXPECT_FALSE(rt.has_value());
  }
}

// DESIGN §5: with the clock paused and no timer set, a block_on that waits
// for another thread blocks in the backend like an unpaused park. (It used
// to make a zero-timeout kernel entry per loop: a busy spin of syscalls.)
TEST_F(RuntimeTest, APausedClockWithNoTimerBlocksInsteadOfSpinning) {
  if (!pollux::testing::on_current_thread()) GTEST_SKIP() << pollux::testing::kCurrentThreadOnly;
  Runtime rt = make_runtime();
  rt.block_on(poll_fn([](Context&) -> Poll<Unit> {
    timer::pause();
    return Ready(Unit{});
  }));
  auto [fut, manual] = testing::make_manual_future<int>();
  const uint64_t entries_before = rt.io_backend()->stats().kernel_entries;
  std::thread completer([m = std::move(manual)]() mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    m.complete(5);
  });
  EXPECT_EQ(rt.block_on(std::move(fut)), 5);
  completer.join();
  const uint64_t entries = rt.io_backend()->stats().kernel_entries - entries_before;
  EXPECT_LE(entries, 10u) << "block_on spun through the kernel while it waited";
  std::fprintf(stderr, "paused clock, 100 ms wait: %llu kernel entries\n",
               static_cast<unsigned long long>(entries));
}

// ---- Spawning ----

TEST_F(RuntimeTest, SpawnInsideBlockOn) {
  Runtime rt = make_runtime();
  const std::thread::id me = std::this_thread::get_id();
  int total = rt.block_on([&]() -> Task<int> {
    JoinHandle<int> a = pollux::spawn(ready(40));
    JoinHandle<int> b = pollux::spawn([me]() -> Task<int> {
      if (pollux::testing::on_current_thread()) {
        EXPECT_EQ(std::this_thread::get_id(), me);
      }
      co_await sleep(absl::Milliseconds(1));
      co_return 2;
    });
    JoinHandle<int> c = rt.spawn(ready(100));  // Runtime::spawn on its own thread
    JoinResult<int> ra = co_await a;
    JoinResult<int> rb = co_await b;
    JoinResult<int> rc = co_await c;
    co_return ra.value() + rb.value() + rc.value();
  }());
  EXPECT_EQ(total, 142);
}

TEST_F(RuntimeTest, SpawnFromAnotherThreadWhileBlockOnWaits) {
  Runtime rt = make_runtime();
  const std::thread::id rt_thread = std::this_thread::get_id();
  std::atomic<int> ran_elsewhere{0};
  auto [handles_fut, handles] = make_manual_future<std::pair<JoinHandle<int>, JoinHandle<int>>>();
  std::thread t([&, handles = handles] {
    // Give the runtime time to park in its driver: the spawns must wake it.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    auto body = [&](int v) {
      return [rt_thread, ran = &ran_elsewhere, v]() -> Task<int> {
        if (std::this_thread::get_id() != rt_thread) ran->fetch_add(1);
        co_await yield_now();
        co_return v;
      };
    };
    JoinHandle<int> a = rt.spawn(body(20));
    JoinHandle<int> b = rt.handle().spawn(body(22));
    auto h = handles;  // complete() is non-const
    h.complete(std::make_pair(std::move(a), std::move(b)));
  });
  int sum = rt.block_on([&, f = std::move(handles_fut)]() mutable -> Task<int> {
    std::pair<JoinHandle<int>, JoinHandle<int>> hs = co_await f;
    JoinResult<int> a = co_await hs.first;
    JoinResult<int> b = co_await hs.second;
    co_return a.value() + b.value();
  }());
  t.join();
  EXPECT_EQ(sum, 42);
  if (pollux::testing::on_current_thread()) {
    EXPECT_EQ(ran_elsewhere.load(), 0) << "remote spawns run on the runtime's thread";
  }
}

TEST_F(RuntimeTest, RemoteSpawnJoinedFromTheSpawningThread) {
  Runtime rt = make_runtime();
  auto [stop_fut, stop] = make_manual_future<int>();
  std::optional<JoinResult<int>> seen;
  std::thread t([&, stop = stop]() mutable {
    JoinHandle<int> h = rt.handle().spawn([]() -> Task<int> {
      co_await sleep(absl::Milliseconds(2));
      co_return 9;
    });
    seen.emplace(join_here(std::move(h)));  // waits on this thread for the runtime
    stop.complete(1);
  });
  EXPECT_EQ(rt.block_on(std::move(stop_fut)), 1);
  t.join();
  ASSERT_TRUE(seen.has_value());
  ASSERT_TRUE(seen->ok());
  EXPECT_EQ(seen->value(), 9);
}

TEST_F(RuntimeTest, HandleOutlivingTheRuntimeSpawnsCancelledTasks) {
  std::optional<Handle> h;
  {
    Runtime rt = make_runtime();
    rt.block_on(ready());
    h.emplace(rt.handle());
  }
  Counted::reset();
  JoinHandle<int> j = h->spawn([c = Counted(1)]() -> Task<int> { co_return c.value; });
  JoinResult<int> r = join_here(std::move(j));
  EXPECT_TRUE(r.is_cancelled());
  EXPECT_EQ(Counted::live(), 0) << "the refused task's future was dropped";
}

// ---- Timers under load ----

TEST_F(RuntimeTest, SleepCompletesWhileHundredTasksKeepYielding) {
  constexpr int kTasks = 100;
  Runtime rt = make_runtime();
  // Atomics: on the multi-thread flavours the tasks run on both workers.
  std::atomic<bool> done{false};
  std::atomic<int> stopped_by_flag{0}, stopped_by_limit{0};
  absl::Duration slept;
  rt.block_on([&]() -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(pollux::spawn([d = &done, flag = &stopped_by_flag,
                                  lim = &stopped_by_limit]() -> Task<void> {
        const absl::Time limit = absl::Now() + absl::Seconds(10);
        for (long n = 0; !d->load(); ++n) {
          if (n > 5'000'000 || absl::Now() > limit) {
            ++*lim;
            co_return;
          }
          co_await yield_now();
        }
        ++*flag;
      }));
    }
    co_await yield_now();  // the run queue is never empty from here on
    const absl::Time start = absl::Now();
    co_await sleep(absl::Milliseconds(5));
    slept = absl::Now() - start;
    done = true;
    for (auto& h : hs) (void)co_await h;
  }());
  EXPECT_EQ(stopped_by_flag.load(), kTasks) << "the sleep only fired once the busy tasks gave up";
  EXPECT_EQ(stopped_by_limit.load(), 0);
  EXPECT_GE(slept, absl::Milliseconds(5)) << "woke early";
}

// ---- Shutdown ----

// Tasks still waiting when the runtime goes: one sleeping for an hour, one
// reading a pipe nobody writes (and owning its read end), one in a kernel
// timeout op, a detached one. Destroying the runtime drops them all: their
// JoinHandles yield Cancelled, their task cells are freed once the handles
// go, every object they owned is destroyed, every fd the runtime or the tasks
// opened is closed.
TEST_F(RuntimeTest, DestroyingTheRuntimeCancelsPendingTasks) {
  if (!pollux::testing::on_current_thread()) GTEST_SKIP() << pollux::testing::kCurrentThreadOnly;
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  const int fds_before = open_fd_count();
  std::optional<JoinHandle<void>> sleeper;
  std::optional<JoinHandle<size_t>> reader;
  std::optional<JoinHandle<absl::Status>> ktimer;
  int write_end = -1, read_end = -1;
  {
    Runtime rt = make_runtime();
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    read_end = p[0];
    write_end = p[1];
    rt.block_on([&]() -> Task<void> {
      sleeper.emplace(pollux::spawn([c = Counted(1)]() -> Task<void> {
        co_await sleep(absl::Hours(1));
        ADD_FAILURE() << "woke up " << c.value;
      }));
      reader.emplace(pollux::spawn([r = std::make_shared<OwnedFd>(p[0]), c = Counted(2)]() -> Task<size_t> {
        reactor::IoResult res = co_await reactor::read(r->get(), std::vector<char>(4096));
        co_return res.n.value_or(0);
      }));
      ktimer.emplace(pollux::spawn(reactor::timeout(absl::Hours(1))));
      pollux::spawn([c = Counted(3)]() -> Task<void> {
        co_await sleep(absl::Hours(2));
      }).detach();
      co_await yield_now();
      EXPECT_TRUE((co_await reactor::nop()).ok());  // the read and the timeout are in the kernel
      EXPECT_EQ(rt.io_backend()->live_ops(), 2u);
      EXPECT_EQ(rt.timer_queue()->active_timers(), 2u);
    }());
    EXPECT_GT(Counted::live(), 0);
    EXPECT_GT(live_task_cells(), cells_before);
  }
  EXPECT_EQ(Counted::live(), 0) << "a pending task's future outlived the runtime";
  // The read end was owned by the reading task: closed with it.
  errno = 0;
  EXPECT_EQ(::fcntl(read_end, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF) << "the reading task's pipe end is still open";

  JoinResult<Unit> s = join_here(std::move(*sleeper));
  JoinResult<size_t> r = join_here(std::move(*reader));
  JoinResult<absl::Status> k = join_here(std::move(*ktimer));
  EXPECT_TRUE(s.is_cancelled());
  EXPECT_TRUE(r.is_cancelled());
  EXPECT_TRUE(k.is_cancelled());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kCancelled);
  sleeper.reset();
  reader.reset();
  ktimer.reset();
  ::close(write_end);
  // (The driver's eventfd lives as long as anything that can wake the
  // executor, JoinHandles included, so it is counted only now.)
  EXPECT_EQ(open_fd_count(), fds_before) << "the ring, the eventfd or the pipe leaked";
  EXPECT_EQ(live_task_cells(), cells_before) << "a task cell leaked";
}

TEST_F(RuntimeTest, DestroyingANeverEnteredRuntimeWithRemoteSpawnsCancelsThem) {
  // The multi-thread flavours start their workers in build(): never unentered.
  if (!pollux::testing::on_current_thread()) GTEST_SKIP() << pollux::testing::kCurrentThreadOnly;
  const int64_t cells_before = live_task_cells();
  const int fds_before = open_fd_count();
  std::optional<JoinHandle<int>> h;
  {
    Runtime rt = make_runtime();
    std::thread t([&] { h.emplace(rt.handle().spawn(ready(1))); });
    t.join();
  }
  EXPECT_TRUE(join_here(std::move(*h)).is_cancelled());
  EXPECT_EQ(live_task_cells(), cells_before);
  EXPECT_EQ(open_fd_count(), fds_before);
}

TEST_F(RuntimeTest, MovedRuntimeKeepsWorking) {
  Runtime a = make_runtime();
  EXPECT_EQ(a.block_on(ready(1)), 1);
  Runtime b = std::move(a);
  EXPECT_TRUE(b.block_on(reactor::nop()).ok());
  b.block_on(sleep(absl::Milliseconds(1)));
  EXPECT_EQ(b.block_on(ready(2)), 2);
}

}  // namespace
}  // namespace pollux
