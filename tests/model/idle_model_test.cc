// Models of the multi_thread scheduler's sleep protocol, detail::Idle
// (executor/multi_thread/idle.h), on the real code: two workers run the
// scheduler's loop (executor/multi_thread/scheduler.cc: run_tick's
// next_task and steal_work, then park()) cut down to what Idle decides:
// look at the queue, become a searcher if Idle allows it, look again, park
// with transition_worker_to_parked and, as the last searcher, look at the
// queue once more and wake a worker for what is there; sleep in a real
// ThreadParker until unparked, then search again when Idle no longer lists
// the worker as a sleeper. "The queue" is the real InjectQueue (a mutex,
// and a length read lock-free with acquire loads, which is how the
// scheduler's re-check reads it). The model's main thread pushes tasks
// into it and calls worker_to_notify(), unparking the worker it names, as
// MultiThreadScheduler::spawn does for a spawn from outside the runtime.
// Scenarios: one or two such spawns, with both workers starting awake, or
// worker 1 already asleep (one of Idle's sleepers).
//
// Checked in every execution: every task pushed is taken exactly once; a
// task's payload (a RaceCell), written before the push, is read by the
// worker that takes it without a race. The worker that takes the last task
// stops both (a flag, then both unparked), so a lost wake-up leaves a task
// in the queue, both workers asleep and the main thread in join(): the
// checker's deadlock.
//
// This model found the missing fence on the last searcher's side (fixed in
// Idle::transition_worker_to_parked): every scenario deadlocked without it.
// The first scenario on the planted copies of Idle
// (tests/model/planted/lossy_idle.h) must deadlock: one whose
// worker_to_notify() drops the seq_cst fence between the producer's push
// and its read of the searcher count, one whose
// transition_worker_to_parked() never reports the last searcher (so nobody
// re-checks the queue before sleeping).
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "executor/internal/task.h"
#include "executor/multi_thread/idle.h"
#include "executor/multi_thread/inject.h"
#include "executor/thread_parker.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/internal/race_cell.h"
#include "future/internal/thread.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/lossy_idle.h"

namespace pollux::model {
namespace {

using detail::Header;

class IdleModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

constexpr uint32_t kWorkers = 2;

// The real ThreadParker, where a worker of a runtime without I/O parks.
class RealParker {
 public:
  void park() { parker_.park(std::nullopt); }
  void unpark() { unparker_->unpark(); }

 private:
  ThreadParker parker_;
  std::shared_ptr<Unparker> unparker_ = parker_.unparker();
};

constexpr int kMaxTasks = 2;

// Two workers, one inject queue, one parker each, all on IdleT.
template <class IdleT>
class Pool {
 public:
  explicit Pool(int tasks) : tasks_(tasks) {}

  // A producer outside the pool: queues task `i` and wakes a sleeper if
  // Idle says one is needed (MultiThreadScheduler::spawn from elsewhere).
  void produce(int i) {
    payload_[i].get_mut() = 100 + i;
    MODEL_ASSERT(inject_.push(&headers_[i]));
    notify_parked();
  }

  // Worker `index` went to sleep before the scenario starts (main thread,
  // before the workers run): it is one of Idle's sleepers.
  void start_asleep(uint32_t index) {
    MODEL_ASSERT(!idle_.transition_worker_to_parked(index, /*is_searching=*/false));
  }

  // One worker's loop: MultiThreadScheduler::run_worker with run_tick's
  // next_task (nothing local: the inject queue), steal_work (a searcher
  // looks at the inject queue: no worker has a stealable queue here) and
  // park(). `asleep`: it starts in park()'s loop (start_asleep).
  void run_worker(uint32_t index, bool asleep) {
    bool searching = false;
    if (asleep) sleep(index, searching);
    while (!stopped()) {
      Header* h = inject_.pop();  // next_task: pop_inject_batch
      if (h == nullptr) {         // steal_work
        if (!searching) searching = idle_.transition_worker_to_searching();
        if (searching) h = inject_.pop();
      }
      if (h != nullptr) {
        if (searching) {  // end_search
          searching = false;
          if (idle_.transition_worker_from_searching()) notify_parked();
        }
        take(h);
        continue;
      }
      park(index, searching);
    }
  }

  // After the workers are joined.
  void check_end() {
    MODEL_ASSERT(inject_.is_empty());
    for (int i = 0; i < tasks_; ++i) MODEL_ASSERT(taken_[i].load(std::memory_order_relaxed) == 1);
  }

