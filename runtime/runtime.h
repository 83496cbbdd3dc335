// Runtime: the composition root. An executor, and the driver under it (an
// io_uring ring with a timer queue, a timer queue alone, or a plain parker),
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
// Inside block_on the runtime is this thread's current runtime:
// pollux::spawn, timer::sleep and the reactor's operations find it there.
// Outside, they fail with a clear message (sleep, spawn) or status (I/O).
//
// Shutdown (~Runtime): every unfinished task's future is dropped on the
// runtime thread (their JoinHandles yield Cancelled), then the driver cancels
// every in-flight operation and waits for the kernel to hand back its memory,
// then closes the ring. The driver's eventfd is closed when the last thing
// that can wake the executor (a JoinHandle, a cloned Waker, a Handle) is
// gone, so a late wake never writes to a reused fd. Destroy the runtime on
// its thread.
//
// Thread-safety: a Runtime is used from its thread; handle() gives a Handle
// that spawns onto it from any thread.
#ifndef POLLUX_RUNTIME_RUNTIME_H_
#define POLLUX_RUNTIME_RUNTIME_H_

#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/future.h"
#include "reactor/io_uring_driver.h"
#include "timer/timer_queue.h"

namespace pollux {

class Runtime;

// Spawns onto a runtime from any thread. Cheap to copy; outliving the
// runtime is safe (spawning then yields a cancelled JoinHandle).
class Handle {
 public:
  // Spawns `f` (a Future or a callable returning one) onto the runtime; the
  // runtime thread adopts it at its next tick.
  template <class F>
  [[nodiscard]] auto spawn(F&& f) const {
    return detail::spawn_remote(shared_.get(), std::forward<F>(f));
  }

 private:
  friend class Runtime;
  struct SharedRef {
    void operator()(detail::Shared* s) const noexcept { s->ref_dec(); }
  };
  // The deleter must be named here: `shared_(s)` alone would build a
  // shared_ptr with the default deleter (delete s) and ignore the one in
  // the member's default initializer.
  explicit Handle(detail::Shared* s) : shared_(s, SharedRef{}) { s->ref_inc(); }
  std::shared_ptr<detail::Shared> shared_{nullptr, SharedRef{}};
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

  Runtime(Runtime&&) noexcept = default;
  Runtime& operator=(Runtime&&) noexcept = default;
  ~Runtime();

  // Runs `f` to completion on this thread, with spawned tasks, I/O and
  // timers, and returns its output. Aborts with a message when called from
  // another thread than the runtime's or from inside a task.
  template <Future F>
  output_t<F> block_on(F f) {
    absl::Status s = enter_check();
    POLLUX_CHECK(s.ok(), s.message().data());
    return run(std::move(f));
  }
  // Like block_on, but a wrong thread is a FailedPrecondition status.
  template <Future F>
  absl::StatusOr<OrUnit<output_t<F>>> try_block_on(F f) {
    absl::Status s = enter_check();
    if (!s.ok()) return s;
    if constexpr (std::is_void_v<output_t<F>>) {
      run(std::move(f));
      return Unit{};
    } else {
      return run(std::move(f));
    }
  }

  // Spawns onto this runtime. On the runtime thread (inside block_on) it
  // makes no syscall; from elsewhere it goes through the Handle path.
  template <class F>
  [[nodiscard]] auto spawn(F&& f) {
    detail::ExecutorCore* core = detail::current_core();
    detail::Shared* shared = this->shared();
    if (core != nullptr && core->shared == shared) {
      return detail::spawn_on(*core, std::forward<F>(f));
    }
    return detail::spawn_remote(shared, std::forward<F>(f));
  }

  Handle handle() const;

  // The io_uring driver, or null when I/O is not enabled.
  reactor::IoUringDriver* io_driver() const noexcept;
  // The timer queue, or null when time is not enabled.
  timer::TimerQueue* timer_queue() const noexcept;

 private:
  struct Inner;
  explicit Runtime(std::unique_ptr<Inner> inner) : inner_(std::move(inner)) {}

  absl::Status enter_check();
  detail::Shared* shared() const noexcept;
  // Sets up this thread's current driver and timer queue for the call.
  class Enter;

  template <Future F>
  output_t<F> run(F f);

  std::unique_ptr<Inner> inner_;
};

struct Runtime::Inner {
  std::unique_ptr<reactor::IoUringDriver> io;
  std::unique_ptr<Driver> other_driver;  // TimeDriver or ThreadParker
  timer::TimerQueue* timers = nullptr;   // set when time is enabled
  std::unique_ptr<LocalExecutor> executor;
  std::thread::id thread;                // bound on first entry
  bool ring_enabled = false;
  ~Inner();
};

class Runtime::Enter {
 public:
  explicit Enter(Inner& in) : driver_(in.io.get()), timers_(in.timers) {}

 private:
  reactor::CurrentDriverGuard driver_;
  timer::CurrentTimerQueueGuard timers_;
};

template <Future F>
output_t<F> Runtime::run(F f) {
  Enter enter(*inner_);
  return inner_->executor->block_on(std::move(f));
}

// Spawns onto the runtime (or LocalExecutor) running on this thread. Aborts
// with a message outside one; use Runtime::spawn or Handle::spawn there.
template <class F>
[[nodiscard]] auto spawn(F&& f) {
  return spawn_local(std::forward<F>(f));
}

}  // namespace pollux

#endif  // POLLUX_RUNTIME_RUNTIME_H_
