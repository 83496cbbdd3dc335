// Tests for Runtime::shutdown_timeout (runtime.h), on every flavour and both
// backends (BUILD: cc_test_every_flavour): tasks blocked on a socket read, a
// long sleep and a channel recv, and a blocking call that sleeps 2 s. The
// shutdown returns in about `d`, reports the blocking call as unfinished
// and nothing leaked; every task's future (and what it owned) is gone at
// once, the blocking call's cell once its thread finishes; fds are back to
// their start; spawning afterwards yields Cancelled handles; block_on is
// FailedPrecondition.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/ready.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "sync/mpsc.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/sanitizers.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::open_fd_count;
using testing::Watchdog;

// Polls a JoinHandle to its result on this thread (outside any runtime).
template <class T>
JoinResult<OrUnit<T>> join_here(JoinHandle<T> h) {
  LocalExecutor ex;
  return ex.block_on(std::move(h));
}

// Waits (really) until `done()` or `limit` passed; returns done().
template <class F>
bool wait_until(F done, absl::Duration limit) {
  const absl::Time give_up = absl::Now() + limit;
  while (!done() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  return done();
}

// A blocking call that sleeps 2 s, owning a Counted(5). Built outside any
// coroutine: gcc 12 destroys an init-captured temporary of a lambda
// written inside a co_await expression once more than it constructs it.
JoinHandle<int> spawn_two_second_call(const Handle& handle) {
  return handle.spawn_blocking([c5 = Counted(5)] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return c5.value;
  });
}

class ShutdownTimeoutTest : public ::testing::Test {
 protected:
  Watchdog dog_{std::chrono::seconds(60), "shutdown_timeout test"};
};

constexpr absl::Duration kBound = absl::Milliseconds(200);
// Generous: loaded CI machines and sanitizers.
constexpr absl::Duration kMargin = absl::Milliseconds(1500);

