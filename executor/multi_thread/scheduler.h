// MultiThreadScheduler: the work-stealing scheduler behind
// Runtime::Builder().multi_thread(n) (DESIGN §4), the Schedule the task
// harness acts through for every task of that runtime.
//
// Shutdown protocol, in order (the runtime calls shutdown() then join()):
//  1. shutdown(), on any thread: closes OwnedTasks (a later spawn yields a
//     Cancelled handle), the inject queue and every worker's remote queue;
//     disposes of what they held; then sets the flag; unparks every worker.
//  2. Each worker, at its loop top, stops stealing and being stolen from
//     and drains its LIFO slot, stealable queue, pinned FIFO and remote
//     queue. A rendezvous: no worker polls any more (a steal runs wholly
//     inside the stealer's loop, so none is in flight). Then each worker
//     takes, from every shard, the tasks it must shut down (a pinned task:
//     its home; any other: its shard's worker) and drops their futures on
//     its own thread.
//  3. A second rendezvous: every shard is empty (CHECK).
//  4. Each worker runs its on_stop hook (the runtime drains its ring within
//     the deadline there), then exits.
//  5. join() returns when every worker has exited; the runtime then closes
//     the rings and eventfds.
//
// Per worker (DESIGN §4, tokio's measured choices):
// - a stealable LocalQueue of 256 (overflow: half to the inject queue);
// - a LIFO slot for the task woken by the running task, not stealable,
//   at most kMaxLifoPolls in a row, continuing the waker's budget;
// - a pinned FIFO of tasks that hold worker-owned state (TaskPin,
//   executor/context.h), served alternately with the stealable queue, and a
//   remote queue where other threads put wakes of tasks pinned here;
// - the inject queue every global_queue_interval polls (adaptive, 2..127,
//   from the mean poll time), and whenever its own queues are empty;
// - when idle, stealing half of a random victim's stealable queue (at most
//   half the workers search at once, idle.h), then parking in its own Park
//   (its backend under its timer wheel), never in anyone else's.
// Wakes (schedule(kWake)): on a worker, a pinned task homed elsewhere goes
// to its home's remote queue; otherwise to the LIFO slot when the waker is
// a running task, else to the local queue. From any other thread: a pinned
// task to its home's remote queue, any other to the inject queue, and a
// sleeper is woken (idle.h). A spawn goes to the spawning worker's
// stealable queue (never the LIFO slot), or from elsewhere to the inject
// queue.
//
// Thread-safety: schedule(), release(), unpark() and shutdown() from any
// thread; join() from a thread that is not a worker.
#ifndef POLLUX_EXECUTOR_MULTI_THREAD_SCHEDULER_H_
#define POLLUX_EXECUTOR_MULTI_THREAD_SCHEDULER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "executor/context.h"
#include "executor/driver.h"
#include "executor/internal/schedule.h"
#include "executor/internal/task.h"
#include "executor/internal/task_list.h"
#include "executor/internal/worker_counters.h"
#include "executor/multi_thread/idle.h"
#include "executor/multi_thread/inject.h"
#include "executor/multi_thread/local_queue.h"
#include "executor/multi_thread/owned_shards.h"
#include "future/context.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/internal/thread.h"

namespace pollux::detail {

// What one worker runs on, supplied by the runtime.
struct WorkerConfig {
  // Where the worker parks: its timer driver over its backend. Owned by the
  // runtime; used only on the worker's thread; outlives join().
  Park* park = nullptr;
  // The backend and timers the worker's context names.
  RuntimeContext base;
  // Run on the worker's thread before its first task (bind the timer
  // wheel, enable the ring); an error stops the runtime with it.
  std::function<absl::Status()> on_start;
  // Run on the worker's thread after every task is gone (drain the ring).
  std::function<void()> on_stop;
  // Pin the worker's thread to this CPU.
  std::optional<int> cpu;
  // Where the worker's metrics go (must outlive the scheduler's threads);
  // null: the worker keeps its own.
  WorkerCounters* counters = nullptr;
};

class MultiThreadScheduler final : public Schedule {
 public:
  static constexpr size_t kTickPolls = 61;
  static constexpr int kMaxLifoPolls = 3;
  static constexpr uint32_t kInitialGlobalQueueInterval = 61;

  // Starts one thread per config. The caller holds the one reference this
  // returns with; shutdown() and join() before giving it back.
  static MultiThreadScheduler* start(std::vector<WorkerConfig> workers);

