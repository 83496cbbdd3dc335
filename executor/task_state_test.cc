// Tests for TaskState (internal/task_state.h): every transition of the task
// state word, driven directly, with its flag and reference-count effects, and
// the races that matter (a wake racing the end of a poll, concurrent wakes).
#include "executor/internal/task_state.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace pollux::detail {
namespace {

using S = TaskState;

uint64_t flags(const TaskState& t) { return t.load().bits & S::kFlagMask; }
uint64_t refs(const TaskState& t) { return S::refs(t.load().bits); }

// A task that has been polled once and returned Pending: idle, not notified,
// JOIN_INTEREST, two references (owned list + handle).
void make_idle(TaskState& t) {
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  ASSERT_EQ(t.transition_to_idle(), S::IdleResult::kOk);
}

TEST(TaskStateTest, NewTaskIsNotifiedWithJoinInterestAndThreeReferences) {
  TaskState t;
  EXPECT_EQ(flags(t), S::kNotified | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);  // owned list, run-queue entry, JoinHandle
}

TEST(TaskStateTest, RunningClearsNotifiedAndKeepsReferences) {
  TaskState t;
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  EXPECT_EQ(flags(t), S::kRunning | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);  // the poll holds the queue entry's reference
}

TEST(TaskStateTest, IdleReleasesTheQueueEntrysReference) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kOk);
  EXPECT_EQ(flags(t), S::kJoinInterest);
  EXPECT_EQ(refs(t), 2u);
}

TEST(TaskStateTest, WakeByRefOnIdleTaskSubmitsOnceAndTakesAReference) {
  TaskState t;
  make_idle(t);
  EXPECT_TRUE(t.transition_to_notified_by_ref());
  EXPECT_EQ(flags(t), S::kNotified | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);  // the new queue entry's
  // Already notified: no second entry, no second reference.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(t.transition_to_notified_by_ref());
  EXPECT_EQ(refs(t), 3u);
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kPoll);
}

TEST(TaskStateTest, WakeByRefWhileRunningDefersToTheEndOfThePoll) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  EXPECT_FALSE(t.transition_to_notified_by_ref());  // never queued concurrently
  EXPECT_FALSE(t.transition_to_notified_by_ref());
  EXPECT_EQ(flags(t), S::kRunning | S::kNotified | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);  // no reference taken for a running task
  // The poll's end sees NOTIFIED: the caller keeps the entry's reference and requeues.
  EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kOkNotified);
  EXPECT_EQ(flags(t), S::kNotified | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);
  // It runs exactly once more.
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kOk);
  EXPECT_EQ(refs(t), 2u);
}

TEST(TaskStateTest, WakeByRefOnCompleteTaskDoesNothing) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  t.transition_to_complete();
  const uint64_t before = t.load().bits;
  EXPECT_FALSE(t.transition_to_notified_by_ref());
  EXPECT_EQ(t.load().bits, before);
}

TEST(TaskStateTest, WakeByValOnIdleTaskHandsTheWakersReferenceToTheQueue) {
  TaskState t;
  make_idle(t);
  t.ref_inc();  // a waker
  ASSERT_EQ(refs(t), 3u);
  EXPECT_EQ(t.transition_to_notified_by_val(), S::WakeByValResult::kSubmit);
  EXPECT_EQ(flags(t), S::kNotified | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);
}

TEST(TaskStateTest, WakeByValOnNotifiedTaskReleasesTheWakersReference) {
  TaskState t;  // notified, in the queue
  t.ref_inc();  // a waker
  EXPECT_EQ(t.transition_to_notified_by_val(), S::WakeByValResult::kDoNothing);
  EXPECT_EQ(flags(t), S::kNotified | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);
}

TEST(TaskStateTest, WakeByValWhileRunningSetsNotifiedAndReleasesTheReference) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  t.ref_inc();  // a waker
  EXPECT_EQ(t.transition_to_notified_by_val(), S::WakeByValResult::kDoNothing);
  EXPECT_EQ(flags(t), S::kRunning | S::kNotified | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);
  EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kOkNotified);
}

