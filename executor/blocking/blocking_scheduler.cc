#include "executor/blocking/blocking_scheduler.h"

#include "executor/context.h"
#include "future/assert.h"
#include "future/context.h"

namespace pollux::detail {
namespace {

// Polls one blocking task on a pool thread. Owns the task's queue entry
// reference; frees itself.
class BlockingTaskJob final : public blocking::BlockingJob {
 public:
  explicit BlockingTaskJob(Header* task) : task_(task) {}

  void run() noexcept override {
    Header* task = task_;
    delete this;
    // No scheduler is current on a pool thread: the function runs outside
    // any runtime (spawn from it through a captured Handle).
    Budget unlimited = Budget::unlimited();
    run_task(task, unlimited, /*continue_budget=*/true);
  }
  void abandon() noexcept override {
    Header* task = task_;
    delete this;
    abandon_queued_task(task);  // never started: cancelled, the function dropped unrun
  }

 private:
  Header* task_;
};

}  // namespace

void BlockingScheduler::schedule(Header* task, ScheduleKind kind) noexcept {
  if (kind != ScheduleKind::kSpawn) {
    // Only abort() of a task not yet started can get here (its future never
    // returns Pending): its job is queued and will see CANCELLED.
    POLLUX_DCHECK(false, "a blocking task was woken");
    drop_reference(task);
    return;
  }
  ref_inc();  // the cell's, given back by drop_task_ref when it is freed
  auto* job = new BlockingTaskJob(task);
  bool submitted = false;
  {
    MutexLock lock(mu_);
    submitted = pool_ != nullptr && pool_->submit(job);
  }
  if (!submitted) {
    delete job;
    cancel_unowned_task(task);  // closed, or no thread could run it
  }
}

void BlockingScheduler::close() noexcept {
  MutexLock lock(mu_);
  pool_ = nullptr;
}

}  // namespace pollux::detail