  // --- Schedule ---
  void schedule(Header* task, ScheduleKind kind) noexcept override;
  bool release(Header* task) noexcept override { return owned_.remove(task); }
  // Unparks every worker.
  void unpark() noexcept override;
  void drop_task_ref() noexcept override;

  // Step 1 of the shutdown protocol; idempotent.
  void shutdown() noexcept;
  // Waits until every worker has exited (steps 2-5).
  void join();
  bool is_shutdown() const noexcept {
    // acquire: pairs with shutdown()'s release store, after the queues closed.
    return shutdown_.load(std::memory_order_acquire);
  }
  // OK, or the first error that stopped a worker (on_start, or a Park that
  // failed for good); the runtime shuts down when one is recorded.
  absl::Status status() const;
  uint32_t worker_count() const noexcept { return count_; }
  // Tasks bound and not yet complete (a snapshot, for tests and metrics).
  size_t live_tasks() const noexcept { return owned_.size(); }
  // Calls fn(task) for every bound task, shard by shard under the shard's
  // lock (the task dump, from any thread): fn must only read the task's
  // state word, pins, home (std::atomic_ref, relaxed) and its trailer's id
  // and spawn fields (written before the bind), and must not block.
  template <class Fn>
  void for_each_task(Fn&& fn) const {
    owned_.for_each(fn);
  }

  // --- Metrics (any thread; snapshots) ---
  // Worker `i`'s counters.
  const WorkerCounters& counters(uint32_t i) const noexcept;
  // Spawns bound from threads that are not workers (a worker's own are in
  // its counters).
  uint64_t external_spawns() const noexcept {
    // relaxed: a counter only.
    return external_bound_.load(std::memory_order_relaxed);
  }
  size_t inject_len() const noexcept { return inject_.len(); }
  // Worker `i`'s run queues: its stealable queue now plus the pinned FIFO
  // as its last tick left it; and its remote queue (takes its lock).
  size_t local_queue_len(uint32_t i) const noexcept;
  size_t remote_queue_len(uint32_t i) const noexcept;

 private:
  struct Core;
  struct Worker;

  explicit MultiThreadScheduler(std::vector<WorkerConfig> configs);
  ~MultiThreadScheduler() override;

  // The worker whose thread calls this, or null on any other thread.
  Worker* current_worker() noexcept;

  void spawn(Header* task, Worker* here) noexcept;
  void wake(Header* task, Worker* here) noexcept;
  // On `w`'s thread: a pinned task (homed on w) to its pinned FIFO, any
  // other to its stealable queue (waking a sleeper when `notify`).
  void push_local(Worker& w, Header* task, bool notify) noexcept;
  void push_stealable(Worker& w, Header* task, bool notify) noexcept;
  // Any thread: a task pinned to `home` into its remote queue, and unpark it.
  void push_remote(Worker& home, Header* task) noexcept;
  void notify_parked() noexcept;
  void notify_if_work_pending() noexcept;
  void record_failure(absl::Status s) noexcept;

  // The worker loop and its parts (worker's thread).
  void run_worker(uint32_t index);
  void run_worker_loop(uint32_t index);
  size_t run_tick(Worker& w);
  Header* next_task(Worker& w) noexcept;
  Header* next_local_task(Worker& w) noexcept;
  Header* pop_inject_batch(Worker& w) noexcept;
  Header* steal_work(Worker& w) noexcept;
  void end_search(Worker& w) noexcept;
  // Polls `task`, then the LIFO chain it starts; returns polls made.
  size_t run_with_lifo(Worker& w, Header* task);
  void poll_task(Worker& w, Header* task, bool continue_budget);
  bool has_tasks(Worker& w) const noexcept;
  void park(Worker& w);
  void shutdown_worker(Worker& w);

  // Waits until all `count_` workers have arrived (the shutdown barriers).
  void rendezvous() noexcept;

  const uint32_t count_;
  std::unique_ptr<Worker[]> workers_;
  InjectQueue inject_;
  Idle idle_;
  ShardedOwnedTasks owned_;
  Atomic<bool> shutdown_{false};
  // Spawns from threads that are not workers: their shard and id counter.
  Atomic<uint64_t> external_spawns_{0};
  // ... and those that were bound (metrics: the ones refused at shutdown
  // are not spawns).
  Atomic<uint64_t> external_bound_{0};

  mutable Mutex mu_;
  // shutdown() has begun (it sets shutdown_ only once the queues it closed
  // are disposed of: see shutdown()).
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  CondVar rendezvous_cv_;
  uint32_t rendezvous_arrived_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rendezvous_generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  std::vector<Thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_MULTI_THREAD_SCHEDULER_H_