TEST_F(ShutdownTimeoutTest, BlockedTasksAndABlockingCallReturnInAboutD) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  const int fds_before = open_fd_count();
  int peer = -1;
  std::optional<sync::mpsc::Sender<int>> tx;
  {
    absl::StatusOr<Runtime> built = pollux::testing::runtime_builder().enable_all().build();
    ASSERT_TRUE(built.ok()) << built.status();
    Runtime rt = std::move(*built);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    peer = sv[1];
    auto [sender, receiver] = sync::mpsc::channel<int>(4);
    tx.emplace(std::move(sender));
    Handle handle = rt.handle();
    rt.block_on([&, rx = std::move(receiver)]() mutable -> Task<void> {
      // A read that never gets data; the socket end is the task's.
      pollux::spawn([fd = std::make_shared<OwnedFd>(sv[0]), c = Counted(1)]() -> Task<void> {
        reactor::IoResult r = co_await reactor::read(fd->get(), std::vector<char>(64));
        ADD_FAILURE() << "the read finished: " << r.n.status() << " " << c.value;
      }).detach();
      pollux::spawn([c = Counted(2)]() -> Task<void> {
        co_await sleep(absl::Hours(1));
        ADD_FAILURE() << "woke up " << c.value;
      }).detach();
      pollux::spawn([rx = std::move(rx), c = Counted(3)]() mutable -> Task<void> {
        std::optional<int> v = co_await rx.recv();
        ADD_FAILURE() << "received " << v.has_value() << " " << c.value;
      }).detach();
      // A task waiting for a blocking call that outlasts the bound.
      pollux::spawn([handle, c = Counted(4)]() -> Task<void> {
        JoinHandle<int> call = spawn_two_second_call(handle);
        (void)co_await std::move(call);
        ADD_FAILURE() << "the blocking call was waited for " << c.value;
      }).detach();
      // Every task reaches its wait (and the blocking call its thread).
      co_await sleep(absl::Milliseconds(100));
    }());
    EXPECT_GE(pollux::testing::live_ops(rt), 1u) << "the read should be in flight";
    EXPECT_EQ(Counted::live(), 5);

    const absl::Time start = absl::Now();
    const ShutdownReport report = rt.shutdown_timeout(kBound);
    const absl::Duration took = absl::Now() - start;
    EXPECT_LT(took, kBound + kMargin) << report.to_string();
    // The blocking call keeps it waiting for the whole bound.
    EXPECT_GE(took, kBound - absl::Milliseconds(20)) << report.to_string();
    EXPECT_EQ(report.blocking_still_running, 1u) << report.to_string();
    EXPECT_EQ(report.leaked_ops, 0u) << report.to_string();
    EXPECT_FALSE(report.complete());
    EXPECT_TRUE(rt.is_shut_down());

    // Every task's future is gone; the blocking call's closure still runs.
    EXPECT_EQ(Counted::live(), 1) << "a task's future outlived shutdown_timeout";
    EXPECT_EQ(pollux::testing::live_ops(rt), 0u);
    EXPECT_EQ(rt.worker_count(), 0u);

    // Finished: no more block_on, and spawns are cancelled, never run.
    absl::StatusOr<int> again = rt.try_block_on(ready(1));
    EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
    EXPECT_TRUE(join_here(rt.spawn(ready(1))).is_cancelled());
    EXPECT_TRUE(join_here(rt.spawn_on(0, ready(2))).is_cancelled());
    EXPECT_TRUE(join_here(rt.spawn_blocking([] { return 3; })).is_cancelled());
    EXPECT_TRUE(join_here(handle.spawn(ready(4))).is_cancelled());
    EXPECT_TRUE(join_here(handle.spawn_blocking([] { return 5; })).is_cancelled());
    // A second call has nothing left to do.
    EXPECT_TRUE(rt.shutdown_timeout(kBound).complete());
  }
  // The channel keeps the receiving task's last waker (and so its cell,
  // not its future) until the channel goes with its sender.
  tx.reset();
  ::close(peer);
  // The detached blocking thread finishes its call, then its cell goes, and
  // the cell of the task that awaited it (its waker was in the call's
  // trailer).
  EXPECT_TRUE(wait_until([&] { return live_task_cells() == cells_before; }, absl::Seconds(10)))
      << live_task_cells() - cells_before << " task cell(s) still alive";
  EXPECT_TRUE(wait_until([] { return Counted::live() == 0; }, absl::Seconds(5)))
      << Counted::live();
  // The pool's detached thread has exited by now (it freed the cell last);
  // TSan's symbolizer may hold fds of its own.
  if (!testing::kUnderTsan) {
    EXPECT_EQ(open_fd_count(), fds_before);
  }
}

TEST_F(ShutdownTimeoutTest, NothingUnfinishedReturnsAtOnceAndComplete) {
  absl::StatusOr<Runtime> built = pollux::testing::runtime_builder().enable_all().build();
  ASSERT_TRUE(built.ok()) << built.status();
  Runtime rt = std::move(*built);
  EXPECT_EQ(rt.block_on([]() -> Task<int> {
    JoinHandle<int> h = pollux::spawn([]() -> Task<int> { co_return 7; });
    co_return (co_await std::move(h)).value();
  }()), 7);
  const ShutdownReport report = rt.shutdown_timeout(absl::Seconds(30));
  EXPECT_TRUE(report.complete()) << report.to_string();
  EXPECT_LT(report.elapsed, absl::Seconds(5)) << report.to_string();
}

// A blocking call that finishes within the bound is waited for.
TEST_F(ShutdownTimeoutTest, ABlockingCallThatEndsInTimeIsWaitedFor) {
  Counted::reset();
  absl::StatusOr<Runtime> built = pollux::testing::runtime_builder().enable_all().build();
  ASSERT_TRUE(built.ok()) << built.status();
  Runtime rt = std::move(*built);
  JoinHandle<int> h = rt.spawn_blocking([c = Counted(1)] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return c.value;
  });
  // Give it its thread.
  absl::SleepFor(absl::Milliseconds(20));
  const ShutdownReport report = rt.shutdown_timeout(absl::Seconds(20));
  EXPECT_TRUE(report.complete()) << report.to_string();
  EXPECT_EQ(Counted::live(), 0);
  JoinResult<int> r = join_here(std::move(h));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 1);
}

}  // namespace
}  // namespace pollux
