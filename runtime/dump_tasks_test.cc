// Tests for Runtime::dump_tasks (runtime.h), on every flavour and both
// backends (BUILD: cc_test_every_flavour): a task blocked on a read is
// listed, idle, with the file and line of its spawn and an age; the dump is
// taken from inside a task and from another thread while the runtime runs;
// a stress run dumps from another thread while tasks come and go (the TSan
// run checks the reads).
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "tests/flavour.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"

namespace pollux {
namespace {

using testing::Watchdog;

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// The dump's entry spawned at this file's `line`, or null.
const TaskInfo* find_spawned_at(const TaskDump& dump, int line) {
  for (const TaskInfo& t : dump.tasks) {
    if (ends_with(t.spawned_at.file_name(), "dump_tasks_test.cc") &&
        static_cast<int>(t.spawned_at.line()) == line) {
      return &t;
    }
  }
  return nullptr;
}

void expect_blocked_reader(const TaskDump& dump, int line, size_t workers) {
  EXPECT_TRUE(dump.complete) << dump.to_string();
  const TaskInfo* t = find_spawned_at(dump, line);
  ASSERT_NE(t, nullptr) << "no task spawned at line " << line << " in\n" << dump.to_string();
  EXPECT_EQ(t->state, TaskInfo::State::kIdle) << t->to_string();
  EXPECT_FALSE(t->cancelled);
  EXPECT_LT(t->worker, workers) << t->to_string();
  if (t->age.has_value()) {
    EXPECT_GE(*t->age, absl::ZeroDuration()) << t->to_string();
    EXPECT_LT(*t->age, absl::Seconds(60)) << t->to_string();
  }
  EXPECT_NE(t->to_string().find("dump_tasks_test.cc:" + std::to_string(line)), std::string::npos)
      << t->to_string();
}

class DumpTasksTest : public ::testing::Test {
 protected:
  Watchdog dog_{std::chrono::seconds(60), "dump_tasks test"};
};

TEST_F(DumpTasksTest, ATaskBlockedOnAReadIsListedWithItsSpawnSite) {
  Runtime rt = make_runtime();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
  const int peer = sv[1];
  int line = 0;
  std::optional<JoinHandle<void>> reader;
  rt.block_on([&]() -> Task<void> {
    line = __LINE__; reader.emplace(pollux::spawn([fd = std::make_shared<OwnedFd>(sv[0])]() -> Task<void> {
      (void)co_await reactor::read(fd->get(), std::vector<char>(16));
    }));
    co_await sleep(absl::Milliseconds(50));  // the read is in flight
    // From inside a task of the runtime.
    const TaskDump dump = rt.dump_tasks();
    expect_blocked_reader(dump, line, rt.worker_count());
    // The task calling it is live too (running), on every flavour but
    // multi_thread's block_on root, which is spawned from outside.
    EXPECT_GE(dump.tasks.size(), 1u);
  }());
  if (!pollux::testing::on_current_thread()) {
    // From a thread that is none of the runtime's, while it runs.
    expect_blocked_reader(rt.dump_tasks(), line, rt.worker_count());
  } else {
    // The runtime thread between two block_ons reads directly.
    expect_blocked_reader(rt.dump_tasks(), line, rt.worker_count());
    // Another thread's request is served while this one drives it.
    std::atomic<bool> done{false};
    std::thread other([&] {
      const TaskDump dump = rt.dump_tasks();
      expect_blocked_reader(dump, line, rt.worker_count());
      done.store(true);
    });
    rt.block_on([&]() -> Task<void> {
      while (!done.load()) co_await sleep(absl::Milliseconds(1));
    }());
    other.join();
  }
  reader->abort();
  reader.reset();
  ::close(peer);
}

TEST_F(DumpTasksTest, FromAnUndrivenCurrentThreadRuntimeTheDumpSaysIncomplete) {
  if (!pollux::testing::on_current_thread()) GTEST_SKIP() << pollux::testing::kCurrentThreadOnly;
  Runtime rt = make_runtime();
  rt.block_on(sleep(absl::Milliseconds(1)));  // bound to this thread
  TaskDump dump;
  std::thread other([&] { dump = rt.dump_tasks(absl::Milliseconds(50)); });
  other.join();
  EXPECT_FALSE(dump.complete);
  // The request is served (and dropped) at the next tick.
  rt.block_on(sleep(absl::Milliseconds(1)));
}

TEST_F(DumpTasksTest, DumpingFromAnotherThreadWhileTasksComeAndGo) {
  Runtime rt = make_runtime();
  std::atomic<bool> stop{false};
  std::atomic<int> dumps{0};
  std::thread dumper([&] {
    while (!stop.load()) {
      // (The last request may find the runtime no longer driven.)
      const TaskDump d = rt.dump_tasks(absl::Seconds(1));
      for (const TaskInfo& t : d.tasks) {
        EXPECT_NE(t.spawned_at.line(), 0u) << t.to_string();
      }
      dumps.fetch_add(1);
    }
  });
  rt.block_on([&]() -> Task<void> {
    for (int round = 0; round < 20; ++round) {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < 20; ++i) {
        hs.push_back(pollux::spawn([]() -> Task<void> {
          co_await yield_now();
          co_await sleep(absl::Milliseconds(1));
        }));
      }
      for (JoinHandle<void>& h : hs) (void)co_await std::move(h);
    }
    // At least a few dumps ran meanwhile.
    while (dumps.load() < 3) co_await sleep(absl::Milliseconds(1));
  }());
  stop.store(true);
  dumper.join();
  EXPECT_GE(dumps.load(), 3);
  EXPECT_TRUE(rt.dump_tasks().complete);
}

TEST_F(DumpTasksTest, AShutDownRuntimeDumpsNothing) {
  Runtime rt = make_runtime();
  (void)rt.shutdown_timeout(absl::Seconds(5));
  const TaskDump d = rt.dump_tasks();
  EXPECT_TRUE(d.tasks.empty());
  EXPECT_TRUE(d.complete);
}

}  // namespace
}  // namespace pollux