TEST(TaskStateTest, WakeByValOfTheLastReferenceOnCompleteTaskDeallocates) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  t.ref_inc();  // a waker: 4 references
  t.transition_to_complete();
  EXPECT_FALSE(t.ref_dec(2));  // owned list + queue entry, as complete() does
  EXPECT_FALSE(t.ref_dec());   // the handle
  ASSERT_EQ(refs(t), 1u);
  EXPECT_EQ(t.transition_to_notified_by_val(), S::WakeByValResult::kDealloc);
  EXPECT_EQ(refs(t), 0u);
  EXPECT_FALSE(flags(t) & S::kNotified);  // a complete task is never re-notified
}

TEST(TaskStateTest, WakeByValOnCompleteTaskWithOtherReferencesOnlyReleases) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  t.ref_inc();
  t.transition_to_complete();
  EXPECT_EQ(t.transition_to_notified_by_val(), S::WakeByValResult::kDoNothing);
  EXPECT_EQ(refs(t), 3u);
}

TEST(TaskStateTest, RunningFailsWhenAlreadyRunningOrComplete) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  ASSERT_FALSE(t.transition_to_notified_by_ref());  // NOTIFIED while running
  uint64_t before = t.load().bits;
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kFailed);
  EXPECT_EQ(t.load().bits, before);
  t.transition_to_complete();  // NOTIFIED stays, COMPLETE wins
  before = t.load().bits;
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kFailed);
  EXPECT_EQ(t.load().bits, before);
}

TEST(TaskStateTest, CompleteSwapsRunningForCompleteAndReportsThePreviousState) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  const uint64_t prev = t.transition_to_complete().bits;
  EXPECT_EQ(prev & S::kFlagMask, S::kRunning | S::kJoinInterest);
  EXPECT_EQ(flags(t), S::kComplete | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);  // complete() releases references separately
}

TEST(TaskStateTest, AbortOfIdleTaskSchedulesItOnceWithANewReference) {
  TaskState t;
  make_idle(t);
  EXPECT_TRUE(t.transition_to_notified_and_cancel());
  EXPECT_EQ(flags(t), S::kNotified | S::kCancelled | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);
  // A second abort, or a wake, adds no queue entry.
  EXPECT_FALSE(t.transition_to_notified_and_cancel());
  EXPECT_FALSE(t.transition_to_notified_by_ref());
  EXPECT_EQ(refs(t), 3u);
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kCancel);
  EXPECT_EQ(flags(t), S::kRunning | S::kCancelled | S::kJoinInterest);
}

TEST(TaskStateTest, AbortOfQueuedTaskOnlyMarksItCancelled) {
  TaskState t;  // new: notified, queued
  EXPECT_FALSE(t.transition_to_notified_and_cancel());
  EXPECT_EQ(flags(t), S::kNotified | S::kCancelled | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kCancel);  // never polled
}

TEST(TaskStateTest, AbortWhileRunningMakesTheEndOfThePollCancel) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  EXPECT_FALSE(t.transition_to_notified_and_cancel());
  EXPECT_EQ(flags(t), S::kRunning | S::kNotified | S::kCancelled | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);
  EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kCancelled);
  // Still RUNNING: the caller drops the future and completes.
  EXPECT_TRUE(flags(t) & S::kRunning);
  EXPECT_EQ(refs(t), 3u);
  t.transition_to_complete();
  EXPECT_TRUE(flags(t) & S::kComplete);
  EXPECT_FALSE(flags(t) & S::kRunning);
}

TEST(TaskStateTest, AbortAfterCompleteChangesNothing) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  t.transition_to_complete();
  const uint64_t before = t.load().bits;
  EXPECT_FALSE(t.transition_to_notified_and_cancel());
  EXPECT_EQ(t.load().bits, before);
  EXPECT_FALSE(flags(t) & S::kCancelled);
}

