// Tests for JoinHandle (join_handle.h) and JoinResult/JoinError
// (join_result.h): delivery, join-waker registration, the coop budget,
// abort(), detaching, exceptions, and handles used from other threads.
#include "executor/join_handle.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "executor/join_result.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/testing/executor_fixtures.h"
#include "future/map.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "future/testing/manual_future.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pollux {
namespace {

using testing::Counted;
using testing::CountingWaker;
using testing::make_manual_future;
using ::testing::HasSubstr;

using testing::ExecutorTest;
using testing::Probe;
using testing::ProbeLog;

// An output whose destruction of the live (not moved-from) value is counted.
struct Token {
  explicit Token(std::shared_ptr<std::atomic<int>> d, int v = 0) : drops(std::move(d)), value(v) {}
  Token(Token&& o) noexcept : drops(std::move(o.drops)), value(o.value), counted(o.counted) {}
  Token& operator=(Token&&) = delete;
  ~Token() {
    if (drops) drops->fetch_add(1);
  }
  std::shared_ptr<std::atomic<int>> drops;
  int value;
  Counted counted;
};

// Busy-waits for about `n` iterations (the compiler may not drop the loop).
void spin(int n) {
  for (int i = 0; i < n; ++i) asm volatile("" ::: "memory");
}

template <class T>
Poll<JoinResult<OrUnit<T>>> poll_with(JoinHandle<T>& h, const Waker& w,
                                      Budget budget = Budget::unlimited()) {
  Context cx(w, budget);
  return h.poll(cx);
}

// A future that throws from its `throw_on`-th poll (1-based), Pending before.
struct Thrower {
  using Output = int;
  int throw_on = 1;
  int polls = 0;
  Poll<int> poll(Context& cx) {
    if (++polls >= throw_on) throw std::runtime_error("boom from poll " + std::to_string(polls));
    cx.waker().wake_by_ref();
    return Pending{};
  }
};

class JoinHandleTest : public ExecutorTest {};

// ---------------------------------------------------------------------------
// Delivery

TEST_F(JoinHandleTest, ValueIsDelivered) {
  LocalExecutor ex;
  JoinHandle<int> h = ex.spawn_local(ready(42));
  JoinResult<int> r = ex.block_on(std::move(h));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.is_cancelled());
  EXPECT_FALSE(r.is_panic());
  EXPECT_EQ(r.value(), 42);
  EXPECT_TRUE(r.status().ok());
  EXPECT_NO_THROW(r.rethrow());
}

TEST_F(JoinHandleTest, VoidTaskYieldsUnit) {
  LocalExecutor ex;
  auto h = ex.spawn_local(ready());
  static_assert(std::is_same_v<decltype(h), JoinHandle<void>>);
  static_assert(std::is_same_v<JoinHandle<void>::Output, JoinResult<Unit>>);
  JoinResult<Unit> r = ex.block_on(std::move(h));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.value(), Unit{});
}

TEST_F(JoinHandleTest, MoveOnlyOutputIsMovedOutOnce) {
  LocalExecutor ex;
  auto drops = std::make_shared<std::atomic<int>>(0);
  auto h = ex.spawn_local(poll_fn([drops](Context&) -> Poll<Token> { return Ready(Token(drops, 5)); }));
  {
    JoinResult<Token> r = ex.block_on(std::move(h));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().value, 5);
    EXPECT_EQ(drops->load(), 0);
  }
  EXPECT_EQ(drops->load(), 1);
}

