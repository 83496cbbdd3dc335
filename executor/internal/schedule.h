// Schedule: what the task harness (task.cc) may ask of the executor that
// owns a task. The harness decides *what* happens to a task (poll it, drop
// its future, complete it, free it) and acts on executors only through this
// interface; it never touches an executor's fields. Each executor kind
// implements it: LocalExecutor's LocalScheduler today, a multi-thread
// worker, the blocking pool and a thread-per-core core later.
//
// Ownership rule every implementation keeps (DESIGN §4): RUNNING means
// "owned by the poller, or by the one queue entry that will poll it". A
// task handed to schedule() comes with one reference, the queue entry's,
// and with the right to poll it next; every queue hand-off (push/pop, steal,
// inject) transfers that right with a release/acquire edge.
//
// Reference counting: a Schedule is itself reference-counted. Every task cell
// holds one reference from its spawn to its free (schedule(kSpawn) takes it,
// drop_task_ref gives it back), so a waker that outlives its executor finds
// a closed scheduler, never freed memory. Implementations may batch those references (LocalScheduler
// banks them on its owner thread: no locked instruction per spawn).
//
// Thread-safety: schedule() and unpark() from any thread; release() only
// where the implementation says (LocalScheduler: its owner thread).
#ifndef POLLUX_EXECUTOR_INTERNAL_SCHEDULE_H_
#define POLLUX_EXECUTOR_INTERNAL_SCHEDULE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "future/internal/atomic.h"

namespace pollux::detail {

struct Header;

enum class ScheduleKind : uint8_t {
  // A wake newly set NOTIFIED on an idle task (or abort() did).
  kWake,
  // The task woke itself during its own poll, which has just returned; it is
  // still RUNNING and the poller hands its run to the queue entry, with no
  // state transition now or at its next poll.
  kSelfWake,
  // A new task, RUNNING for its first poll (TaskState::queued_for_first_poll)
  // and in no OwnedTasks yet: take the cell's reference to the scheduler
  // (given back by drop_task_ref when the cell is freed), bind it, then queue
  // it (or, if the scheduler is closed, cancel it at once).
  kSpawn,
};

class Schedule {
 public:
  Schedule(const Schedule&) = delete;
  Schedule& operator=(const Schedule&) = delete;

  // Queues `task` (see ScheduleKind), consuming the queue entry's
  // reference. After the scheduler closed, a wake drops that reference and
  // a spawn cancels the task.
  virtual void schedule(Header* task, ScheduleKind kind) noexcept = 0;
  // Removes a task that is completing from this scheduler's OwnedTasks.
  // True when it was there: the caller then drops the list's reference.
  virtual bool release(Header* task) noexcept = 0;
  // Makes the scheduler's parked thread(s) look at their queues again.
  virtual void unpark() noexcept = 0;

  // A freed cell gives back the reference schedule(kSpawn) took for it.
  virtual void drop_task_ref() noexcept = 0;

  void ref_inc(size_t n = 1) noexcept {
    // relaxed: a reference is only created from an existing one.
    refs_.fetch_add(n, std::memory_order_relaxed);
  }
  void ref_dec(size_t n = 1) noexcept {
    // acq_rel: release orders this holder's accesses before the delete;
    // acquire on the last decrement sees every other holder's.
    if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) destroy();
  }

 protected:
  Schedule() = default;
  virtual ~Schedule() = default;
  // The last reference is gone.
  virtual void destroy() noexcept { delete this; }

 private:
  Atomic<size_t> refs_{1};
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_SCHEDULE_H_