TEST(TaskStateTest, ShutdownClaimsIdleAndQueuedTasksButNotRunningOrComplete) {
  {
    TaskState t;
    make_idle(t);
    EXPECT_TRUE(t.transition_to_shutdown());
    EXPECT_EQ(flags(t), S::kRunning | S::kCancelled | S::kJoinInterest);
    EXPECT_EQ(refs(t), 2u);
  }
  {
    TaskState t;  // queued
    EXPECT_TRUE(t.transition_to_shutdown());
    EXPECT_EQ(flags(t) & (S::kRunning | S::kCancelled), S::kRunning | S::kCancelled);
    // The queue entry that still exists must not run it.
    EXPECT_EQ(t.transition_to_running(), S::RunResult::kFailed);
  }
  {
    TaskState t;
    ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
    EXPECT_FALSE(t.transition_to_shutdown());  // the poller drops it
    EXPECT_TRUE(flags(t) & S::kCancelled);
    EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kCancelled);
  }
  {
    TaskState t;
    ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
    t.transition_to_complete();
    const uint64_t before = t.load().bits;
    EXPECT_FALSE(t.transition_to_shutdown());
    EXPECT_EQ(t.load().bits, before);
  }
}

TEST(TaskStateTest, JoinInterestCanBeDroppedOnlyBeforeComplete) {
  {
    TaskState t;
    EXPECT_TRUE(t.unset_join_interest());
    EXPECT_FALSE(flags(t) & S::kJoinInterest);
    ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
    // The task side learns nobody wants the result.
    EXPECT_FALSE(t.transition_to_complete().has_join_interest());
  }
  {
    TaskState t;
    ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
    t.transition_to_complete();
    EXPECT_FALSE(t.unset_join_interest());  // the handle owns the result
    EXPECT_TRUE(flags(t) & S::kJoinInterest);
  }
}

TEST(TaskStateTest, JoinWakerBitIsPublishedToCompleteAndFrozenAfterIt) {
  TaskState t;
  EXPECT_TRUE(t.set_join_waker());
  EXPECT_TRUE(flags(t) & S::kJoinWaker);
  EXPECT_TRUE(t.unset_join_waker());
  EXPECT_FALSE(flags(t) & S::kJoinWaker);
  EXPECT_TRUE(t.set_join_waker());
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  const uint64_t prev = t.transition_to_complete().bits;
  EXPECT_TRUE(prev & S::kJoinWaker);  // the task side wakes the handle
  // Once complete the handle can neither take the waker back nor set one.
  EXPECT_FALSE(t.unset_join_waker());
  EXPECT_TRUE(flags(t) & S::kJoinWaker);
}

TEST(TaskStateTest, SetJoinWakerFailsOnCompleteTask) {
  TaskState t;
  ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
  t.transition_to_complete();
  EXPECT_FALSE(t.set_join_waker());
  EXPECT_FALSE(flags(t) & S::kJoinWaker);
}

TEST(TaskStateTest, RefDecReportsOnlyTheLastReference) {
  TaskState t;  // 3
  t.ref_inc();  // 4
  EXPECT_EQ(refs(t), 4u);
  EXPECT_FALSE(t.ref_dec());
  EXPECT_FALSE(t.ref_dec(2));
  EXPECT_EQ(refs(t), 1u);
  const uint64_t f = flags(t);
  EXPECT_TRUE(t.ref_dec());
  EXPECT_EQ(refs(t), 0u);
  EXPECT_EQ(flags(t), f);  // reference traffic never touches the flags
}

TEST(TaskStateTest, RefDecOfSeveralAtOnceCanBeTheLast) {
  TaskState t;
  EXPECT_TRUE(t.ref_dec(3));
}

// ---- The initial states production uses ----
// A spawned cell starts queued_for_first_poll: RUNNING, not NOTIFIED (its
// first poll skips transition_to_running; the queue entry owns the run).

