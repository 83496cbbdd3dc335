// LocalExecutor: runs tasks on the one thread that created it.
//
//   LocalExecutor ex;
//   JoinHandle<int> h = ex.spawn_local(my_future);
//   int v = ex.block_on(other_future);     // runs spawned tasks meanwhile
//
// Scheduling: a FIFO run queue with no atomics. Each tick polls at most 61
// tasks (kTickPolls), then pulls in tasks woken from other threads (the
// inject queue) and lets the driver deliver events: without blocking when
// work remains, by parking when none does. The block_on root future is polled
// at the start of a tick when it was woken. Each task poll starts with a
// fresh coop Budget of 128.
//
// Wakes: a wake on the executor's thread pushes to the local queue (no lock,
// no syscall); a wake from any other thread goes through the inject queue and
// unparks the driver, which costs a syscall only if the owner was parked.
// The scheduling decisions live in detail::LocalScheduler
// (executor/internal/local_scheduler.h), the executor's side of the Schedule
// interface the task harness acts through.
//
// Shutdown (the destructor): closes the inject queue, then drops every
// unfinished task's future on this thread; their JoinHandles yield a
// cancelled JoinError. Wakers that outlive the executor do nothing.
//
// Thread-safety: every member function must be called on the owner thread
// (checked). block_on must not be called from inside a task of any executor
// (checked: it would block a worker and re-enter the run loop).
#ifndef POLLUX_EXECUTOR_LOCAL_EXECUTOR_H_
#define POLLUX_EXECUTOR_LOCAL_EXECUTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "executor/context.h"
#include "executor/driver.h"
#include "executor/internal/local_scheduler.h"
#include "executor/internal/task.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "future/future.h"

namespace pollux {

class LocalExecutor {
 public:
  // Task polls per tick before the executor looks at other threads' wakes and the driver.
  static constexpr int kTickPolls = 61;

  // An executor that parks on a condition variable (no I/O, no timers).
  LocalExecutor();
  // An executor driven by `driver` (which must outlive it). With
  // `bind_lazily`, the executor belongs to the first thread that runs or
  // spawns on it (a current_thread runtime built on one thread and run on
  // another); otherwise to the constructing thread.
  explicit LocalExecutor(Driver& driver, bool bind_lazily = false);
  ~LocalExecutor();
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  // Spawns a task (see spawn.h for what may be spawned). No syscall.
  template <class F>
  [[nodiscard]] auto spawn_local(F&& f) {
    check_owner();
    return detail::spawn_onto(scheduler_, std::forward<F>(f));
  }

  // Runs `f` to completion on this thread, running spawned tasks meanwhile,
  // and returns its output (rethrowing what its poll threw). The backend and
  // timers of this thread's RuntimeContext stay current inside.
  template <Future F>
  output_t<F> block_on(F f) {
    return block_on_in(RuntimeContext::current(), std::move(f));
  }
  // block_on with `base`'s backend and timers current (runtime/ passes its own).
  template <Future F>
  output_t<F> block_on_in(const RuntimeContext& base, F f);

  // Binds a lazily bound executor to the calling thread (one
  // compare-exchange, so of two racing threads exactly one wins). True when
  // the calling thread is (now) its owner.
  [[nodiscard]] bool try_bind_to_current_thread() noexcept { return scheduler_->bind_owner(); }

  // Runs tasks until none is runnable (never parks). Returns the task polls made.
  size_t run_until_idle();

  // Spawned tasks that have not completed yet.
  size_t pending_tasks() const noexcept { return core_.owned.size(); }

  // The scheduler a Handle keeps (internal; for runtime/).
  detail::Schedule* scheduler() const noexcept { return scheduler_; }

  // Spawns from any thread (the task is adopted by the owner at its next
  // tick), like Runtime's Handle::spawn. The future is moved to the owner
  // thread and polled there.
  template <class F>
  [[nodiscard]] auto spawn_from_any_thread(F&& f) {
    return detail::spawn_onto(scheduler_, std::forward<F>(f));
  }

 private:
  void check_owner() const;
  // `what` names the caller in the message ("block_on", "run_until_idle").
  void check_can_block(const char* what) const;
  // `base` with this executor as the running scheduler.
  RuntimeContext running_context(const RuntimeContext& base) const noexcept;
  // One tick of task polls; returns polls made.
  size_t run_tick();
  bool has_runnable() const noexcept {
    return !core_.run_queue.empty() || scheduler_->has_injected();
  }

  std::unique_ptr<Driver> own_driver_;
  Driver* driver_;
  detail::LocalCore core_;
  detail::LocalScheduler* scheduler_;
};

// Live task cells in the process (allocated, not yet freed): for leak tests.
int64_t live_task_cells() noexcept;

template <Future F>
output_t<F> LocalExecutor::block_on_in(const RuntimeContext& base, F f) {
  check_can_block("block_on");
  RuntimeContext::Enter entered(running_context(base));
  Waker root = scheduler_->root_waker();
  Budget budget;
  scheduler_->wake_root();  // the first poll
  for (;;) {
    if (scheduler_->take_root_woken()) {
      budget.reset();
      Context cx(root, budget);
      Poll<output_t<F>> p = f.poll(cx);
      if (p.is_ready()) {
        if constexpr (std::is_void_v<output_t<F>>) {
          return;
        } else {
          return std::move(p).value();
        }
      }
    }
    run_tick();
    if (has_runnable() || scheduler_->root_woken()) {
      driver_->poll_nonblocking();
    } else {
      driver_->park();
    }
  }
}

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_LOCAL_EXECUTOR_H_
