// LocalScheduler: LocalExecutor's implementation of Schedule, and the
// reference-counted block its tasks and wakers keep.
//
// Two halves:
// - the shared part (this class), reachable from any thread and alive until
//   the last task cell, waker or Handle lets go: the inject queue (wakes from
//   other threads), the remote-spawn queue (Handle::spawn), the closed flag,
//   the owner's Unparker, the owner thread, the block_on root's woken flag;
// - LocalCore, the owner thread's half, owned by the LocalExecutor: the run
//   queue, the OwnedTasks list and the bank of task references. No atomics.
//
// Decisions (DESIGN §4):
// - A wake or a spawn on the owner thread goes straight to the run queue (no
//   lock, no syscall); from any other thread, to the inject (or remote-spawn)
//   queue under its mutex, then an unpark (a syscall only if the owner parked).
// - The shortcuts of a single-thread scheduler, sound because RUNNING means
//   "owned by the poller or by the one queue entry that will poll it": a new
//   task is queued already RUNNING (its first poll needs no compare-exchange),
//   and a task that woke itself is queued again still RUNNING (kSelfWake). A
//   RUNNING task in the run queue at shutdown is owned by the queue:
//   abandon_queued_task completes it.
// - Task references: every cell holds one reference to this block, taken by
//   schedule(kSpawn). On the owner thread they come from and go back to
//   LocalCore's bank, so spawn and free make no locked instruction;
//   elsewhere they are atomic.
//
// Thread-safety: schedule, unpark, wake_root and the reference counting from
// any thread; everything that takes a LocalCore, the owner thread only.
#ifndef POLLUX_EXECUTOR_INTERNAL_LOCAL_SCHEDULER_H_
#define POLLUX_EXECUTOR_INTERNAL_LOCAL_SCHEDULER_H_

#include <atomic>
#include <cstddef>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "executor/driver.h"
#include "executor/internal/owned_tasks.h"
#include "executor/internal/schedule.h"
#include "executor/internal/task_list.h"
#include "executor/internal/worker_counters.h"
#include "future/context.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/internal/race_cell.h"
#include "future/waker.h"

namespace pollux::detail {

// The owner thread's half of a LocalExecutor.
struct LocalCore {
  // References to the LocalScheduler already counted in it, handed to new
  // cells and given back by cells freed on the owner thread (see
  // LocalScheduler::take_task_ref). Only a count, never larger than the most
  // cells alive at once.
  static constexpr size_t kTaskRefBatch = 64;
  size_t banked_task_refs = 0;
  // The id of the next task bound here (Trailer::id): the core index in the
  // high bits (ShardedOwnedTasks::make_id's layout), a counter below.
  uint64_t next_task_id = 0;
  TaskList run_queue;
  LocalOwnedTasks owned;
  Budget budget;
  // Where this thread's metrics go (never null; the executor's own, or the
  // runtime's, which outlive it).
  WorkerCounters* counters = nullptr;
};

class LocalScheduler final : public Schedule {
 public:
  // `bind_now`: owned by the constructing thread; otherwise by the first
  // thread that calls bind_owner(). `core` is the owner's half (it must
  // stay valid until detach_core()).
  LocalScheduler(std::shared_ptr<Unparker> unparker, LocalCore* core, bool bind_now);

  // --- Schedule ---
  void schedule(Header* task, ScheduleKind kind) noexcept override;
  bool release(Header* task) noexcept override;
  void unpark() noexcept override { unparker_->unpark(); }
  void drop_task_ref() noexcept override;

  // A spawn on the owner thread by the executor itself (it has checked the
  // thread): schedule(task, kSpawn) without looking for the owner again.
  void spawn_on_owner(LocalCore& core, Header* task) noexcept {
    take_task_ref(&core);
    spawn_local(core, task);
  }

  // --- Owner thread ---
  // Binds an unbound scheduler to the calling thread. True when the calling
  // thread is (now) the owner.
  bool bind_owner() noexcept;
  // The owner thread's core when called there (the executor still alive),
  // else null.
  LocalCore* owner_core() const noexcept;
  // Moves every task woken from other threads to the run queue, adopting the
  // remotely spawned ones into OwnedTasks first.
  void drain_inject(LocalCore& core) noexcept;
  bool has_injected() const noexcept {
    // acquire: pairs with the release stores in push_remote, so the drain
    // that follows sees the pushed tasks (it also takes the lock).
    return inject_nonempty_.load(std::memory_order_acquire);
  }
  // Tasks woken or spawned from other threads and not drained yet (any
  // thread; takes the lock: for metrics, not for the run loop).
  size_t injected_len() const noexcept;
  // Refuses further remote pushes and hands back what was still queued:
  // woken tasks into `leftover`, never-adopted spawns into `unadopted`.
  void close(TaskList& leftover, TaskList& unadopted) noexcept;
  bool is_closed() const noexcept {
    // acquire: pairs with close()'s release store.
    return closed_.load(std::memory_order_acquire);
  }
  // The executor is going away: cells freed from now on drop their
  // reference atomically, and the bank is returned.
  void detach_core() noexcept;

  // --- block_on's root future ---
  // Its waker sets this flag and unparks (an owning waker: holds a reference).
  Waker root_waker() noexcept;
  void wake_root() noexcept;
  bool take_root_woken() noexcept {
    // acquire: pairs with wake_root's release, so what the waker published
    // before waking is visible to the root's next poll.
    return root_woken_.exchange(false, std::memory_order_acquire);
  }
  bool root_woken() const noexcept {
    // relaxed: a hint for "do not park"; take_root_woken does the acquire.
    return root_woken_.load(std::memory_order_relaxed);
  }

 private:
  ~LocalScheduler() override = default;
  // True while this scheduler's run loop is running on the calling thread.
  bool running_here() const noexcept;
  // The reference a new cell holds: from the core's bank on the owner
  // thread (`core`), else counted atomically.
  void take_task_ref(LocalCore* core) noexcept;
  // Queues on the owner's run queue, or drops the entry when closed.
  void push_local(LocalCore& core, Header* task) noexcept;
  // Binds a new task and queues its first poll (owner thread).
  void spawn_local(LocalCore& core, Header* task) noexcept;
  // Inject-queue (or, for spawns, remote-spawn-queue) push plus an unpark.
  void push_remote(Header* task, ScheduleKind kind) noexcept;

  Atomic<bool> root_woken_{false};
  Atomic<bool> inject_nonempty_{false};
  Atomic<bool> closed_{false};
  mutable Mutex inject_mu_;
  TaskList inject_ ABSL_GUARDED_BY(inject_mu_);
  TaskList remote_spawns_ ABSL_GUARDED_BY(inject_mu_);
  std::shared_ptr<Unparker> unparker_;
  // this_thread_token() of the owner thread; null while unbound.
  Atomic<const void*> owner_;
  // Written by the constructor and by detach_core() on the owner thread,
  // read only after checking that the caller is the owner (owner_core()).
  RaceCell<LocalCore*> core_;
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_LOCAL_SCHEDULER_H_
