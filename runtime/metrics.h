// RuntimeMetrics: a snapshot of a runtime's counters (DESIGN §9), from
// Runtime::metrics(), and its Prometheus text exposition.
//
//   RuntimeMetrics m = rt.metrics();          // any thread, while it runs
//   std::printf("%llu polls\n", (unsigned long long)m.total().polls);
//   std::string body = m.to_prometheus();     // for GET /metrics
//
// How the numbers are kept: every per-worker counter is written only by its
// worker's thread, as a relaxed load plus store (no locked instruction on
// the poll, schedule, spawn or op-submit paths; detail::OwnerCounter), and
// read with relaxed loads: metrics() never stops or locks the run loop (the
// queue depths of other threads' queues and the blocking pool take their
// queue's lock briefly). The snapshot is not atomic across counters: two
// counters read a few instructions apart may disagree by what ran between
// the reads; each is exact once the runtime is quiet.
//
// What each field counts is on the field. In brief, per worker (a
// current_thread runtime has one; thread_per_core: per core):
//   polls                  task polls (block_on's root future on
//                          current_thread is not a task and not counted)
//   spawns                 tasks bound by this worker's thread (current_thread
//                          and thread_per_core: also those spawned from
//                          other threads, counted when the worker adopts them)
//   steals / steal_operations  multi_thread: tasks taken from other
//                          workers' queues, and the steals that took any
//   parks                  times the worker blocked in its driver (the
//                          backend under the timer wheel) with nothing to run
//   lifo_slot_hits         multi_thread: polls of the task in the LIFO slot
//   budget_forced_yields   task polls in which the coop budget (128) was
//                          spent and a leaf future yielded because of it
//   local_queue_depth      tasks queued to run on it (multi_thread: its
//                          stealable queue now, plus its pinned queue as its
//                          last tick left it; others: as the last tick left it)
//   inject_queue_depth     tasks other threads queued for it and it has not
//                          taken yet (multi_thread: wakes of tasks pinned to
//                          it; others: its inject queue)
//   ops_*, kernel_entries, eagain_retries, leaked_ops
//                          its I/O backend's counters (reactor::BackendStats:
//                          ops the futures start; submitted == completed +
//                          cancelled + held by futures)
// and for the runtime: workers, alive_tasks (spawned, not yet complete),
// spawns_total, the shared inject queue, the blocking pool.
//
// Thread-safety: a value type.
#ifndef POLLUX_RUNTIME_METRICS_H_
#define POLLUX_RUNTIME_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pollux {

// One worker's (core's) counters in a RuntimeMetrics snapshot (see the
// header comment for what each counts).
struct WorkerMetrics {
  uint64_t polls = 0;
  uint64_t spawns = 0;
  uint64_t steals = 0;            // tasks stolen by this worker
  uint64_t steal_operations = 0;  // steals that took at least one task
  uint64_t parks = 0;
  uint64_t lifo_slot_hits = 0;
  uint64_t budget_forced_yields = 0;
  uint64_t local_queue_depth = 0;   // gauge
  uint64_t inject_queue_depth = 0;  // gauge
  // Its I/O backend's (0 without I/O).
  uint64_t ops_submitted = 0;
  uint64_t ops_completed = 0;
  uint64_t ops_cancelled = 0;
  uint64_t kernel_entries = 0;  // io_uring_enter / epoll_wait calls
  uint64_t eagain_retries = 0;
  uint64_t leaked_ops = 0;
};

// A snapshot of a runtime's counters, from Runtime::metrics().
struct RuntimeMetrics {
  std::string flavour;  // "current_thread", "multi_thread" or "thread_per_core"
  std::string backend;  // "io_uring", "epoll" or "none"
  size_t workers = 0;
  uint64_t alive_tasks = 0;   // spawned and not complete (gauge)
  uint64_t spawns_total = 0;  // every spawn the runtime bound (spawn_blocking not included)
  // multi_thread: the shared inject queue; the others: the sum of the
  // workers' inject queues (gauge).
  uint64_t inject_queue_depth = 0;
  uint64_t blocking_threads = 0;       // spawn_blocking's pool: threads alive
  uint64_t blocking_idle_threads = 0;  // ... of which waiting for work
  uint64_t blocking_queue_depth = 0;   // ... jobs waiting for a thread
  std::vector<WorkerMetrics> per_worker;

  // Every worker's counters summed (gauges too).
  WorkerMetrics total() const;
  // The snapshot in the Prometheus text exposition format (version 0.0.4):
  // `# HELP` and `# TYPE` lines, counters named `..._total`, gauges for
  // depths and thread counts, per-worker series labelled `worker="i"`
  // (the op counters also `backend="..."`), e.g.
  //   pollux_worker_polls_total{worker="0"} 123
  std::string to_prometheus() const;
};

}  // namespace pollux

#endif  // POLLUX_RUNTIME_METRICS_H_
