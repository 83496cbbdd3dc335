// Runtime: the composition root. An executor, and what it parks in: an I/O
// backend (an io_uring ring, or an epoll set where io_uring is refused),
// under timer::TimeDriver when time is enabled (a TimeDriver over a plain
// parker without I/O, a plain parker with neither), put together by a
// Builder and entered with block_on.
//
//   absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
//   if (!rt.ok()) { ... }          // e.g. no I/O backend at all: the reason says so
//   std::printf("on %s (%s)\n", rt->backend().name(), rt->backend().reason.c_str());
//   int v = rt->block_on(main_task());
//
// Choosing the I/O backend (DESIGN §5): Builder::backend(BackendKind).
//   kAuto (the default)  io_uring if it passes reactor::probe_io_uring()
//                        (once per process: the features and opcodes pollux
//                        uses, a NOP through the kernel, a multishot accept),
//                        else epoll. The environment variable
//                        POLLUX_BACKEND=io_uring|epoll overrides kAuto (and
//                        only kAuto), so one binary can be pinned from outside.
//   kIoUring             io_uring or a clear error from build(), naming the
//                        errno and the way out (POLLUX_BACKEND=epoll).
//   kEpoll               epoll (reactor/epoll/); its file operations run on
//                        the runtime's blocking pool (the one spawn_blocking
//                        uses, shared by every worker).
// Every worker (core) of a runtime runs the same kind of backend, each its
// own ring or epoll set. Runtime::backend() says which one runs and why.
// The two differ in what a dropped operation may already have done
// (reactor/ops.h, "Cancellation").
//
// Flavours (DESIGN §4):
//   current_thread()     one thread runs every task. It binds to the first
//                        thread that calls block_on (or spawns on it);
//                        block_on from any other thread is FailedPrecondition
//                        from try_block_on and a check failure with the same
//                        message from block_on. The paused test clock
//                        (timer::pause) exists on this flavour only.
//   multi_thread(n)      n workers with work stealing; each owns a backend
//                        (ring) and a timer wheel and parks in it. A task that
//                        holds worker-owned state (an op in flight, an armed
//                        timer) is pinned to its worker until it lets go
//                        (TaskPin, executor/context.h); any other may be stolen.
//   thread_per_core(n)   n threads, each a single-thread executor with its own
//                        backend and wheel, no stealing: a task stays on the
//                        core it was spawned onto. Handle::spawn goes round
//                        robin.
// spawn_on(i, f) runs a task on worker (core) i for its whole life, on
// every flavour.
// On the two multi-thread flavours block_on may be called from any thread that
// is not one of the runtime's: it spawns the future and parks the caller
// until it finishes (the caller has no ring). worker_cpu_affinity() pins
// worker (core) i to the i-th CPU the process may run on.
//
// Inside block_on the runtime's RuntimeContext (executor/context.h) is this
// thread's: pollux::spawn, timer::sleep and the reactor's operations find
// the scheduler, timer queue and backend there.
// Outside, they fail with a clear message (sleep, spawn) or status (I/O).
//
// spawn_blocking(fn) (in a task, or Runtime/Handle::spawn_blocking from any
// thread) runs blocking work on the runtime's pool of at most
// max_blocking_threads() threads (executor/blocking/spawn_blocking.h).
//
// Shutdown (~Runtime, or shutdown_timeout(d) earlier): no spawn is taken
// afterwards (spawning yields a JoinHandle that resolves Cancelled); every
// unfinished task's future is dropped on the
// thread that polls it (current_thread: the runtime thread; multi_thread:
// its home worker, in the order of executor/multi_thread/scheduler.h;
// thread_per_core: its core), and their JoinHandles yield Cancelled; then each backend
// cancels every in-flight operation and waits (at most 10 s) for the kernel
// (epoll: its file jobs on the blocking pool) to hand back its memory,
// keeping what it does not; then the blocking pool cancels the calls still
// queued and joins its threads (waiting for running ones without a bound);
// then the rings (epoll sets) close.
// shutdown_timeout(d) does the same with `d` bounding, from its start, both
// the drain (what the kernel still holds then is leaked on purpose) and the
// wait for running blocking calls (their threads are detached and finish on
// their own; their task cells go when they do), and returns a ShutdownReport
// of what it could not finish. The Runtime is finished then: block_on is an
// error (FailedPrecondition from try_block_on), worker_count() is 0 and
// io_backend()/timer_queue() are null. The destructor is
// shutdown_timeout(infinite) with the drain capped at 10 s (DESIGN §9).
// The backend's eventfd is closed when the last thing that can wake the
// executor (a JoinHandle, a cloned Waker, a Handle) is gone, so a late wake
// never writes to a reused fd. Destroy a current_thread runtime on its
// thread, and the others on any thread that is not one of theirs.
//
// Metrics (DESIGN §9): metrics() from any thread, while the runtime runs,
// gives the per-worker counters (polls, steals, parks, ops, kernel entries,
// ...) and the queue depths; RuntimeMetrics::to_prometheus() renders them.
//
// Thread-safety: a current_thread Runtime is used from its thread (but
// metrics() may be called from any); the other flavours' block_on and spawn
// from any thread not theirs; handle() gives a Handle that spawns onto the
// runtime from any thread.
#ifndef POLLUX_RUNTIME_RUNTIME_H_
#define POLLUX_RUNTIME_RUNTIME_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executor/blocking/blocking_pool.h"
#include "executor/blocking/spawn_blocking.h"
#include "executor/context.h"
#include "executor/internal/schedule.h"
#include "executor/join_handle.h"
#include "executor/join_result.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/spawn_location.h"
#include "future/future.h"
#include "reactor/backend.h"
#include "reactor/uring/io_uring_options.h"
#include "runtime/metrics.h"
#include "timer/timer_queue.h"

