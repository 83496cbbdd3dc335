// Models of the task state word, detail::TaskState
// (executor/internal/task_state.h), driven directly the way the harness
// (executor/internal/task.cc) drives it, with concurrent actors:
// - the owner thread polls the task from its run queue (twice to complete),
//   and shuts it down at the end if it never completed;
// - a waker thread wakes it by value from another thread;
// - a JoinHandle thread aborts it (or not) and drops the handle.
// Checked: the future is touched only by whoever holds RUNNING (a race on
// its RaceCell otherwise), the task is in at most one queue entry, the
// result is dropped exactly once, the cell is freed exactly once (never
// early: a RaceCell access after the free races with its destruction; a
// second delete is a double free), and the reference count never
// underflows (TaskState's own DCHECKs abort).
//
// And the completion/join hand-off on its own: the task side writes the
// result and completes while the JoinHandle side registers its waker or
// sees COMPLETE and reads the result; on the planted copy whose
// transition_to_complete is relaxed it must be a data race.
#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "executor/internal/task_state.h"
#include "future/internal/mutex.h"
#include "future/internal/race_cell.h"
#include "future/internal/thread.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/relaxed_complete_task_state.h"

namespace pollux::model {
namespace {

using detail::MutexLock;
using S = detail::TaskState;

class TaskStateModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// ---- The whole life of a task against a waker, an abort and a join drop ----

// What the model counts across threads; reset at the start of each execution.
std::atomic<int> g_frees{0};
std::atomic<int> g_outputs_dropped{0};

constexpr int kReady = 42;
constexpr int kCancelled = -1;

struct ModelTask {
  S state;                            // NOTIFIED | JOIN_INTEREST, refs: owned list, entry, handle
  detail::RaceCell<int> polls{0};     // the future's state: only the RUNNING side touches it
  detail::RaceCell<int> output{0};    // kReady or kCancelled once complete, 0 once dropped
};

void free_task(ModelTask* t) {
  g_frees.fetch_add(1, std::memory_order_relaxed);
  delete t;
}

// The remote half of the owner's run queue: entries pushed by other threads.
class RemoteQueue {
 public:
  explicit RemoteQueue(int producers) : producers_left_(producers) {}
  // Queues an entry (the caller hands over the reference it holds for it).
  void push() {
    MutexLock lock(mu_);
    MODEL_ASSERT(entries_ == 0);  // a NOTIFIED task has exactly one queue entry
    ++entries_;
    cv_.notify_one();
  }
  void producer_done() {
    MutexLock lock(mu_);
    --producers_left_;
    cv_.notify_one();
  }
  // Owner: waits for an entry; false once none can come any more.
  bool pop() {
    MutexLock lock(mu_);
    while (entries_ == 0 && producers_left_ > 0) cv_.wait(mu_);
    if (entries_ == 0) return false;
    --entries_;
    return true;
  }

 private:
  detail::Mutex mu_;
  detail::CondVar cv_;
  int entries_ ABSL_GUARDED_BY(mu_) = 0;
  int producers_left_ ABSL_GUARDED_BY(mu_);
};

// The owner thread's side, as in task.cc: run_task, complete, shutdown.
class Owner {
 public:
  explicit Owner(ModelTask* t) : t_(t) {}

  // Runs the task for one queue entry (consuming the entry's reference).
  // True when the task must be queued again (woken during its poll).
  bool run() {
    switch (t_->state.transition_to_running()) {
      case S::RunResult::kFailed:
        if (t_->state.ref_dec()) free_task(t_);
        return false;
      case S::RunResult::kCancel:
        cancel_and_complete(2);
        return false;
      case S::RunResult::kPoll:
        break;
    }
    if (++t_->polls.get_mut() == 2) {
      t_->polls.get_mut() = 0;  // the future is dropped
      t_->output.get_mut() = kReady;
      complete(2);  // the entry's reference and the owned list's
      return false;
    }
    switch (t_->state.transition_to_idle()) {
      case S::IdleResult::kOk:
        return false;
      case S::IdleResult::kOkNotified:
        return true;
      case S::IdleResult::kCancelled:
        cancel_and_complete(2);
        return false;
    }
    return false;
  }

  // After every entry ran: a task that never completed is shut down.
  void shutdown() {
    if (completed_) return;  // then `t_` may be freed already
    if (t_->state.transition_to_shutdown()) cancel_and_complete(1);  // the owned list's
  }

