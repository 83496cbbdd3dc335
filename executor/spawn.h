// spawn_local(f): runs a future (or a callable returning one) as a task on
// the executor running on this thread, and returns its JoinHandle.
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
// Thread-safety: spawn_local must be called on the executor's thread; the
// free function finds the executor through the thread's current executor and
// aborts with a message if there is none.
#ifndef POLLUX_EXECUTOR_SPAWN_H_
#define POLLUX_EXECUTOR_SPAWN_H_

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "executor/internal/shared.h"
#include "executor/internal/task.h"
#include "executor/join_handle.h"
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

// Allocates the task, registers it with `core` and queues its first poll.
template <class F>
auto spawn_on(ExecutorCore& core, F&& f) {
  auto fut = make_task_future(std::forward<F>(f));
  using Fut = decltype(fut);
  using Out = output_t<Fut>;
  core.take_shared_ref();  // the cell's reference, released by dealloc
  Header* h = Cell<Fut>::allocate(std::move(fut), core.shared);
  core.own(h);
  if (core.shared->is_closed()) {
    // Shutting down: cancel before the first poll, drop the queue entry's reference.
    abandon_queued_task(&core, h);
  } else {
    core.run_queue.push_back(h);
  }
  return HandleFactory::make<Out>(h);
}

// Spawns onto the executor behind `shared` from any thread: the owner adopts
// the task at its next tick. On a closed executor the task is cancelled at
// once (its never-polled future is dropped here).
template <class F>
auto spawn_remote(Shared* shared, F&& f) {
  auto fut = make_task_future(std::forward<F>(f));
  using Fut = decltype(fut);
  using Out = output_t<Fut>;
  shared->ref_inc();  // the cell's reference, released by dealloc
  Header* h = Cell<Fut>::allocate(std::move(fut), shared);
  if (!shared->spawn_remote(h)) cancel_unowned_task(h);
  return HandleFactory::make<Out>(h);
}

}  // namespace detail

// Spawns onto the executor running on this thread (see the header comment).
template <class F>
[[nodiscard]] auto spawn_local(F&& f) {
  detail::ExecutorCore* core = detail::current_core();
  POLLUX_CHECK(core != nullptr,
               "spawn_local() called on a thread with no running executor; call it from "
               "inside a task or block_on, or use LocalExecutor::spawn_local");
  return detail::spawn_on(*core, std::forward<F>(f));
}

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_SPAWN_H_