namespace pollux {

namespace reactor {
class EpollSyscalls;
}  // namespace reactor

class Runtime;

namespace detail {
struct RuntimeInner;

// What Runtime::spawn and Handle::spawn hand tasks to: the runtime's one
// scheduler (current_thread; multi_thread, whose spawn_on pins the task to
// a worker), or the cores of a thread_per_core runtime in turn. Holds a
// reference to each scheduler, so it may outlive the runtime (spawns are
// then cancelled at once).
class SpawnTarget {
 public:
  enum class Kind { kOne, kWorkers, kCores };
  SpawnTarget(Kind kind, std::vector<Schedule*> schedulers, size_t workers, Schedule* blocking);
  ~SpawnTarget();
  SpawnTarget(const SpawnTarget&) = delete;
  SpawnTarget& operator=(const SpawnTarget&) = delete;

  Schedule* next() const noexcept {
    if (schedulers_.size() == 1) return schedulers_[0];
    // relaxed: only a round-robin counter.
    return schedulers_[next_.fetch_add(1, std::memory_order_relaxed) % schedulers_.size()];
  }
  Schedule* blocking() const noexcept { return blocking_; }
  // Worker or core `i` (checked: i < workers).
  template <class F>
  auto spawn_on(size_t i, F&& f, SpawnLocation loc) const {
    check_worker(i);
    if (kind_ == Kind::kCores) {
      return spawn_onto(schedulers_[i], std::forward<F>(f), Placement::anywhere(), loc);
    }
    return spawn_onto(schedulers_[0], std::forward<F>(f),
                      Placement::on_worker(static_cast<uint32_t>(i)), loc);
  }

 private:
  void check_worker(size_t i) const;