TEST_F(JoinHandleTest, CallableIsCalledOnTheFirstPollAndKeptAlive) {
  LocalExecutor ex;
  int calls = 0;
  auto payload = std::make_shared<int>(7);
  auto h = ex.spawn_local([&calls, payload] {
    ++calls;
    return map(ready(0), [payload](int) { return *payload * 6; });
  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(payload.use_count(), 2);  // the task holds the callable
  JoinResult<int> r = ex.block_on(std::move(h));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(payload.use_count(), 1);  // dropped with the task
}

TEST_F(JoinHandleTest, HandleIsPendingUntilTheTaskCompletesThenWakesItsPoller) {
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(std::move(fut));
  ex.run_until_idle();
  CountingWaker cw;
  {
    Waker w = cw.waker();
    EXPECT_TRUE(poll_with(h, w).is_pending());
    EXPECT_FALSE(h.is_finished());
    EXPECT_EQ(cw.wakes(), 0);
    manual.complete(7);
    EXPECT_EQ(cw.wakes(), 0);  // the task has not run yet
    ex.run_until_idle();
    EXPECT_EQ(cw.wakes(), 1);
    EXPECT_TRUE(h.is_finished());
    auto p = poll_with(h, w);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(std::move(p).value().value(), 7);
    EXPECT_FALSE(h.is_finished());  // consumed
  }
  EXPECT_EQ(cw.live(), 0) << "the task's copy of the join waker was not released";
}

// Spawn A; spawn B that awaits A's handle: A's result reaches B.
TEST_F(JoinHandleTest, ResultIsDeliveredToAnotherTaskAwaitingTheHandle) {
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  JoinHandle<int> a = ex.spawn_local(std::move(fut));

  // B: a hand-written future that owns A's handle.
  struct AwaitA {
    using Output = int;
    JoinHandle<int> a;
    int* polls;
    Poll<int> poll(Context& cx) {
      ++*polls;
      Poll<JoinResult<int>> p = a.poll(cx);
      if (p.is_pending()) return Pending{};
      return Ready(std::move(p).value().value() * 2);
    }
  };
  int b_polls = 0;
  JoinHandle<int> b = ex.spawn_local(AwaitA{std::move(a), &b_polls});
  ex.run_until_idle();
  EXPECT_EQ(b_polls, 1);
  EXPECT_EQ(ex.pending_tasks(), 2u);
  manual.complete(21);  // from the owner thread while the executor is not running
  JoinResult<int> r = ex.block_on(std::move(b));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(b_polls, 2);  // woken exactly once, by A's completion
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

TEST_F(JoinHandleTest, ResultIsDeliveredThroughMapInAnotherTask) {
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  JoinHandle<int> a = ex.spawn_local(std::move(fut));
  JoinHandle<int> b = ex.spawn_local(map(std::move(a), [](JoinResult<int> r) { return r.value() + 1; }));
  std::thread completer([m = manual] () mutable {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    m.complete(41);
  });
  JoinResult<int> r = ex.block_on(std::move(b));
  completer.join();
  EXPECT_EQ(r.value(), 42);
}

// ---------------------------------------------------------------------------
// Join waker registration

TEST_F(JoinHandleTest, JoinWakerIsReplacedWhenPolledWithADifferentWaker) {
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(std::move(fut));
  ex.run_until_idle();
  CountingWaker first, second;
  {
    Waker w1 = first.waker();
    Waker w2 = second.waker();
    ASSERT_TRUE(poll_with(h, w1).is_pending());
    EXPECT_EQ(first.live(), 2);  // ours + the task's clone
    ASSERT_TRUE(poll_with(h, w1).is_pending());
    EXPECT_EQ(first.clones(), 2) << "an unchanged waker must not be cloned again";
    ASSERT_TRUE(poll_with(h, w2).is_pending());
    EXPECT_EQ(first.live(), 1) << "the replaced waker must be dropped";
    EXPECT_EQ(second.live(), 2);
    manual.complete(3);
    ex.run_until_idle();
    EXPECT_EQ(first.wakes(), 0) << "the replaced waker was woken";
    EXPECT_EQ(second.wakes(), 1);
    auto p = poll_with(h, w2);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(std::move(p).value().value(), 3);
  }
  EXPECT_EQ(first.live(), 0);
  EXPECT_EQ(second.live(), 0);
}

TEST_F(JoinHandleTest, HandleDroppedAfterRegisteringReleasesTheWakerAndTheWakerIsNotWoken) {
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(std::move(fut));
  ex.run_until_idle();
  CountingWaker cw;
  {
    Waker w = cw.waker();
    ASSERT_TRUE(poll_with(h, w).is_pending());
  }
  { auto dropped = std::move(h); }
  manual.complete(1);
  ex.run_until_idle();
  EXPECT_EQ(cw.wakes(), 0) << "a detached task woke its old join waker";
  EXPECT_EQ(cw.live(), 0);
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

// ---------------------------------------------------------------------------
// Coop budget

TEST_F(JoinHandleTest, ExhaustedBudgetReturnsPendingAndWakesEvenWhenTheResultIsThere) {
  LocalExecutor ex;
  auto h = ex.spawn_local(ready(9));
  ex.run_until_idle();
  ASSERT_TRUE(h.is_finished());
  CountingWaker cw;
  Waker w = cw.waker();
  {
    Budget empty(0);
    Context cx(w, empty);
    EXPECT_TRUE(h.poll(cx).is_pending());
    EXPECT_EQ(cw.wakes_by_ref(), 1) << "a budget Pending must wake, or the task hangs";
    EXPECT_EQ(empty.remaining(), 0u);
    EXPECT_TRUE(h.is_finished());  // the result is still there
  }
  {
    Budget one(1);
    Context cx(w, one);
    Poll<JoinResult<int>> p = h.poll(cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(std::move(p).value().value(), 9);
    EXPECT_EQ(one.remaining(), 0u) << "a Ready JoinHandle poll takes one unit";
  }
}

TEST_F(JoinHandleTest, RealPendingRefundsTheBudgetUnit) {
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(std::move(fut));
  ex.run_until_idle();
  Budget b(5);
  Context cx(noop_waker(), b);
  EXPECT_TRUE(h.poll(cx).is_pending());
  EXPECT_EQ(b.remaining(), 5u);
  manual.complete(0);
  ex.run_until_idle();
}

// One task poll that polls 200 ready JoinHandles in a loop: the 129th poll
// finds the budget spent, so the task yields and finishes on its next poll.
TEST_F(JoinHandleTest, ATaskPollingManyReadyHandlesYieldsAfter128) {
  LocalExecutor ex;
  constexpr int kHandles = 200;
  std::vector<JoinHandle<int>> handles;
  for (int i = 0; i < kHandles; ++i) handles.push_back(ex.spawn_local(ready(i)));
  ex.run_until_idle();

  struct Collector {
    using Output = int;
    std::vector<JoinHandle<int>> handles;
    size_t next = 0;
    int sum = 0;
    std::vector<int>* ready_per_poll;
    Poll<int> poll(Context& cx) {
      int ready_now = 0;
      while (next < handles.size()) {
        Poll<JoinResult<int>> p = handles[next].poll(cx);
        if (p.is_pending()) break;
        sum += std::move(p).value().value();
        ++next;
        ++ready_now;
      }
      ready_per_poll->push_back(ready_now);
      if (next < handles.size()) return Pending{};
      return Ready(sum);
    }
  };
  std::vector<int> ready_per_poll;
  auto h = ex.spawn_local(Collector{std::move(handles), 0, 0, &ready_per_poll});
  ex.run_until_idle();
  EXPECT_EQ(ready_per_poll, (std::vector<int>{128, 72}));
  JoinResult<int> r = ex.block_on(std::move(h));
  EXPECT_EQ(r.value(), kHandles * (kHandles - 1) / 2);
}

// ---------------------------------------------------------------------------
// abort()

TEST_F(JoinHandleTest, AbortBeforeTheFirstPollNeverPollsTheFuture) {
  auto log = std::make_shared<ProbeLog>();
  LocalExecutor ex;
  auto h = ex.spawn_local(Probe(ready(1), log));
  h.abort();
  h.abort();  // repeatable
  EXPECT_EQ(log->destroyed.load(), 0);  // dropped by the executor, not by abort()
  EXPECT_EQ(ex.run_until_idle(), 1u);
  EXPECT_EQ(log->polls.load(), 0);
  EXPECT_EQ(log->destroyed.load(), 1);
  EXPECT_TRUE(h.is_finished());
  JoinResult<int> r = ex.block_on(std::move(h));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.is_cancelled());
  EXPECT_FALSE(r.is_panic());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(r.error().exception(), nullptr);
  EXPECT_NO_THROW(r.rethrow());
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

TEST_F(JoinHandleTest, AbortFromAnotherThreadWhilePendingDropsTheFutureOnTheExecutorThread) {
  auto log = std::make_shared<ProbeLog>();
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(Probe(std::move(fut), log));
  ex.run_until_idle();
  ASSERT_EQ(log->polls.load(), 1);
  ASSERT_TRUE(manual.has_waker());
  std::thread aborter([&h] { h.abort(); });
  aborter.join();
  EXPECT_EQ(log->destroyed.load(), 0) << "the future was dropped on the aborting thread";
  EXPECT_EQ(Counted::live(), 1);
  JoinResult<int> r = ex.block_on(std::move(h));
  EXPECT_TRUE(r.is_cancelled());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(log->polls.load(), 1) << "an aborted task must not be polled again";
  EXPECT_EQ(log->destroyed.load(), 1);
  EXPECT_TRUE(manual.dropped());
  EXPECT_EQ(Counted::live(), 0);
  std::lock_guard lock(log->mu);
  ASSERT_EQ(log->dtor_threads.size(), 1u);
  EXPECT_EQ(log->dtor_threads[0], std::this_thread::get_id());
}

// The abort arrives while the owner is parked in block_on awaiting the handle.
TEST_F(JoinHandleTest, AbortFromAnotherThreadWakesAParkedExecutor) {
  auto log = std::make_shared<ProbeLog>();
  LocalExecutor ex;
  auto [fut, manual] = make_manual_future<int>();
  JoinHandle<int> h = ex.spawn_local(Probe(std::move(fut), log));
  std::thread aborter([&h] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    h.abort();
  });
  JoinResult<int> r = ex.block_on(poll_fn([&h](Context& cx) { return h.poll(cx); }));
  aborter.join();
  EXPECT_TRUE(r.is_cancelled());
  EXPECT_EQ(log->destroyed.load(), 1);
  std::lock_guard lock(log->mu);
  ASSERT_EQ(log->dtor_threads.size(), 1u);
  EXPECT_EQ(log->dtor_threads[0], std::this_thread::get_id());
}

TEST_F(JoinHandleTest, AbortAfterCompletionStillDeliversTheValue) {
  LocalExecutor ex;
  auto drops = std::make_shared<std::atomic<int>>(0);
  auto h = ex.spawn_local(poll_fn([drops](Context&) -> Poll<Token> { return Ready(Token(drops, 11)); }));
  ex.run_until_idle();
  ASSERT_TRUE(h.is_finished());
  h.abort();
  EXPECT_EQ(ex.run_until_idle(), 0u);  // nothing was scheduled
  JoinResult<Token> r = ex.block_on(std::move(h));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().value, 11);
  EXPECT_EQ(drops->load(), 0);
}

TEST_F(JoinHandleTest, AbortFromInsideItsOwnPollDropsTheFutureAfterThatPoll) {
  auto log = std::make_shared<ProbeLog>();
  LocalExecutor ex;
  std::optional<JoinHandle<int>> self;
  auto inner = poll_fn([&self](Context& cx) -> Poll<int> {
    self->abort();
    cx.waker().wake_by_ref();  // even if woken too
    return Pending{};
  });
  self.emplace(ex.spawn_local(Probe(std::move(inner), log)));
  ex.run_until_idle();
  EXPECT_EQ(log->polls.load(), 1);
  EXPECT_EQ(log->destroyed.load(), 1);
  EXPECT_EQ(ex.pending_tasks(), 0u);
  JoinResult<int> r = ex.block_on(std::move(*self));
  EXPECT_TRUE(r.is_cancelled());
  {
    std::lock_guard lock(log->mu);
    EXPECT_EQ(log->dtor_threads.at(0), std::this_thread::get_id());
  }
}

// A poll that aborts itself but then returns Ready has completed: the value
// wins (abort() only stops a task at a scheduling point, like tokio's).
TEST_F(JoinHandleTest, AbortFromInsideAPollThatReturnsReadyKeepsTheValue) {
  LocalExecutor ex;
  std::optional<JoinHandle<int>> self;
  self.emplace(ex.spawn_local(poll_fn([&self](Context&) -> Poll<int> {
    self->abort();
    return Ready(5);
  })));
  ex.run_until_idle();
  JoinResult<int> r = ex.block_on(std::move(*self));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), 5);
}

TEST_F(JoinHandleTest, AbortRacingACompletionFromAnotherThreadEndsTheTaskExactlyOnce) {
  constexpr int kIters = 500;
  LocalExecutor ex;
  std::mt19937 rng(1234);
  int cancelled = 0;
  for (int i = 0; i < kIters; ++i) {
    auto log = std::make_shared<ProbeLog>();
    auto [fut, manual] = make_manual_future<int>();
    JoinHandle<int> h = ex.spawn_local(Probe(std::move(fut), log));
    if (i % 2) ex.run_until_idle();  // half start idle, half start queued
    const int spin_a = rng() % 2000, spin_b = rng() % 2000;
    std::thread completer([m = manual, spin_a, i]() mutable {
      spin(spin_a);
      m.complete(i);
    });
    std::thread aborter([&h, spin_b] {
      spin(spin_b);
      h.abort();
    });
    aborter.join();  // the handle is ours again
    JoinResult<int> r = ex.block_on(poll_fn([&h](Context& cx) { return h.poll(cx); }));
    completer.join();
    if (r.ok()) {
      EXPECT_EQ(r.value(), i);
    } else {
      ASSERT_TRUE(r.is_cancelled());
      ++cancelled;
    }
    ASSERT_EQ(log->destroyed.load(), 1) << "iteration " << i;
    std::lock_guard lock(log->mu);
    ASSERT_EQ(log->dtor_threads.at(0), std::this_thread::get_id());
  }
  EXPECT_EQ(ex.pending_tasks(), 0u);
  RecordProperty("cancelled", cancelled);
}

// ---------------------------------------------------------------------------
// Detaching

TEST_F(JoinHandleTest, DetachedTaskRunsToCompletionAndItsOutputIsDestroyedOnce) {
  LocalExecutor ex;
  auto drops = std::make_shared<std::atomic<int>>(0);
  auto [fut, manual] = make_manual_future<int>();
  auto log = std::make_shared<ProbeLog>();
  {
    auto h = ex.spawn_local(
        Probe(map(std::move(fut), [drops](int v) { return Token(drops, v); }), log));
    // dropped here, before the first poll
  }
  ex.run_until_idle();
  EXPECT_EQ(log->polls.load(), 1);
  EXPECT_EQ(ex.pending_tasks(), 1u);  // dropping the handle did not cancel it
  EXPECT_EQ(drops->load(), 0);
  manual.complete(3);
  ex.run_until_idle();
  EXPECT_EQ(log->polls.load(), 2);
  EXPECT_EQ(ex.pending_tasks(), 0u);
  EXPECT_EQ(drops->load(), 1);
  EXPECT_EQ(log->destroyed.load(), 1);
  EXPECT_EQ(Counted::live(), 0);
}

// A detached task's output is dropped when the task completes, not when the
// last reference to its cell (here a waker kept elsewhere) goes away.
TEST_F(JoinHandleTest, DetachedTaskOutputIsDroppedAtCompletionEvenIfWakersLiveOn) {
  LocalExecutor ex;
  auto drops = std::make_shared<std::atomic<int>>(0);
  std::optional<Waker> kept;
  ex.spawn_local(poll_fn([drops, &kept](Context& cx) -> Poll<Token> {
      kept = cx.waker();
      return Ready(Token(drops, 1));
    })).detach();
  ex.run_until_idle();
  EXPECT_EQ(ex.pending_tasks(), 0u);
  EXPECT_EQ(drops->load(), 1) << "the output waited for the cell to be freed";
  EXPECT_EQ(live_task_cells(), cells_at_start_ + 1);  // the waker keeps the cell
  kept.reset();
  EXPECT_EQ(drops->load(), 1);
}

TEST_F(JoinHandleTest, ExplicitDetachWhilePendingLetsItFinish) {
  LocalExecutor ex;
  auto drops = std::make_shared<std::atomic<int>>(0);
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(map(std::move(fut), [drops](int v) { return Token(drops, v); }));
  ex.run_until_idle();
  std::move(h).detach();
  EXPECT_EQ(ex.pending_tasks(), 1u);
  manual.complete(1);
  ex.run_until_idle();
  EXPECT_EQ(ex.pending_tasks(), 0u);
  EXPECT_EQ(drops->load(), 1);
}

TEST_F(JoinHandleTest, DroppingTheHandleOfACompletedTaskDestroysTheWaitingResultOnce) {
  LocalExecutor ex;
  auto drops = std::make_shared<std::atomic<int>>(0);
  auto h = ex.spawn_local(poll_fn([drops](Context&) -> Poll<Token> { return Ready(Token(drops, 1)); }));
  ex.run_until_idle();
  EXPECT_EQ(drops->load(), 0);  // kept for the handle
  { auto dropped = std::move(h); }
  EXPECT_EQ(drops->load(), 1);
}

TEST_F(JoinHandleTest, MoveAssignmentDetachesTheOverwrittenTask) {
  LocalExecutor ex;
  auto drops = std::make_shared<std::atomic<int>>(0);
  auto [fut, manual] = make_manual_future<int>();
  auto h = ex.spawn_local(map(std::move(fut), [drops](int v) { return Token(drops, v); }));
  auto other = ex.spawn_local(poll_fn([drops](Context&) -> Poll<Token> { return Ready(Token(drops, 2)); }));
  h = std::move(other);  // the first task is detached, not cancelled
  ex.run_until_idle();
  EXPECT_EQ(ex.pending_tasks(), 1u);
  manual.complete(1);
  ex.run_until_idle();
  EXPECT_EQ(drops->load(), 1);  // the detached task's output
  JoinResult<Token> r = ex.block_on(std::move(h));
  EXPECT_EQ(r.value().value, 2);
}

// ---------------------------------------------------------------------------
// Exceptions

TEST_F(JoinHandleTest, TaskWhosePollThrowsYieldsAPanic) {
  auto log = std::make_shared<ProbeLog>();
  LocalExecutor ex;
  auto h = ex.spawn_local(Probe(Thrower{2}, log));
  ex.run_until_idle();  // the process survives
  EXPECT_EQ(log->polls.load(), 2);
  EXPECT_EQ(log->destroyed.load(), 1);
  EXPECT_EQ(ex.pending_tasks(), 0u);
  JoinResult<int> r = ex.block_on(std::move(h));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.is_panic());
  EXPECT_FALSE(r.is_cancelled());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("boom from poll 2"));
  ASSERT_NE(r.error().exception(), nullptr);
  try {
    r.rethrow();
    ADD_FAILURE() << "rethrow() did not throw";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom from poll 2");
  }
}

