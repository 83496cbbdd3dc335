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
// Wakes: a wake on the executor's thread while it runs pushes to the local
// queue (no lock, no syscall); a wake from any other thread (or from this
// thread while the executor is not running) goes through the inject queue and
// unparks the driver, which costs a syscall only if the owner was parked.
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

#include "executor/driver.h"
#include "executor/internal/shared.h"
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
    return detail::spawn_on(core_, std::forward<F>(f));
  }

  // Runs `f` to completion on this thread, running spawned tasks meanwhile,
  // and returns its output (rethrowing what its poll threw).
  template <Future F>
  output_t<F> block_on(F f);

  // Runs tasks until none is runnable (never parks). Returns the task polls made.
  size_t run_until_idle();

  // Spawned tasks that have not completed yet.
  size_t pending_tasks() const noexcept { return core_.owned_count; }

  // The reference-counted block a Handle keeps (internal; for runtime/).
  detail::Shared* shared_for_handle() const noexcept { return shared_; }

  // Spawns from any thread (the task is adopted by the owner at its next
  // tick). The future is moved to the owner thread and polled there.
  template <class F>
  [[nodiscard]] auto spawn_from_any_thread(F&& f) {
    return detail::spawn_remote(shared_, std::forward<F>(f));
  }

 private:
  void check_owner() const;
  // `what` names the caller in the message ("block_on", "run_until_idle").
  void check_can_block(const char* what) const;
  // One tick of task polls; returns polls made.
  size_t run_tick();
  // Pulls in tasks woken or spawned from other threads.
  void drain_injected();
  bool has_runnable() const noexcept {
    return !core_.run_queue.empty() || shared_->has_injected();
  }

  std::unique_ptr<Driver> own_driver_;
  Driver* driver_;
  detail::Shared* shared_;
  detail::ExecutorCore core_;
};

// Live task cells in the process (allocated, not yet freed): for leak tests.
int64_t live_task_cells() noexcept;

template <Future F>
output_t<F> LocalExecutor::block_on(F f) {
  check_can_block("block_on");
  detail::CurrentCoreGuard guard(&core_);
  Waker root = shared_->root_waker();
  Budget budget;
  shared_->wake_root();  // the first poll
  for (;;) {
    if (shared_->take_root_woken()) {
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
    if (has_runnable() || shared_->root_woken()) {
      driver_->poll_nonblocking();
    } else {
      driver_->park();
    }
  }
}

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_LOCAL_EXECUTOR_H_
