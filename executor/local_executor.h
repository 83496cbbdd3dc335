// LocalExecutor: runs tasks on the one thread that created it.
//
//   LocalExecutor ex;
//   JoinHandle<int> h = ex.spawn_local(my_future);
//   int v = ex.block_on(other_future);     // runs spawned tasks meanwhile
//
// Scheduling: a FIFO run queue with no atomics. Each tick polls at most 61
// tasks (kTickPolls), then pulls in tasks woken from other threads (the
// inject queue) and lets its Park deliver events: without blocking when
// work remains, by parking when none does. The block_on root future is polled
// at the start of a tick when it was woken. Each task poll starts with a
// fresh coop Budget of 128.
//
// Wakes: a wake on the executor's thread pushes to the local queue (no lock,
// no syscall); a wake from any other thread goes through the inject queue and
// unparks the Park, which costs a syscall only if the owner was parked.
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
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "executor/context.h"
#include "executor/driver.h"
#include "executor/internal/local_scheduler.h"
#include "executor/internal/task.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "executor/spawn_location.h"
#include "future/assert.h"
#include "future/future.h"

namespace pollux {

namespace detail {
// What try_block_on returns for a future with output T: a failure of the
// runtime itself is folded into a Status or StatusOr output instead of
// nesting them (absl::StatusOr<absl::Status> cannot hold an error at all).
template <class T>
struct TryOutput {
  using type = absl::StatusOr<T>;
};
template <>
struct TryOutput<void> {
  using type = absl::StatusOr<Unit>;
};
template <>
struct TryOutput<absl::Status> {
  using type = absl::Status;
};
template <class U>
struct TryOutput<absl::StatusOr<U>> {
  using type = absl::StatusOr<U>;
};
}  // namespace detail

//   T = void               -> absl::StatusOr<Unit>
//   T = absl::Status       -> absl::Status        (the future's, or the runtime's error)
//   T = absl::StatusOr<U>  -> absl::StatusOr<U>   (likewise)
//   any other T            -> absl::StatusOr<T>
template <class T>
using try_output_t = typename detail::TryOutput<T>::type;

// Runs tasks on the thread that created it (see above); every call on that
// thread.
class LocalExecutor {
 public:
  // Task polls per tick before the executor looks at other threads' wakes and its Park.
  static constexpr int kTickPolls = 61;

  // An executor that parks on a condition variable (no I/O, no timers).
  LocalExecutor();
  // An executor that parks in `park` (which must outlive it). With
  // `bind_lazily`, the executor belongs to the first thread that runs or
  // spawns on it (a current_thread runtime built on one thread and run on
  // another); otherwise to the constructing thread. `counters`, when given,
  // receives its metrics and must outlive it (runtime/ passes its own, so
  // Runtime::metrics() never reads an executor's memory); else it keeps its
  // own.
  explicit LocalExecutor(Park& park, bool bind_lazily = false,
                         detail::WorkerCounters* counters = nullptr);
  ~LocalExecutor();
  LocalExecutor(const LocalExecutor&) = delete;
  LocalExecutor& operator=(const LocalExecutor&) = delete;

  // Spawns a task (see spawn.h for what may be spawned). No syscall.
  template <class F>
  [[nodiscard]] auto spawn_local(F&& f,
                                 SpawnLocation loc = SpawnLocation::current()) {
    check_owner();
    auto fut = detail::make_task_future(std::forward<F>(f));
    using Fut = decltype(fut);
    detail::Header* h = detail::Cell<Fut>::allocate(std::move(fut), scheduler_);
    detail::trailer_of(h)->spawned_at = loc;  // not shared yet
    auto handle = detail::HandleFactory::make<output_t<Fut>>(h);
    scheduler_->spawn_on_owner(core_, h);  // checked above: no second owner check
    return handle;
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
  output_t<F> block_on_in(const RuntimeContext& base, F f) {
    std::optional<OrUnit<output_t<F>>> out;
    const absl::Status s = run_to_completion(base, std::move(f), out);
    if (!s.ok()) {
      detail::check_failed("the executor's Park stopped", s.ToString().c_str(), __FILE__,
                           __LINE__);
    }
    if constexpr (!std::is_void_v<output_t<F>>) return std::move(*out);
  }
  // As block_on_in, but when the Park under the executor fails for good
  // (Park::status(): an I/O backend whose kernel entry keeps failing) it
  // returns that status instead of spinning; `f` is dropped unfinished.
  // The output folds that status into the future's own (try_output_t).
  template <Future F>
  try_output_t<output_t<F>> try_block_on_in(const RuntimeContext& base, F f) {
    std::optional<OrUnit<output_t<F>>> out;
    const absl::Status s = run_to_completion(base, std::move(f), out);
    if (!s.ok()) return s;
    return std::move(*out);
  }

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
  // Tasks woken or spawned from other threads and not adopted yet (any
  // thread; takes a lock: for metrics).
  size_t injected_tasks() const noexcept { return scheduler_->injected_len(); }

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
  // The run loop of block_on: polls `f` until Ready (its output into
  // `out`, OK) or until the Park fails for good (its status).
  template <Future F>
  absl::Status run_to_completion(const RuntimeContext& base, F f,
                                 std::optional<OrUnit<output_t<F>>>& out);
  // `base` with this executor as the running scheduler.
  RuntimeContext running_context(const RuntimeContext& base) const noexcept;
  // One tick of task polls; returns polls made.
  size_t run_tick();
  bool has_runnable() const noexcept {
    return !core_.run_queue.empty() || scheduler_->has_injected();
  }

  std::unique_ptr<Park> own_park_;
  Park* park_;
  detail::WorkerCounters own_counters_;  // unless given others
  detail::LocalCore core_;
  detail::LocalScheduler* scheduler_;
};

// Live task cells in the process (allocated, not yet freed): for leak tests.
int64_t live_task_cells() noexcept;

template <Future F>
absl::Status LocalExecutor::run_to_completion(const RuntimeContext& base, F f,
                                              std::optional<OrUnit<output_t<F>>>& out) {
  check_can_block("block_on");
  RuntimeContext::Enter entered(running_context(base));
  // Held here, not in the parameter, so that a future dropped unfinished
  // (the Park failed) is dropped inside the context it ran in.
  F future(std::move(f));
  Waker root = scheduler_->root_waker();
  Budget budget;
  scheduler_->wake_root();  // the first poll
  for (;;) {
    if (scheduler_->take_root_woken()) {
      budget.reset();
      Context cx(root, budget);
      Poll<output_t<F>> p = future.poll(cx);
      if (p.is_ready()) {
        if constexpr (std::is_void_v<output_t<F>>) {
          out.emplace();
        } else {
          out.emplace(std::move(p).value());
        }
        return absl::OkStatus();
      }
    }
    run_tick();
    if (has_runnable() || scheduler_->root_woken()) {
      park_->poll_now();
    } else {
      core_.counters->parks.inc();
      if (!park_->park(std::nullopt)) {
        // An unbounded park that reports nothing happened: a spurious
        // return, or a Park that has failed for good (then stop instead of
        // spinning).
        if (absl::Status s = park_->status(); !s.ok()) return s;
      }
    }
  }
}

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_LOCAL_EXECUTOR_H_