  Kind kind_;
  std::vector<Schedule*> schedulers_;
  size_t workers_;
  Schedule* blocking_;  // one reference held
  mutable std::atomic<size_t> next_{0};
};
}  // namespace detail

// Which I/O backend a runtime runs on (see the header comment).
enum class BackendKind { kAuto, kIoUring, kEpoll };

// Runtime::backend(): the backend that runs and why it was chosen.
struct BackendChoice {
  BackendKind kind = BackendKind::kAuto;  // kIoUring or kEpoll; kAuto: no I/O enabled
  // How it was chosen, e.g. "POLLUX_BACKEND=epoll", "Builder::backend(kEpoll)",
  // "kAuto: io_uring passed the probe", or "kAuto: io_uring is not usable here
  // (io_uring_setup: Operation not permitted (errno 1)); using epoll".
  std::string reason;
  // "io_uring", "epoll", or "none".
  const char* name() const noexcept {
    return kind == BackendKind::kIoUring ? "io_uring" : kind == BackendKind::kEpoll ? "epoll" : "none";
  }
};

// What Runtime::shutdown_timeout could not finish within its bound. Every
// count is 0 when it finished everything.
struct ShutdownReport {
  // spawn_blocking calls (and epoll file jobs) still running on the
  // blocking pool when `d` ran out. Their threads are detached: each
  // finishes its call, then exits; the call's task cell (and what its
  // closure owns) is freed then, and its JoinHandle, if still held, becomes
  // ready. Calls still queued are never counted: they were cancelled unrun.
  size_t blocking_still_running = 0;
  // Operations the kernel still held when the drain gave up (io_uring ops
  // not completed after their cancel; epoll file jobs still running): their
  // memory is kept for the rest of the process, never freed under the
  // kernel (Backend stats().leaked_ops, summed over the workers).
  uint64_t leaked_ops = 0;
  // How long shutdown_timeout took.
  absl::Duration elapsed;

  bool complete() const noexcept { return blocking_still_running == 0 && leaked_ops == 0; }
  // One line for logs, e.g. "shutdown in 201ms: 1 blocking call(s) still
  // running (left on detached threads), 0 op(s) leaked in the kernel".
  std::string to_string() const;
};

// One live task in Runtime::dump_tasks().
struct TaskInfo {
  // idle: waiting for a wake. scheduled: woken, in a run queue. running:
  // being polled now, or queued for its first poll (or after waking itself;
  // a RUNNING task in a queue is owned by that queue entry, DESIGN §4).
  // complete: finished, caught between its completion and leaving its
  // list (a completed task leaves the list, so a result waiting for its
  // JoinHandle is not listed).
  enum class State { kIdle, kScheduled, kRunning, kComplete };

  // Unique in the process run: the spawning worker (core) in bits 48 and
  // up (multi_thread: worker_count() for a spawn from elsewhere), a counter below.
  uint64_t id = 0;
  State state = State::kIdle;
  // Aborted (or its runtime shutting down); its future not dropped yet.
  bool cancelled = false;
  // It holds worker-owned state (an op slot, an armed timer; TaskPin), so on
  // multi_thread it stays on `worker`.
  bool pinned = false;
  // The core it lives on (current_thread: 0), or on multi_thread the worker
  // that polled it last (for a task that is not pinned, a hint: it may be
  // stolen).
  size_t worker = 0;
  // Since it was spawned, in whole ms (on the adopting worker's tick clock,
  // no clock read per spawn); nullopt without enable_time() and for a multi_thread task
  // spawned from outside the runtime.
  std::optional<absl::Duration> age;
  // Where it was spawned: spawn's default argument (pollux::spawn,
  // Runtime/Handle::spawn, spawn_on, spawn_local, JoinSet::spawn); inside
  // block_on on the multi-thread flavours, the block_on root is runtime.h's.
  SpawnLocation spawned_at;

