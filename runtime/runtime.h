// Runtime: the composition root. An executor, and what it parks in: an I/O
// backend (an io_uring ring), under timer::TimeDriver when time is enabled (a
// TimeDriver over a plain parker without I/O, a plain parker with neither),
// put together by a Builder and entered with block_on.
//
//   absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
//   if (!rt.ok()) { ... }          // e.g. io_uring unavailable: the reason says so
//   int v = rt->block_on(main_task());
//
// Flavours: current_thread() (the only one so far): one thread runs every
// task. It binds to the first thread that calls block_on (or spawns on it);
// block_on from any other thread is FailedPrecondition from try_block_on and
// a check failure with the same message from block_on.
//
// Inside block_on the runtime's RuntimeContext (executor/context.h) is this
// thread's: pollux::spawn, timer::sleep and the reactor's operations find
// the scheduler, timer queue and backend there.
// Outside, they fail with a clear message (sleep, spawn) or status (I/O).
//
// Shutdown (~Runtime): every unfinished task's future is dropped on the
// runtime thread (their JoinHandles yield Cancelled), then the backend
// cancels every in-flight operation and waits (at most 10 s) for the kernel
// to hand back its memory, keeping what it does not, then closes the ring.
// The backend's eventfd is closed when the last thing that can wake the
// executor (a JoinHandle, a cloned Waker, a Handle) is gone, so a late wake
// never writes to a reused fd. Destroy the runtime on its thread.
//
// Thread-safety: a Runtime is used from its thread; handle() gives a Handle
// that spawns onto it from any thread.
#ifndef POLLUX_RUNTIME_RUNTIME_H_
#define POLLUX_RUNTIME_RUNTIME_H_

#include <memory>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "executor/context.h"
#include "executor/internal/schedule.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/future.h"
#include "reactor/backend.h"
#include "reactor/uring/io_uring_options.h"
#include "timer/timer_queue.h"

namespace pollux {

class Runtime;

namespace detail {
struct RuntimeInner;
}  // namespace detail

// Spawns onto a runtime from any thread. Cheap to copy; outliving the
// runtime is safe (spawning then yields a cancelled JoinHandle).
class Handle {
 public:
  // Spawns `f` (a Future or a callable returning one) onto the runtime; the
  // runtime thread adopts it at its next tick (on the runtime thread itself
  // it is queued at once, with no syscall).
  template <class F>
  [[nodiscard]] auto spawn(F&& f) const {
    return detail::spawn_onto(scheduler_.get(), std::forward<F>(f));
  }

 private:
  friend class Runtime;
  struct SchedulerRef {
    void operator()(detail::Schedule* s) const noexcept { s->ref_dec(); }
  };
  // The deleter must be named here: `scheduler_(s)` alone would build a
  // shared_ptr with the default deleter (delete s) and ignore the one in
  // the member's default initializer.
  explicit Handle(detail::Schedule* s) : scheduler_(s, SchedulerRef{}) { s->ref_inc(); }
  std::shared_ptr<detail::Schedule> scheduler_{nullptr, SchedulerRef{}};
};

class Runtime {
 public:
  class Builder {
   public:
    // One thread runs every task (see the class comment).
    Builder& current_thread() {
      multi_thread_ = false;
      return *this;
    }
    // io_uring operations (reactor/, net/, fs/).
    Builder& enable_io() {
      io_ = true;
      return *this;
    }
    // Timers (sleep, timeout, interval).
    Builder& enable_time() {
      time_ = true;
      return *this;
    }
    Builder& enable_all() { return enable_io().enable_time(); }
    // Ring sizes, fault-injection seam (tests).
    Builder& io_uring_options(reactor::IoUringOptions o) {
      uring_ = o;
      return *this;
    }
    // Creates the runtime. Fails with the kernel's reason when io_uring
    // cannot be set up.
    absl::StatusOr<Runtime> build();

   private:
    bool multi_thread_ = false;
    bool io_ = false;
    bool time_ = false;
    reactor::IoUringOptions uring_;
  };

  Runtime(Runtime&&) noexcept;
  Runtime& operator=(Runtime&&) noexcept;
  ~Runtime();

  // Runs `f` to completion on this thread, with spawned tasks, I/O and
  // timers, and returns its output. Aborts with a message when called from
  // another thread than the runtime's or from inside a task.
  template <Future F>
  output_t<F> block_on(F f) {
    absl::Status s = enter_check();
    POLLUX_CHECK(s.ok(), s.message().data());
    return executor().block_on_in(context(), std::move(f));
  }
  // Like block_on, but returns a status instead of aborting: a wrong thread
  // or re-entry is FailedPrecondition, a ring that cannot be enabled on this
  // thread is the kernel's reason, and a backend whose kernel entry keeps
  // failing ends the run with that error (DESIGN §5) instead of spinning.
  // For a future whose output is a Status or StatusOr, that error is folded
  // into it (try_output_t, executor/local_executor.h):
  //   absl::Status s = rt.try_block_on(reactor::nop());   // nop's, or the runtime's
  template <Future F>
  try_output_t<output_t<F>> try_block_on(F f) {
    absl::Status s = enter_check();
    if (!s.ok()) return s;
    return executor().try_block_on_in(context(), std::move(f));
  }

  // Spawns onto this runtime from any thread. On the runtime thread it
  // makes no syscall; from elsewhere the task goes through the remote queue.
  template <class F>
  [[nodiscard]] auto spawn(F&& f) {
    return detail::spawn_onto(executor().scheduler(), std::forward<F>(f));
  }

  Handle handle() const;

  // The I/O backend, or null when I/O is not enabled.
  reactor::Backend* io_backend() const noexcept;
  // The timer queue, or null when time is not enabled.
  timer::TimerQueue* timer_queue() const noexcept;

 private:
  explicit Runtime(std::unique_ptr<detail::RuntimeInner> inner);

  // Binds the runtime to the calling thread on first use (atomically: of two
  // threads racing their first block_on, one wins), refuses re-entry from a
  // task, and enables the ring on its thread.
  absl::Status enter_check();
  LocalExecutor& executor() const noexcept;
  // The backend and timers block_on makes current.
  RuntimeContext context() const noexcept;

  std::unique_ptr<detail::RuntimeInner> inner_;
};

}  // namespace pollux

#endif  // POLLUX_RUNTIME_RUNTIME_H_
