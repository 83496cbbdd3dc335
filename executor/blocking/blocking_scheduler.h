// BlockingScheduler: the Schedule behind spawn_blocking (DESIGN §4: "the
// pool is one more scheduler behind the Schedule interface"). A blocking
// task is an ordinary task cell whose future calls the user's function once
// (spawn_blocking.h); schedule(kSpawn) hands it to the BlockingPool as a job
// that polls it there. Everything else is the harness's: the value or the
// exception (Panicked) reach the JoinHandle as for any task; abort() before
// the job started leaves the task CANCELLED, and the job then drops the
// function unrun (Cancelled); abort() while it runs changes nothing (a
// function cannot be interrupted).
//
// No OwnedTasks list: nothing is ever polled twice, and shutdown does not
// walk tasks. The pool abandons queued jobs at shutdown, which cancels their
// tasks (the functions destroyed unrun); a running function is waited for by
// the pool's shutdown. A spawn after close() is cancelled at once.
//
// Thread-safety: every member from any thread.
#ifndef POLLUX_EXECUTOR_BLOCKING_BLOCKING_SCHEDULER_H_
#define POLLUX_EXECUTOR_BLOCKING_BLOCKING_SCHEDULER_H_

#include "absl/base/thread_annotations.h"
#include "executor/blocking/blocking_pool.h"
#include "executor/internal/schedule.h"
#include "executor/internal/task.h"
#include "future/internal/mutex.h"

namespace pollux::detail {

class BlockingScheduler final : public Schedule {
 public:
  // Submits to `pool`, which must stay alive until close() returned.
  static BlockingScheduler* create(blocking::BlockingPool* pool) {
    return new BlockingScheduler(pool);
  }

  void schedule(Header* task, ScheduleKind kind) noexcept override;
  // No list holds the task: the reference a list would hold is dropped at
  // completion (TaskState's three first references).
  bool release(Header*) noexcept override { return true; }
  void unpark() noexcept override {}
  void drop_task_ref() noexcept override { ref_dec(); }

  // Refuses further spawns (they are cancelled on the spawning thread);
  // after it returns the pool may shut down.
  void close() noexcept;

 private:
  explicit BlockingScheduler(blocking::BlockingPool* pool) : pool_(pool) {}
  ~BlockingScheduler() override = default;

  Mutex mu_;
  blocking::BlockingPool* pool_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_BLOCKING_BLOCKING_SCHEDULER_H_