TEST(TaskStateFirstPollTest, SpawnedTaskIsRunningWithJoinInterestAndThreeReferences) {
  TaskState t;
  t.set_queued_for_first_poll();
  EXPECT_EQ(flags(t), S::kRunning | S::kJoinInterest);
  EXPECT_EQ(refs(t), 3u);  // owned list, run-queue entry, JoinHandle
  EXPECT_TRUE(t.load().is_running());
  EXPECT_FALSE(t.load().is_idle());
}

TEST(TaskStateFirstPollTest, APendingFirstPollGoesIdleAndReleasesTheQueueEntry) {
  TaskState t;
  t.set_queued_for_first_poll();
  EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kOk);
  EXPECT_EQ(flags(t), S::kJoinInterest);
  EXPECT_EQ(refs(t), 2u);
}

TEST(TaskStateFirstPollTest, AWakeBeforeTheFirstPollIsKeptForAfterIt) {
  TaskState t;
  t.set_queued_for_first_poll();
  // By reference: no new queue entry (the queued first poll is the entry).
  EXPECT_FALSE(t.transition_to_notified_by_ref());
  EXPECT_EQ(refs(t), 3u);
  EXPECT_EQ(flags(t), S::kRunning | S::kNotified | S::kJoinInterest);
  // The first poll returns Pending: the task must run once more.
  EXPECT_EQ(t.transition_to_idle(), S::IdleResult::kOkNotified);
  EXPECT_EQ(refs(t), 3u);  // the queue entry's reference stays for the re-queue
  EXPECT_EQ(t.transition_to_running(), S::RunResult::kPoll);
}

TEST(TaskStateFirstPollTest, AWakeByValueBeforeTheFirstPollOnlyReleasesTheWaker) {
  TaskState t;
  t.set_queued_for_first_poll();
  t.ref_inc();  // a waker cloned from somewhere (e.g. a test's handle)
  EXPECT_EQ(t.transition_to_notified_by_val(), S::WakeByValResult::kDoNothing);
  EXPECT_EQ(refs(t), 3u);
  EXPECT_TRUE(t.load().is_notified());
}

TEST(TaskStateFirstPollTest, AnAbortBeforeTheFirstPollQueuesNothingAndIsSeenByThePoll) {
  TaskState t;
  t.set_queued_for_first_poll();
  EXPECT_FALSE(t.transition_to_notified_and_cancel());  // already queued: no new entry
  EXPECT_EQ(refs(t), 3u);
  const S::Snapshot seen = t.load();
  EXPECT_TRUE(seen.is_running() && seen.is_cancelled());  // run_task drops the future
}

TEST(TaskStateFirstPollTest, ShutdownLeavesANeverPolledTaskToItsQueueEntry) {
  TaskState t;
  t.set_queued_for_first_poll();
  // RUNNING: owned by the queue entry, so shutdown must not drop the future
  // itself; abandon_queued_task does, when it drains the queue.
  EXPECT_FALSE(t.transition_to_shutdown());
  EXPECT_TRUE(t.load().is_cancelled());
  EXPECT_FALSE(t.transition_to_complete().is_complete());
  EXPECT_TRUE(t.load().is_complete());
}

TEST(TaskStateFirstPollTest, ASpawnedTaskThatFinishesAtOnceCompletes) {
  TaskState t;
  t.set_queued_for_first_poll();
  const S::Snapshot prev = t.transition_to_complete();
  EXPECT_TRUE(prev.is_running() && prev.has_join_interest());
  EXPECT_EQ(flags(t), S::kComplete | S::kJoinInterest);
  EXPECT_FALSE(t.ref_dec(2));  // queue entry and owned list
  EXPECT_TRUE(t.ref_dec());    // the JoinHandle
}

#ifndef NDEBUG
TEST(TaskStateDeathTest, DebugChecksCatchMisuse) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        TaskState t;
        (void)t.set_join_waker();
        (void)t.set_join_waker();
      },
      "join waker set twice");
  EXPECT_DEATH(
      {
        TaskState t;
        (void)t.ref_dec(4);
      },
      "underflow");
  EXPECT_DEATH(
      {
        TaskState t;
        (void)t.transition_to_idle();
      },
      "not running");
}
#endif