TEST_F(JoinHandleTest, NonStandardExceptionIsAPanicToo) {
  LocalExecutor ex;
  auto h = ex.spawn_local(poll_fn([](Context&) -> Poll<int> { throw 17; }));
  JoinResult<int> r = ex.block_on(std::move(h));
  EXPECT_TRUE(r.is_panic());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not a std::exception"));
  try {
    r.rethrow();
    ADD_FAILURE() << "rethrow() did not throw";
  } catch (int v) {
    EXPECT_EQ(v, 17);
  }
}

TEST_F(JoinHandleTest, DetachedThrowingTaskDoesNotDisturbTheOthers) {
  LocalExecutor ex;
  { auto h = ex.spawn_local(Thrower{1}); }
  auto ok = ex.spawn_local(ready(3));
  ex.run_until_idle();
  EXPECT_EQ(ex.pending_tasks(), 0u);
  EXPECT_EQ(ex.block_on(std::move(ok)).value(), 3);
}

// ---------------------------------------------------------------------------
// Handles that outlive their executor, and handles on other threads

TEST_F(JoinHandleTest, HandlesOutliveTheirExecutor) {
  std::optional<JoinHandle<int>> done, pending;
  auto log = std::make_shared<ProbeLog>();
  {
    LocalExecutor ex;
    done.emplace(ex.spawn_local(ready(8)));
    pending.emplace(ex.spawn_local(Probe(make_manual_future<int>().first, log)));
    ex.run_until_idle();
  }
  EXPECT_EQ(log->destroyed.load(), 1);
  auto p = poll_with(*done, noop_waker());
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::move(p).value().value(), 8);
  auto q = poll_with(*pending, noop_waker());
  ASSERT_TRUE(q.is_ready());
  EXPECT_TRUE(std::move(q).value().is_cancelled());
  pending->abort();  // harmless on a consumed handle
  done.reset();
  pending.reset();
}