 private:
  void cancel_and_complete(uint64_t refs) {
    t_->polls.get_mut() = 0;
    t_->output.get_mut() = kCancelled;
    complete(refs);
  }
  void complete(uint64_t refs) {
    completed_ = true;
    const S::Snapshot prev = t_->state.transition_to_complete();
    if (!prev.has_join_interest()) {
      t_->output.get_mut() = 0;  // nobody wants it: dropped here
      g_outputs_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    if (t_->state.ref_dec(refs)) free_task(t_);
  }

  ModelTask* t_;
  bool completed_ = false;
};

void task_life(bool abort) {
  g_frees = 0;
  g_outputs_dropped = 0;
  auto* t = new ModelTask;
  t->state.ref_inc();  // the waker the waker thread holds
  RemoteQueue queue(2);
  detail::Thread waker([&queue, t] {
    switch (t->state.transition_to_notified_by_val()) {
      case S::WakeByValResult::kSubmit:
        queue.push();  // the waker's reference becomes the entry's
        break;
      case S::WakeByValResult::kDealloc:
        free_task(t);
        break;
      case S::WakeByValResult::kDoNothing:
        break;
    }
    queue.producer_done();
  });
  detail::Thread handle([&queue, t, abort] {
    if (abort && t->state.transition_to_notified_and_cancel()) queue.push();
    // join_drop: a complete task's result is the handle's to drop.
    if (!t->state.unset_join_interest()) {
      const int out = t->output.get();
      MODEL_ASSERT(out == kReady || out == kCancelled);
      t->output.get_mut() = 0;
      g_outputs_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    if (t->state.ref_dec()) free_task(t);
    queue.producer_done();
  });
  Owner owner(t);
  bool entry = true;  // the new task's own queue entry
  while (entry || queue.pop()) entry = owner.run();
  owner.shutdown();
  waker.join();
  handle.join();
  MODEL_ASSERT(g_outputs_dropped.load() == 1);
  MODEL_ASSERT(g_frees.load() == 1);
}

TEST_F(TaskStateModelTest, WakeRacingPollsAndAJoinDrop) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { task_life(/*abort=*/false); }, {.name = "TaskState wake + join drop"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(TaskStateModelTest, WakeRacingPollsAnAbortAndAJoinDrop) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check([] { task_life(/*abort=*/true); }, {.name = "TaskState wake + abort + join drop"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

// ---- The completion/join hand-off: result and join waker ----

template <class State>
struct HandoffCell {
  State state;                              // refs: the task side's two, the handle's one
  detail::RaceCell<int> result{0};          // written before COMPLETE
  detail::RaceCell<bool> join_waker{false};  // the trailer's waker: "one is stored"
  // What the join waker wakes: the handle's thread.
  detail::Mutex mu;
  detail::CondVar cv;
  bool woken ABSL_GUARDED_BY(mu) = false;
};

template <class State>
void completion_handoff() {
  auto* cell = new HandoffCell<State>;
  MODEL_ASSERT(cell->state.transition_to_running() == State::RunResult::kPoll);
  detail::Thread task([cell] {
    cell->result.get_mut() = kReady;
    const auto prev = cell->state.transition_to_complete();
    if (prev.has_join_waker()) {
      MODEL_ASSERT(cell->join_waker.get());  // published before JOIN_WAKER
      MutexLock lock(cell->mu);
      cell->woken = true;
      cell->cv.notify_one();
    }
    if (cell->state.ref_dec(2)) delete cell;
  });
  // The JoinHandle's poll (join_poll_ready in task.cc), on this thread.
  bool ready = cell->state.load().is_complete();
  if (!ready) {
    cell->join_waker.get_mut() = true;
    if (!cell->state.set_join_waker()) {
      cell->join_waker.get_mut() = false;  // completed meanwhile; the task never saw it
      ready = true;
    }
  }
  if (!ready) {
    MutexLock lock(cell->mu);
    while (!cell->woken) cell->cv.wait(cell->mu);
    MODEL_ASSERT(cell->state.load().is_complete());
  }
  MODEL_ASSERT(cell->result.get() == kReady);
  const bool last = cell->state.ref_dec(1);
  task.join();
  if (last) delete cell;
}

TEST_F(TaskStateModelTest, CompletionHandsTheResultAndJoinWakerOver) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check([] { completion_handoff<S>(); }, {.name = "TaskState completion hand-off"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(TaskStateModelTest, PlantedRelaxedCompleteIsADataRace) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { completion_handoff<planted::RelaxedCompleteTaskState>(); }),
              ExitsWithFailure(), "data race on RaceCell");
}

}  // namespace
}  // namespace pollux::model