// ---- races ----

// Busy-waits for about `n` iterations (the compiler may not drop the loop).
void spin(int n) {
  for (int i = 0; i < n; ++i) asm volatile("" ::: "memory");
}

// A wake racing the end of the poll it targets is either absorbed by the
// poll's end (kOkNotified) or submits the task itself, never neither (a lost
// wake-up) and never both (a task queued twice).
TEST(TaskStateRaceTest, WakeRacingTheEndOfAPollIsNeverLostNorDoubled) {
  constexpr int kIters = 20000;
  std::atomic<int> go{0};
  std::atomic<int> done{0};
  std::vector<char> submitted(kIters);
  std::vector<TaskState> states(kIters);
  std::thread waker([&] {
    for (int i = 0; i < kIters; ++i) {
      while (go.load(std::memory_order_acquire) <= i) std::this_thread::yield();
      spin((i * 7) % 64);
      submitted[i] = states[i].transition_to_notified_by_ref();
      done.store(i + 1, std::memory_order_release);
    }
  });
  int notified = 0;
  for (int i = 0; i < kIters; ++i) {
    TaskState& t = states[i];
    ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
    go.store(i + 1, std::memory_order_release);
    spin((i * 13) % 64);
    const S::IdleResult r = t.transition_to_idle();
    while (done.load(std::memory_order_acquire) <= i) std::this_thread::yield();
    const bool requeue = r == S::IdleResult::kOkNotified;
    notified += requeue;
    ASSERT_NE(requeue, static_cast<bool>(submitted[i])) << "iteration " << i;
    // Either way exactly one queue entry, holding exactly one reference.
    EXPECT_EQ(refs(t), 3u);
    EXPECT_TRUE(flags(t) & S::kNotified);
  }
  waker.join();
  // Not a correctness condition, but the test must have exercised both sides.
  RecordProperty("absorbed_by_poll_end", notified);
}

TEST(TaskStateRaceTest, ConcurrentWakesOfAnIdleTaskSubmitExactlyOnce) {
  constexpr int kThreads = 3;
  constexpr int kIters = 500;
  for (int i = 0; i < kIters; ++i) {
    TaskState t;
    make_idle(t);
    std::atomic<int> submits{0};
    std::atomic<bool> start{false};
    std::vector<std::thread> threads;
    for (int k = 0; k < kThreads; ++k) {
      threads.emplace_back([&] {
        while (!start.load(std::memory_order_acquire)) std::this_thread::yield();
        for (int n = 0; n < 8; ++n) submits += t.transition_to_notified_by_ref();
      });
    }
    start.store(true, std::memory_order_release);
    for (auto& th : threads) th.join();
    ASSERT_EQ(submits.load(), 1) << "iteration " << i;
    ASSERT_EQ(refs(t), 3u);
  }
}

TEST(TaskStateRaceTest, ConcurrentWakesByValueOnACompleteTaskDeallocateExactlyOnce) {
  constexpr int kThreads = 4;
  constexpr int kWakersPerThread = 64;
  for (int i = 0; i < 200; ++i) {
    TaskState t;
    ASSERT_EQ(t.transition_to_running(), S::RunResult::kPoll);
    for (int k = 0; k < kThreads * kWakersPerThread; ++k) t.ref_inc();
    t.transition_to_complete();
    ASSERT_FALSE(t.ref_dec(3));  // the task side and the handle let go
    std::atomic<int> deallocs{0};
    std::vector<std::thread> threads;
    for (int k = 0; k < kThreads; ++k) {
      threads.emplace_back([&] {
        for (int n = 0; n < kWakersPerThread; ++n) {
          deallocs += t.transition_to_notified_by_val() == S::WakeByValResult::kDealloc;
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(deallocs.load(), 1);
    ASSERT_EQ(refs(t), 0u);
  }
}

}  // namespace
}  // namespace pollux::detail
