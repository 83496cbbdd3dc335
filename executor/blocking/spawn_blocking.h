// spawn_blocking(fn): runs `fn()` on the runtime's blocking pool and
// returns a JoinHandle for its result (DESIGN §4), like tokio's.
//
//   JoinHandle<std::string> h = pollux::spawn_blocking([path] { return slurp(path); });
//   JoinResult<std::string> r = co_await h;
//
// For work that blocks or burns CPU for long (a blocking syscall, a
// library without async I/O, compression): a worker thread must never
// block. The pool (executor/blocking/blocking_pool.h) grows to at most 512
// threads by default and an idle one exits after 10 s (both set in
// Runtime::Builder).
//
// Result: the value (Unit for void); Panicked with the exception `fn`
// threw; Cancelled when aborted before it started (`fn` is then destroyed
// unrun), or when the runtime shut down first. abort() once `fn` runs has
// no effect: it runs to the end.
//
// Cancellation: dropping the JoinHandle detaches the call, it still runs.
//
// Thread-safety: spawn_blocking finds the pool through this thread's
// RuntimeContext (a task or block_on of any flavour) and aborts with a
// message elsewhere; Runtime::spawn_blocking and Handle::spawn_blocking work
// from any thread. `fn` runs on a pool thread with no runtime current:
// capture a Handle to spawn from it.
#ifndef POLLUX_EXECUTOR_BLOCKING_SPAWN_BLOCKING_H_
#define POLLUX_EXECUTOR_BLOCKING_SPAWN_BLOCKING_H_

#include <functional>
#include <type_traits>
#include <utility>

#include "executor/context.h"
#include "executor/internal/schedule.h"
#include "executor/spawn.h"
#include "future/future.h"

namespace pollux {

namespace detail {

// The future of a blocking task: calls `fn` at its first (and only) poll.
template <class Fn>
class BlockingCall {
 public:
  using Output = std::invoke_result_t<Fn&>;
  static_assert(std::is_void_v<Output> || std::is_object_v<Output>,
                "spawn_blocking needs a callable returning an object type or void");

  explicit BlockingCall(Fn fn) : fn_(std::move(fn)) {}

  Poll<Output> poll(Context&) {
    if constexpr (std::is_void_v<Output>) {
      std::invoke(fn_);
      return Ready{};
    } else {
      return Ready<Output>(std::invoke(fn_));
    }
  }

 private:
  Fn fn_;
};

template <class Fn>
auto spawn_blocking_onto(Schedule* blocking, Fn&& fn) {
  return spawn_onto(blocking, BlockingCall<std::decay_t<Fn>>(std::forward<Fn>(fn)));
}

}  // namespace detail

// Runs `fn()` on the blocking pool of the runtime running on this thread.
template <class Fn>
[[nodiscard]] auto spawn_blocking(Fn&& fn) {
  detail::Schedule* pool = RuntimeContext::current().blocking;
  if (pool == nullptr) {
    detail::check_failed("RuntimeContext::current().blocking != nullptr",
                         "spawn_blocking() called on a thread with no runtime; call it from "
                         "inside a task or block_on, or use Runtime/Handle::spawn_blocking",
                         __FILE__, __LINE__);
  }
  return detail::spawn_blocking_onto(pool, std::forward<Fn>(fn));
}

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_BLOCKING_SPAWN_BLOCKING_H_