  static const char* state_name(State s) noexcept;
  // e.g. "task 3 idle worker 0 age 1.2s spawned at net/foo.cc:42 (void f())".
  std::string to_string() const;
};

// What Runtime::dump_tasks() found.
struct TaskDump {
  std::vector<TaskInfo> tasks;
  // False when a worker (core) did not answer within the wait (a
  // current_thread runtime nobody drives, a core stuck in a long poll):
  // its tasks are missing.
  bool complete = true;
  // One line per task after a count, in id order.
  std::string to_string() const;
};

// Spawns onto a runtime from any thread. Cheap to copy; outliving the
// runtime is safe (spawning then yields a cancelled JoinHandle).
class Handle {
 public:
  // Spawns `f` (a Future or a callable returning one) onto the runtime; the
  // runtime adopts it at its next tick (on one of its own threads it is
  // queued at once, with no syscall). thread_per_core: the cores in turn.
  // `loc` (defaulted: the caller's line) is the spawn site the task dump
  // shows (Runtime::dump_tasks); likewise below.
  template <class F>
  [[nodiscard]] auto spawn(F&& f,
                           SpawnLocation loc = SpawnLocation::current()) const {
    return detail::spawn_onto(target_->next(), std::forward<F>(f), detail::Placement::anywhere(),
                              loc);
  }
  // Spawns onto worker (core) `core` (checked: core < worker_count()),
  // where it runs for its whole life: thread_per_core's core, or a
  // multi_thread worker that never lets it be stolen. current_thread has
  // one, 0.
  template <class F>
  [[nodiscard]] auto spawn_on(size_t core, F&& f,
                              SpawnLocation loc = SpawnLocation::current()) const {
    return target_->spawn_on(core, std::forward<F>(f), loc);
  }
  // Runs `fn()` on the runtime's blocking pool (executor/blocking/spawn_blocking.h).
  template <class Fn>
  [[nodiscard]] auto spawn_blocking(Fn&& fn) const {
    return detail::spawn_blocking_onto(target_->blocking(), std::forward<Fn>(fn));
  }

 private:
  friend class Runtime;
  explicit Handle(std::shared_ptr<const detail::SpawnTarget> t) : target_(std::move(t)) {}
  std::shared_ptr<const detail::SpawnTarget> target_;
};

// The index of the worker (multi_thread) or core (thread_per_core) this
// thread is, 0 on a current_thread runtime's thread, nullopt on a thread
// that runs no runtime.
std::optional<size_t> this_core() noexcept;

// An executor with its I/O backend and timers, built by a Builder and entered
// with block_on (see above).
class Runtime {
 public:
  // Chooses a Runtime's flavour, backend and drivers; build() makes it or says
  // why not.
  class Builder {
   public:
    // One thread runs every task (see the class comment).
    Builder& current_thread() {
      flavour_ = Flavour::kCurrentThread;
      return *this;
    }
    // `workers` threads with work stealing (0: one per CPU the process may
    // run on).
    Builder& multi_thread(size_t workers = 0) {
      flavour_ = Flavour::kMultiThread;
      threads_ = workers;
      return *this;
    }
    // `cores` single-thread executors, no stealing (0: one per CPU).
    Builder& thread_per_core(size_t cores = 0) {
      flavour_ = Flavour::kThreadPerCore;
      threads_ = cores;
      return *this;
    }
    // Pins worker (core) i to the i-th CPU of the process's affinity mask
    // (the two multi-thread flavours; build() fails when there are fewer
    // CPUs than threads).
    Builder& worker_cpu_affinity(bool pin = true) {
      pin_workers_ = pin;
      return *this;
    }
    // The blocking pool (spawn_blocking): at most `n` threads (default 512).
    Builder& max_blocking_threads(size_t n) {
      blocking_.max_threads = n;
      return *this;
    }
    // How long an idle blocking thread waits for work before it exits
    // (default 10 s).
    Builder& blocking_keep_alive(absl::Duration d) {
      blocking_.keep_alive = d;
      return *this;
    }
    // I/O operations (reactor/, net/, fs/), on the backend backend() picks.
    Builder& enable_io() {
      io_ = true;
      return *this;
    }
    // Which I/O backend (see the header comment); kAuto by default.
    Builder& backend(BackendKind kind) {
      backend_ = kind;
      return *this;
    }
    // Timers (sleep, timeout, interval).
    Builder& enable_time() {
      time_ = true;
      return *this;
    }
    Builder& enable_all() { return enable_io().enable_time(); }
    // Ring sizes, fault-injection seam (tests). Used when io_uring runs; its
    // drain_timeout bounds the epoll backend's shutdown too.
    Builder& io_uring_options(reactor::IoUringOptions o) {
      uring_ = o;
      return *this;
    }
    // The epoll backend's fault-injection seam (tests; reactor/epoll/
    // internal/epoll_syscalls.h): every epoll set of the runtime makes its
    // calls through `s`, which must outlive the runtime. Null: the real ones.
    Builder& epoll_syscalls(reactor::EpollSyscalls* s) {
      epoll_sys_ = s;
      return *this;
    }
    // Creates the runtime. Fails with the kernel's reason when the chosen
    // backend cannot be set up (kIoUring: with the way out), and with
    // InvalidArgument for a POLLUX_BACKEND that is neither io_uring nor epoll.
    absl::StatusOr<Runtime> build();

