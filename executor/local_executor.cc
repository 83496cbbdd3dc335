#include "executor/local_executor.h"

#include <string>
#include <thread>

#include "executor/thread_parker.h"
#include "future/assert.h"

namespace pollux {

namespace detail {
int64_t live_tasks() noexcept;
}

int64_t live_task_cells() noexcept { return detail::live_tasks(); }

LocalExecutor::LocalExecutor()
    : own_park_(std::make_unique<ThreadParker>()),
      park_(own_park_.get()),
      scheduler_(new detail::LocalScheduler(park_->unparker(), &core_, /*bind_now=*/true)) {
  core_.counters = &own_counters_;
}

LocalExecutor::LocalExecutor(Park& park, bool bind_lazily, detail::WorkerCounters* counters)
    : park_(&park),
      scheduler_(new detail::LocalScheduler(park_->unparker(), &core_,
                                            /*bind_now=*/!bind_lazily)) {
  core_.counters = counters != nullptr ? counters : &own_counters_;
  // Task ids as multi_thread makes them (ShardedOwnedTasks::make_id): the
  // core index (thread_per_core's, entered before its executor is made) in
  // bits 48 and up.
  core_.next_task_id = uint64_t{RuntimeContext::current().worker_index} << 48;
}

LocalExecutor::~LocalExecutor() {
  check_owner();
  POLLUX_CHECK(RuntimeContext::current().scheduler != scheduler_,
               "LocalExecutor destroyed from inside one of its own tasks");
  // Futures dropped below may wake or spawn tasks of this executor: with it
  // current and closed, those wakes just drop their reference.
  RuntimeContext::Enter entered(running_context(RuntimeContext::current()));
  detail::TaskList leftover;
  detail::TaskList unadopted;
  scheduler_->close(leftover, unadopted);
  while (detail::Header* h = unadopted.pop_front()) detail::cancel_unowned_task(h);
  // Tasks queued still RUNNING (new, or self-woken) are owned by their queue
  // entry: they finish here, before the walk below, which expects every
  // task it meets to be idle.
  leftover.append(core_.run_queue);
  while (detail::Header* h = leftover.pop_front()) detail::abandon_queued_task(h);
  while (detail::Header* h = core_.owned.front()) {
    detail::shutdown_task(h);
    POLLUX_CHECK(core_.owned.front() != h, "a task could not be shut down (still running?)");
  }
  leftover.append(core_.run_queue);
  while (detail::Header* h = leftover.pop_front()) detail::drop_reference(h);
  // core_ is about to go: cells freed later drop their reference atomically.
  scheduler_->detach_core();
  scheduler_->ref_dec();
}

void LocalExecutor::check_owner() const {
  POLLUX_CHECK(scheduler_->bind_owner(),
               "LocalExecutor used from a thread other than the one that created it; "
               "wake its tasks from other threads through their wakers instead");
}

void LocalExecutor::check_can_block(const char* what) const {
  check_owner();
  if (RuntimeContext::current().scheduler != nullptr) {
    std::string msg = std::string(what) +
                      " called while an executor is running on this thread (from inside a "
                      "task or a block_on root future); co_await or poll the future instead";
    detail::check_failed("RuntimeContext::current().scheduler == nullptr", msg.c_str(), __FILE__,
                         __LINE__);
  }
}

RuntimeContext LocalExecutor::running_context(const RuntimeContext& base) const noexcept {
  RuntimeContext ctx;
  ctx.scheduler = scheduler_;
  ctx.worker_index = base.worker_index;
  ctx.blocking = base.blocking;
  ctx.backend = base.backend;
  ctx.timers = base.timers;
  ctx.tick = base.tick;
  return ctx;
}

size_t LocalExecutor::run_tick() {
  if (scheduler_->has_injected()) scheduler_->drain_inject(core_);
  size_t polls = 0;
  detail::WorkerCounters& counters = *core_.counters;
  for (; polls < kTickPolls; ++polls) {
    detail::Header* h = core_.run_queue.pop_front();
    if (h == nullptr) break;
    detail::run_task(h, core_.budget);
    // A read only: run_task resets the budget (and the flag) before each
    // poll here (no LIFO continuation on this executor).
    if (core_.budget.refused()) counters.forced_yields.inc();
  }
  // Once per tick, not per poll: two relaxed stores, no locked instruction.
  counters.polls.add(polls);
  // The run queue's length as the tick ends (the park that may follow
  // leaves it unchanged): a gauge that is at most one tick old.
  counters.queue_depth.set(core_.run_queue.size());
  return polls;
}

size_t LocalExecutor::run_until_idle() {
  check_can_block("run_until_idle");
  RuntimeContext::Enter entered(running_context(RuntimeContext::current()));
  size_t polls = 0;
  for (;;) {
    if (!has_runnable()) {
      park_->poll_now();
      if (!has_runnable()) return polls;
    }
    polls += run_tick();
  }
}

}  // namespace pollux
