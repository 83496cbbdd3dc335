// Misuse that must be a message, not a segfault, in a release build too:
// polling a finished or empty Task, awaiting a Task twice, polling a
// JoinHandle after Ready, and using a moved-from Runtime. These are
// POLLUX_CHECKs (always on, future/assert.h), so this file is compiled with
// -O2 -DNDEBUG (tests/BUILD.bazel) in every configuration CI runs, without a
// Bazel transition: the checks are inline in task.h and join_handle.h, and
// every template they sit in is instantiated here with a type of this file
// only (Value), so the linker cannot pick a copy compiled elsewhere without
// NDEBUG. (Runtime's check is in runtime.cc, where POLLUX_CHECK does not
// depend on NDEBUG either.) With the old POLLUX_DCHECKs these tests fail:
// the child dies of a segfault or runs on, and the message is missing.
#include <utility>

#include "absl/status/statusor.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "future/context.h"
#include "future/ready.h"
#include "future/task.h"
#include "future/waker.h"
#include "gtest/gtest.h"
#include "runtime/runtime.h"

#ifndef NDEBUG
#error "release_checks_test must be built with -DNDEBUG (see tests/BUILD.bazel)"
#endif

namespace pollux {
namespace {

// Only this file instantiates Task<Value> and JoinHandle<Value>.
struct Value {
  int v = 0;
};

Task<Value> make_value(int v) { co_return Value{v}; }

class ReleaseChecksDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  Budget budget_ = Budget::unlimited();
  Context cx_{noop_waker(), budget_};
};

TEST_F(ReleaseChecksDeathTest, PollingAFinishedTask) {
  Task<Value> t = make_value(7);
  Poll<Value> first = t.poll(cx_);
  ASSERT_TRUE(first.is_ready());
  EXPECT_EQ(std::move(first).value().v, 7);
  EXPECT_DEATH((void)t.poll(cx_), "Task polled after it completed");
}

TEST_F(ReleaseChecksDeathTest, PollingAnEmptyTask) {
  Task<Value> t;
  EXPECT_DEATH((void)t.poll(cx_), "polled an empty");
  Task<Value> from = make_value(1);
  Task<Value> to = std::move(from);
  EXPECT_DEATH((void)from.poll(cx_), "polled an empty");  // NOLINT(bugprone-use-after-move)
}

TEST_F(ReleaseChecksDeathTest, AwaitingATaskTwice) {
  auto body = []() -> Task<Value> {
    Task<Value> child = make_value(2);
    Value a = co_await child;
    Value b = co_await child;
    co_return Value{a.v + b.v};
  };
  Task<Value> t = body();
  EXPECT_DEATH((void)t.poll(cx_), "co_await on a Task that already ran");
}

TEST_F(ReleaseChecksDeathTest, PollingAJoinHandleAfterReady) {
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        JoinHandle<Value> h = ex.spawn_local(ready(Value{3}));
        ex.run_until_idle();
        Poll<JoinResult<Value>> r = h.poll(cx_);
        if (!r.is_ready()) std::abort();  // would be a wrong death, not the message
        (void)h.poll(cx_);
      },
      "JoinHandle polled after it returned Ready");
}

TEST_F(ReleaseChecksDeathTest, UsingAMovedFromRuntime) {
  absl::StatusOr<Runtime> built = Runtime::Builder().current_thread().build();
  ASSERT_TRUE(built.ok()) << built.status();
  Runtime from = std::move(*built);
  Runtime to = std::move(from);
  EXPECT_EQ(to.block_on(ready(5)), 5);  // the runtime itself moved intact
  EXPECT_DEATH((void)from.block_on(ready(1)), "use of a moved-from Runtime");
  EXPECT_DEATH((void)from.spawn(ready(1)), "use of a moved-from Runtime");
  EXPECT_DEATH((void)from.handle(), "use of a moved-from Runtime");
  EXPECT_DEATH((void)from.worker_count(), "use of a moved-from Runtime");
  EXPECT_DEATH((void)from.backend(), "use of a moved-from Runtime");
  // Assigning to a moved-from Runtime makes it usable again.
  from = std::move(to);
  EXPECT_EQ(from.block_on(ready(6)), 6);
}

}  // namespace
}  // namespace pollux