   private:
    enum class Flavour { kCurrentThread, kMultiThread, kThreadPerCore };
    friend struct detail::RuntimeInner;
    Flavour flavour_ = Flavour::kCurrentThread;
    size_t threads_ = 0;
    bool pin_workers_ = false;
    blocking::BlockingPoolOptions blocking_;
    bool io_ = false;
    bool time_ = false;
    BackendKind backend_ = BackendKind::kAuto;
    reactor::IoUringOptions uring_;
    reactor::EpollSyscalls* epoll_sys_ = nullptr;
  };

  // A moved-from Runtime may only be destroyed or assigned to: any other use
  // aborts with a message (in every build mode).
  Runtime(Runtime&&) noexcept;
  Runtime& operator=(Runtime&&) noexcept;
  ~Runtime();

  // Runs `f` to completion and returns its output. current_thread: on this
  // thread, with spawned tasks, I/O and timers; aborts with a message when
  // called from another thread than the runtime's. multi_thread and
  // thread_per_core: as a task on the runtime, the caller parked until it
  // finishes. From inside a task of any runtime: an abort with a message (it
  // would block a worker; co_await the future instead). A panic in `f` is
  // rethrown here.
  template <Future F>
  output_t<F> block_on(F f) {
    absl::Status s = enter_check();
    POLLUX_CHECK(s.ok(), s.message().data());
    if (is_current_thread()) return executor().block_on_in(context(), std::move(f));
    JoinResult<stored_output_t<F>> r = wait_here(spawn(std::move(f)));
    if (!r.ok()) {
      r.rethrow();
      detail::check_failed("Runtime::block_on", finished_early_status().ToString().c_str(),
                           __FILE__, __LINE__);
    }
    if constexpr (!std::is_void_v<output_t<F>>) return std::move(r).value();
  }
  // Like block_on, but returns a status instead of aborting: a wrong thread
  // or re-entry is FailedPrecondition, a ring that cannot be enabled on this
  // thread is the kernel's reason, and a backend whose kernel entry keeps
  // failing ends the run with that error (DESIGN §5) instead of spinning.
  // For a future whose output is a Status or StatusOr, that error is folded
  // into it (try_output_t, executor/local_executor.h):
  //   absl::Status s = rt.try_block_on(reactor::nop());   // nop's, or the runtime's
  // A panic in `f` is rethrown.
  template <Future F>
  try_output_t<output_t<F>> try_block_on(F f) {
    absl::Status s = enter_check();
    if (!s.ok()) return s;
    if (is_current_thread()) return executor().try_block_on_in(context(), std::move(f));
    JoinResult<stored_output_t<F>> r = wait_here(spawn(std::move(f)));
    if (!r.ok()) {
      r.rethrow();
      return finished_early_status();
    }
    if constexpr (std::is_void_v<output_t<F>>) {
      return Unit{};
    } else {
      return std::move(r).value();
    }
  }

