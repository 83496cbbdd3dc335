// spawn(f) and spawn_local(f): run a future (or a callable returning one) as
// a task on the executor running on this thread, and return its JoinHandle.
//
// One vocabulary in every flavour: `pollux::spawn(f)` from inside any
// runtime or executor; `spawn_local(f)` for a task that must stay on this
// thread (on the single-thread executors they are the same thing);
// `Handle::spawn(f)` (runtime/) from anywhere.
//
// What may be spawned:
// - any Future whose Output is an object type or void. It is moved once into
//   the task cell (one allocation) and polled there, never moved again.
// - a callable `fn` with `fn()` returning such a Future. The callable is
//   stored in the task and called on the first poll; it lives until the
//   future it returned is destroyed. This is the safe way to spawn a
//   coroutine lambda: `spawn_local([x] () -> Task<int> { co_return x; })`
//   keeps `x` alive, while `spawn_local([x] () -> Task<int> {...}())` would
//   leave the coroutine reading captures of a destroyed temporary.
//
// Spawning makes no syscall. A task spawned while its executor shuts down is
// cancelled at once (its JoinHandle yields a cancelled JoinError).
//
// Thread-safety: spawn and spawn_local find the executor through this
// thread's RuntimeContext (executor/context.h) and abort with a message if
// none is running here.
#ifndef POLLUX_EXECUTOR_SPAWN_H_
#define POLLUX_EXECUTOR_SPAWN_H_

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "executor/context.h"
#include "executor/internal/schedule.h"
#include "executor/internal/task.h"
#include "executor/join_handle.h"
#include "executor/spawn_location.h"
#include "future/assert.h"
#include "future/future.h"

namespace pollux {

namespace detail {

// A future that builds its inner future from a stored callable on first poll.
template <class Fn>
class CallableFuture {
  using Inner = std::invoke_result_t<Fn&>;

 public:
  using Output = output_t<Inner>;

  explicit CallableFuture(Fn fn) : fn_(std::move(fn)) {}

  Poll<Output> poll(Context& cx) {
    if (!inner_) {
      // Built in place from the call's prvalue: the inner future never moves.
      struct Build {
        Fn& fn;
        operator Inner() { return std::invoke(fn); }  // NOLINT
      };
      inner_.emplace(Build{fn_});
    }
    return inner_->poll(cx);
  }

 private:
  Fn fn_;                       // declared first: outlives inner_
  std::optional<Inner> inner_;
};

template <class F>
struct Spawnable {
  static constexpr bool kIsFuture = Future<std::decay_t<F>>;
  static constexpr bool kIsCallable = [] {
    if constexpr (kIsFuture) {
      return false;
    } else if constexpr (std::is_invocable_v<std::decay_t<F>&>) {
      return Future<std::invoke_result_t<std::decay_t<F>&>>;
    } else {
      return false;
    }
  }();
  using Fut = std::conditional_t<kIsFuture, std::decay_t<F>, CallableFuture<std::decay_t<F>>>;
};

// The task future for `f` (a Future, or a callable returning one), checked.
template <class F>
auto make_task_future(F&& f) {
  using S = Spawnable<F>;
  static_assert(S::kIsFuture || S::kIsCallable,
                "spawn_local needs a pollux::Future, or a callable returning one "
                "(e.g. a coroutine lambda returning Task<T>)");
  using Fut = typename S::Fut;
  using Out = output_t<Fut>;
  static_assert(std::is_void_v<Out> || std::is_object_v<Out>,
                "a spawned future's Output must be an object type or void "
                "(a Task<T&> may be awaited but not spawned)");
  return Fut(std::forward<F>(f));
}

// Where a new task may run.
struct Placement {
  // Pinned to worker `worker` for its whole life (spawn_local, and spawn_on
  // on multi_thread): a pin that is never given back (TaskPin's kept half,
  // so the end-of-task check does not count it). Single-thread schedulers
  // ignore it: their tasks never move anyway.
  bool pinned = false;
  uint32_t worker = 0;

  static Placement anywhere() noexcept { return {}; }
  static Placement on_worker(uint32_t w) noexcept { return {true, w}; }
  static Placement this_thread() noexcept {
    return on_worker(RuntimeContext::current().worker_index);
  }
};

// Allocates the task and hands it to `scheduler` (ScheduleKind::kSpawn),
// which takes the cell's reference to it, binds it and queues its first
// poll, or cancels it at once when it is closed. From any thread.
// `loc` is the spawn site the task dump shows (Runtime::dump_tasks).
template <class F>
auto spawn_onto(Schedule* scheduler, F&& f, Placement placement = Placement::anywhere(),
                SpawnLocation loc = SpawnLocation::current()) {
  auto fut = make_task_future(std::forward<F>(f));
  using Fut = decltype(fut);
  using Out = output_t<Fut>;
  Header* h = Cell<Fut>::allocate(std::move(fut), scheduler);
  trailer_of(h)->spawned_at = loc;  // the cell is not shared yet
  if (placement.pinned) {
    // relaxed: the cell is not shared yet; schedule() publishes it.
    h->pins.store(kKeptPinUnit, std::memory_order_relaxed);
    h->home = placement.worker;
  }
  auto handle = HandleFactory::make<Out>(h);
  scheduler->schedule(h, ScheduleKind::kSpawn);
  return handle;
}

// The scheduler running on this thread, checked.
inline Schedule* current_scheduler_for(const char* what) {
  Schedule* s = RuntimeContext::current().scheduler;
  if (s == nullptr) {
    check_failed("RuntimeContext::current().scheduler != nullptr", what, __FILE__, __LINE__);
  }
  return s;
}

}  // namespace detail

// Spawns onto the executor running on this thread (see the header comment).
// `loc` (defaulted: the caller's line) is the spawn site the task dump
// shows (Runtime::dump_tasks).
template <class F>
[[nodiscard]] auto spawn(F&& f, SpawnLocation loc = SpawnLocation::current()) {
  return detail::spawn_onto(
      detail::current_scheduler_for(
          "spawn() called on a thread with no running executor; call it from inside a task "
          "or block_on, or use Handle::spawn / LocalExecutor::spawn_local"),
      std::forward<F>(f), detail::Placement::anywhere(), loc);
}

// Spawns onto this thread's executor; the task never leaves this thread
// (on multi_thread it is pinned to this worker and never stolen).
template <class F>
[[nodiscard]] auto spawn_local(F&& f,
                               SpawnLocation loc = SpawnLocation::current()) {
  return detail::spawn_onto(
      detail::current_scheduler_for(
          "spawn_local() called on a thread with no running executor; call it from inside a "
          "task or block_on, or use LocalExecutor::spawn_local"),
      std::forward<F>(f), detail::Placement::this_thread(), loc);
}

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_SPAWN_H_
