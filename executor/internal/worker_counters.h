// WorkerCounters: what one executor thread (a current_thread runtime's
// thread, a multi_thread worker, a thread_per_core core) counts for
// Runtime::metrics() (runtime/metrics.h, DESIGN §9).
//
// Every field is a detail::OwnerCounter: written only by the thread that
// runs the worker, with a relaxed load+store (no locked instruction on the
// poll, schedule or spawn paths), read from any thread while it runs. The
// runtime owns them (beside the worker's drivers), so they outlive the
// executor that writes them and a read never races its destruction.
// Counting is batched where that is free: polls and LIFO polls are added
// once per tick, not per poll.
//
// Thread-safety: writes on the owning worker's thread; loads anywhere.
#ifndef POLLUX_EXECUTOR_INTERNAL_WORKER_COUNTERS_H_
#define POLLUX_EXECUTOR_INTERNAL_WORKER_COUNTERS_H_

#include "future/internal/owner_counter.h"

namespace pollux::detail {

// One worker's counters (see above).
struct WorkerCounters {
  OwnerCounter polls;           // task polls (block_on's root future not included)
  OwnerCounter spawns;          // tasks bound to this worker's OwnedTasks by its thread
  OwnerCounter released;        // tasks removed from OwnedTasks on this thread (single-thread executors)
  OwnerCounter steal_ops;       // steals that took at least one task (multi_thread)
  OwnerCounter stolen_tasks;    // tasks those steals took
  OwnerCounter parks;           // times the worker parked (blocked in its driver)
  OwnerCounter lifo_hits;       // polls of a task taken from the LIFO slot (multi_thread)
  OwnerCounter forced_yields;   // task polls in which the coop budget refused a leaf future
  // A gauge the worker publishes as each tick ends: its run queue's length
  // (single-thread executors), or its pinned FIFO's (multi_thread, whose
  // stealable queue's length is readable at any time).
  OwnerCounter queue_depth;
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_WORKER_COUNTERS_H_