  // Spawns onto this runtime from any thread (thread_per_core: the cores in
  // turn). On one of the runtime's threads it makes no syscall; from
  // elsewhere the task goes through the remote queue.
  template <class F>
  [[nodiscard]] auto spawn(F&& f, SpawnLocation loc = SpawnLocation::current()) {
    return detail::spawn_onto(spawn_target().next(), std::forward<F>(f),
                              detail::Placement::anywhere(), loc);
  }
  // Spawns onto worker (core) `core` for the task's whole life (see
  // Handle::spawn_on).
  template <class F>
  [[nodiscard]] auto spawn_on(size_t core, F&& f,
                              SpawnLocation loc = SpawnLocation::current()) {
    return spawn_target().spawn_on(core, std::forward<F>(f), loc);
  }
  // Runs `fn()` on the blocking pool (executor/blocking/spawn_blocking.h),
  // from any thread.
  template <class Fn>
  [[nodiscard]] auto spawn_blocking(Fn&& fn) {
    return detail::spawn_blocking_onto(spawn_target().blocking(), std::forward<Fn>(fn));
  }
  // Worker (core) threads: 1 on current_thread (0 once shut down).
  size_t worker_count() const noexcept;

  // Shuts the runtime down now (see the header comment), `d` bounding the
  // drain and the wait for the blocking pool, and reports what it could not
  // finish. From where the destructor may run: a current_thread runtime's
  // thread (checked), any thread that is none of the runtime's for the
  // others (checked); never from inside a task (checked). A second call
  // returns an empty report.
  ShutdownReport shutdown_timeout(absl::Duration d);
  // shutdown_timeout has run (or the Runtime was moved from). For the
  // thread that shuts it down.
  bool is_shut_down() const noexcept;

  // Every live task (TaskInfo), read on the runtime's own threads between
  // two task polls, from any thread while the runtime runs (or inside one
  // of its tasks):
  //   current_thread   on its thread (inside a task, or between block_ons):
  //                    read directly; from another thread: a request
  //                    served by the runtime thread at its next tick, which
  //                    this call waits for (at most `wait`: a runtime that
  //                    nobody drives does not answer, and the dump says so).
  //   thread_per_core  a request to each core, waited for likewise; inside
  //                    a task, its own core is read directly (the call then
  //                    holds its core up for the others' answers).
  //   multi_thread     read from the calling thread, each OwnedTasks shard
  //                    under its lock.
  // Empty once the runtime is shut down.
  TaskDump dump_tasks(absl::Duration wait = absl::Seconds(5)) const;

  Handle handle() const;

  // The I/O backend, or null when I/O is not enabled (multi-thread
  // flavours: worker `worker`'s).
  reactor::Backend* io_backend(size_t worker = 0) const noexcept;
  // Which I/O backend runs and why (kind kAuto, name "none": no I/O).
  const BackendChoice& backend() const noexcept;
  // The timer queue, or null when time is not enabled (likewise).
  timer::TimerQueue* timer_queue(size_t worker = 0) const noexcept;

  // A snapshot of the runtime's counters (runtime/metrics.h), from any
  // thread, while it runs: relaxed loads, no stop and no lock on the run
  // loop's paths.
  RuntimeMetrics metrics() const;

 private:
  explicit Runtime(std::unique_ptr<detail::RuntimeInner> inner);
  // *inner_, or an abort with a message on a moved-from Runtime.
  detail::RuntimeInner& inner() const noexcept;

  // Binds the runtime to the calling thread on first use (atomically: of two
  // threads racing their first block_on, one wins), refuses re-entry from a
  // task, and enables the ring on its thread.
  absl::Status enter_check();
  LocalExecutor& executor() const noexcept;
  // The backend and timers block_on makes current.
  RuntimeContext context() const noexcept;
  bool is_current_thread() const noexcept;
  const detail::SpawnTarget& spawn_target() const noexcept;
  // Parks this thread (which runs no runtime) until `h` is ready.
  template <class T>
  static output_t<JoinHandle<T>> wait_here(JoinHandle<T> h) {
    LocalExecutor waiter;
    return waiter.block_on(std::move(h));
  }
  // Why a block_on future was cancelled: the error that stopped the
  // runtime, or Cancelled (it was shut down meanwhile).
  absl::Status finished_early_status() const;

  std::unique_ptr<detail::RuntimeInner> inner_;
};

}  // namespace pollux

#endif  // POLLUX_RUNTIME_RUNTIME_H_