// Handles polled (and some dropped) on another thread while the owner
// completes the tasks: the join-waker handshake under TSan.
TEST_F(JoinHandleTest, HandlesPolledAndDroppedOnAnotherThreadWhileTasksComplete) {
  constexpr int kTasks = 2000;
  CountingWaker cw;  // outlives every task cell that may hold a clone
  {
    LocalExecutor ex;
    std::vector<JoinHandle<int>> handles;
    for (int i = 0; i < kTasks; ++i) {
      handles.push_back(ex.spawn_local(poll_fn([i, left = i % 7](Context& cx) mutable -> Poll<int> {
        if (left-- > 0) {
          cx.waker().wake_by_ref();
          return Pending{};
        }
        return Ready(i);
      })));
    }
    std::atomic<bool> go{false};
    int64_t sum = 0;
    std::thread joiner([&] {
      Waker w = cw.waker();
      std::vector<std::optional<JoinHandle<int>>> mine;
      for (auto& h : handles) mine.emplace_back(std::move(h));
      go.store(true);
      size_t remaining = mine.size();
      for (size_t i = 0; i < mine.size(); i += 3) {  // detach a third of them
        mine[i].reset();
        --remaining;
      }
      while (remaining > 0) {
        for (size_t i = 0; i < mine.size(); ++i) {
          if (!mine[i]) continue;
          auto p = poll_with(*mine[i], w);
          if (p.is_ready()) {
            sum += std::move(p).value().value();
            mine[i].reset();
            --remaining;
          }
        }
        std::this_thread::yield();
      }
    });
    while (!go.load()) std::this_thread::yield();
    ex.run_until_idle();
    joiner.join();
    EXPECT_EQ(ex.pending_tasks(), 0u);
    int64_t expected = 0;
    for (int i = 0; i < kTasks; ++i) {
      if (i % 3 != 0) expected += i;
    }
    EXPECT_EQ(sum, expected);
  }
  EXPECT_EQ(cw.live(), 0) << "join waker clones leaked";
}