 private:
  bool stopped() const {
    // acquire: pairs with take's release.
    return stop_.load(std::memory_order_acquire);
  }

  void notify_parked() {
    if (std::optional<uint32_t> w = idle_.worker_to_notify()) parkers_[*w].unpark();
  }

  // MultiThreadScheduler::park, with has_tasks() false (no local queues).
  void park(uint32_t index, bool& searching) {
    if (idle_.transition_worker_to_parked(index, searching)) {
      // The last searcher: notify_if_work_pending.
      if (!inject_.is_empty()) notify_parked();
    }
    sleep(index, searching);
  }

  // park()'s loop: sleeps until stopped, or until notified to search. (The
  // scheduler also looks at the flag before it parks; an unpark made with
  // the stop is pending then, so the park returns at once: left out, as a
  // scheduling point that changes nothing.)
  void sleep(uint32_t index, bool& searching) {
    searching = false;
    for (;;) {
      parkers_[index].park();
      if (stopped()) return;
      if (!idle_.is_parked(index)) {
        searching = true;  // notified to look for work
        return;
      }
    }
  }

  // Runs task `h`. The worker that takes the last one stops both (the
  // runtime's shutdown: the flag, then unpark every worker), so a task
  // left in the queue keeps both workers asleep for ever and the main
  // thread in join(): the deadlock a lost wake-up is reported as.
  void take(Header* h) {
    const int i = static_cast<int>(h - headers_);
    MODEL_ASSERT(i >= 0 && i < tasks_);
    MODEL_ASSERT(payload_[i].get() == 100 + i);  // handed over with the push
    payload_[i].get_mut() = -1;
    MODEL_ASSERT(taken_[i].fetch_add(1, std::memory_order_relaxed) == 0);  // once
    if (done_.fetch_add(1, std::memory_order_relaxed) + 1 < tasks_) return;
    // release: pairs with stopped()'s acquire.
    stop_.store(true, std::memory_order_release);
    for (auto& p : parkers_) p.unpark();
  }

  const int tasks_;
  IdleT idle_{kWorkers};
  detail::InjectQueue inject_;
  RealParker parkers_[kWorkers];
  detail::Atomic<bool> stop_{false};
  Header headers_[kMaxTasks];
  detail::RaceCell<int> payload_[kMaxTasks];
  // Not scheduling points: bookkeeping of the model, not of the protocol.
  std::atomic<int> taken_[kMaxTasks] = {};
  std::atomic<int> done_{0};
};

// The main thread pushes `tasks` tasks from outside while both workers look
// for work and park (`second_asleep`: worker 1 is asleep from the start).
template <class IdleT>
void workers_and_a_producer(int tasks, bool second_asleep) {
  Pool<IdleT> pool(tasks);
  if (second_asleep) pool.start_asleep(1);
  detail::Thread w0([&] { pool.run_worker(0, false); });
  detail::Thread w1([&] { pool.run_worker(1, second_asleep); });
  for (int i = 0; i < tasks; ++i) pool.produce(i);
  w0.join();
  w1.join();
  pool.check_end();
}

TEST_F(IdleModelTest, ASpawnFromOutsideIsNeverLost) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { workers_and_a_producer<detail::Idle>(1, false); },
                        {.name = "Idle: 2 workers park, 1 outside spawn"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(IdleModelTest, TwoSpawnsFromOutsideAreNeverLost) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { workers_and_a_producer<detail::Idle>(2, false); },
                        {.name = "Idle: 2 workers park, 2 outside spawns"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(IdleModelTest, ASpawnWithOneWorkerAsleepIsNeverLost) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { workers_and_a_producer<detail::Idle>(1, true); },
                        {.name = "Idle: 1 worker parks, 1 asleep, 1 outside spawn"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(IdleModelTest, TwoSpawnsWithOneWorkerAsleepAreNeverLost) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { workers_and_a_producer<detail::Idle>(2, true); },
                        {.name = "Idle: 1 worker parks, 1 asleep, 2 outside spawns"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(IdleModelTest, PlantedIdleWithoutTheProducerFenceLosesAWakeUp) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { workers_and_a_producer<planted::UnfencedIdle>(1, false); }), ExitsWithFailure(),
              "pollux model checker: deadlock");
}

TEST_F(IdleModelTest, PlantedIdleWithoutTheLastSearcherRecheckLosesAWakeUp) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { workers_and_a_producer<planted::NoLastSearcherIdle>(1, false); }),
              ExitsWithFailure(), "pollux model checker: deadlock");
}

}  // namespace
}  // namespace pollux::model