// A handle dropped on another thread that learns of the completion only
// through the task's state word (the flag below is relaxed, so it orders
// nothing): the drop must still see the result the task stored before
// COMPLETE. Under TSan this caught TaskState transitions that declined after
// a relaxed load (no acquire) and then let the handle drop the result.
TEST_F(JoinHandleTest, HandleDroppedOnAnotherThreadAfterCompletionSeesTheResult) {
  constexpr int kTasks = 200;
  auto drops = std::make_shared<std::atomic<int>>(0);
  LocalExecutor ex;
  std::vector<JoinHandle<Token>> handles;
  for (int i = 0; i < kTasks; ++i) {
    handles.push_back(ex.spawn_local(
        poll_fn([drops, i](Context&) -> Poll<Token> { return Ready(Token(drops, i)); })));
  }
  std::atomic<int> phase{0};
  std::thread dropper([&phase, hs = std::move(handles)]() mutable {
    while (phase.load(std::memory_order_relaxed) == 0) std::this_thread::yield();
    hs.clear();  // each finds COMPLETE and drops the stored Token
  });
  ex.run_until_idle();
  phase.store(1, std::memory_order_relaxed);
  dropper.join();
  EXPECT_EQ(drops->load(), kTasks);
}

// Tasks on an executor on another thread are joined from this thread's
// executor: half by spawned tasks (their join wakers are task wakers woken
// remotely), half by the block_on root (root wakers woken remotely).
TEST_F(JoinHandleTest, HandlesOfTasksOnAnotherThreadsExecutorWakeTheirJoiners) {
  constexpr int kTasks = 400;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<JoinHandle<int>> handles;
  bool handed_over = false;
  std::thread remote([&] {
    LocalExecutor rex;
    std::vector<JoinHandle<int>> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(rex.spawn_local(poll_fn([i, left = i % 13](Context& cx) mutable -> Poll<int> {
        if (left-- > 0) {
          cx.waker().wake_by_ref();
          return Pending{};
        }
        return Ready(i);
      })));
    }
    {
      std::lock_guard lock(mu);
      handles = std::move(hs);
      handed_over = true;
    }
    cv.notify_one();
    rex.run_until_idle();
    EXPECT_EQ(rex.pending_tasks(), 0u);
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return handed_over; });
  }
  LocalExecutor ex;
  std::vector<JoinHandle<int>> via_tasks;
  std::vector<JoinHandle<int>> via_root;
  for (int i = 0; i < kTasks; ++i) {
    if (i % 2) {
      via_tasks.push_back(
          ex.spawn_local(map(std::move(handles[i]), [](JoinResult<int> r) { return r.value(); })));
    } else {
      via_root.push_back(std::move(handles[i]));
    }
  }
  for (auto& h : via_tasks) via_root.push_back(std::move(h));
  int64_t sum = ex.block_on(poll_fn([&via_root, sum = int64_t{0}](Context& cx) mutable -> Poll<int64_t> {
    while (!via_root.empty()) {
      Poll<JoinResult<int>> p = via_root.back().poll(cx);
      if (p.is_pending()) return Pending{};
      sum += std::move(p).value().value();
      via_root.pop_back();
    }
    return Ready(sum);
  }));
  remote.join();
  EXPECT_EQ(sum, int64_t{kTasks} * (kTasks - 1) / 2);
  EXPECT_EQ(ex.pending_tasks(), 0u);
}

// ---------------------------------------------------------------------------
// Misuse

// Always on (POLLUX_CHECK): tests/release_checks_test runs it in a release
// build as well.
TEST(JoinHandleDeathTest, PollingAfterReadyIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        LocalExecutor ex;
        auto h = ex.spawn_local(ready(1));
        ex.run_until_idle();
        Budget b = Budget::unlimited();
        Context cx(noop_waker(), b);
        (void)h.poll(cx);
        (void)h.poll(cx);
      },
      "JoinHandle polled after it returned Ready");
}

TEST(JoinResultDeathTest, ValueOfAFailedResultAbortsWithTheReason) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  JoinResult<int> cancelled(JoinError::cancelled());
  EXPECT_DEATH((void)cancelled.value(), "cancelled task");
  JoinResult<int> panicked(JoinError::panicked(std::make_exception_ptr(std::runtime_error("x"))));
  EXPECT_DEATH((void)panicked.value(), "threw");
}

}  // namespace
}  // namespace pollux
