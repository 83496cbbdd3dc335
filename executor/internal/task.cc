#include "executor/internal/task.h"

#include <atomic>
#include <new>
#include <vector>

#include "executor/context.h"
#include "executor/internal/schedule.h"
#include "future/assert.h"
#include "future/internal/mutex.h"
#include "future/internal/thread.h"

namespace pollux::detail {

namespace {

// The live-cell count (live_tasks()) is kept per thread so that spawning
// and freeing a task costs no locked instruction: each thread adds to its
// own counter with a relaxed load and store (only it writes it), and a
// reader sums every thread's counter under a mutex. A cell freed on another
// thread than the one that made it makes one counter go up and the other
// down; only the sum means anything.
//
// A thread's counter is allocated on its first use and never freed, and the
// thread-local only points to it: a cell freed late in a thread's exit
// (another thread-local's destructor, a static executor destroyed after
// main) still has a counter to write, and an exited thread's count stays in
// the sum. The cost is one small node per thread that ever made or freed a task.
struct LiveTaskCounters {
  Mutex mu;
  std::vector<const std::atomic<int64_t>*> threads ABSL_GUARDED_BY(mu);  // never shrinks
};

LiveTaskCounters& live_task_counters() {
  // Never destroyed: threads exit after main.
  static auto* counters = [] {
    ThreadLifetimeAllocation lives_forever;
    return new LiveTaskCounters;
  }();
  return *counters;
}

thread_local std::atomic<int64_t>* t_live_tasks = nullptr;

// Where a thread counts whose own counter could not be allocated (this runs
// in noexcept paths: a task freed on a thread that never made one must not
// terminate the process when memory is short). Shared, so an RMW.
std::atomic<int64_t> g_live_tasks_fallback{0};

void add_live_tasks(int64_t d) noexcept {
  std::atomic<int64_t>* c = t_live_tasks;
  if (c == nullptr) {
    // The counter and its slot in the registry live as long as the process
    // (see above): not a leak of whatever task made this thread's first cell.
    ThreadLifetimeAllocation lives_forever;
    LiveTaskCounters& all = live_task_counters();
    try {
      MutexLock lock(all.mu);
      all.threads.reserve(all.threads.size() + 1);  // may throw: nothing changed yet
      c = new std::atomic<int64_t>(0);
      all.threads.push_back(c);  // cannot throw now
    } catch (const std::bad_alloc&) {
      // relaxed: a statistic, read when quiescent (as below).
      g_live_tasks_fallback.fetch_add(d, std::memory_order_relaxed);
      return;  // try again next time
    }
    t_live_tasks = c;
  }
  // relaxed, and not a read-modify-write: this thread is the only writer;
  // readers (live_tasks) want a statistic and read it when quiescent.
  c->store(c->load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

void dealloc(Header* h) noexcept { h->vtable->dealloc(h); }

enum class Owned : bool { kNo, kYes };

// RUNNING -> COMPLETE with the result stored; tells the JoinHandle, leaves
// the scheduler's OwnedTasks (when it was ever bound to one), and releases
// `extra_refs` more references (the queue entry's, when called from a poll).
void complete(Header* h, uint64_t extra_refs, Owned owned = Owned::kYes) noexcept {
  // The future is gone, and with it every TaskPin it held. One left is held
  // by an op or timer that lives outside the task's future and would later
  // write into this freed cell: stop here instead.
  // relaxed: written only by this thread (the polling one).
  POLLUX_CHECK((h->pins.load(std::memory_order_relaxed) & kOwnPinsMask) == 0,
               "a task finished while an I/O operation, AcceptStream or Sleep it polled still "
               "holds worker-owned state; own such futures inside the task that polls them");
  const TaskState::Snapshot prev = h->state.transition_to_complete();
  if (!prev.has_join_interest()) {
    // Nobody will read the result: drop it here, on the polling thread.
    h->vtable->drop_output(h);
  } else if (prev.has_join_waker()) {
    // JOIN_WAKER was published before COMPLETE (acq_rel above), so the
    // waker in the trailer is complete and the handle no longer writes it.
    trailer_of(h)->join_waker.get().wake_by_ref();
  }
  uint64_t refs = extra_refs;
  if (owned == Owned::kYes && h->scheduler->release(h)) ++refs;  // the list's reference
  if (refs > 0 && h->state.ref_dec(refs)) dealloc(h);
}

void cancel_and_complete(Header* h, uint64_t extra_refs, Owned owned = Owned::kYes) noexcept {
  h->vtable->cancel(h);
  complete(h, extra_refs, owned);
}

Waker task_clone(void* p) noexcept {
  static_cast<Header*>(p)->state.ref_inc();
  return Waker::from_raw(p, &kTaskWakerVTable);
}

void task_wake_by_ref(void* p) noexcept {
  auto* h = static_cast<Header*>(p);
  RuntimeContext& ctx = RuntimeContext::current();
  if (ctx.task == h) {
    // The task wakes itself from its own poll, on its own thread: run_task
    // queues it again when the poll returns; the state word is not touched.
    ctx.task_woke_itself = true;
    return;
  }
  if (h->state.transition_to_notified_by_ref()) h->scheduler->schedule(h, ScheduleKind::kWake);
}

void task_wake(void* p) noexcept {
  auto* h = static_cast<Header*>(p);
  switch (h->state.transition_to_notified_by_val()) {
    case TaskState::WakeByValResult::kSubmit:
      h->scheduler->schedule(h, ScheduleKind::kWake);
      break;
    case TaskState::WakeByValResult::kDealloc:
      dealloc(h);
      break;
    case TaskState::WakeByValResult::kDoNothing:
      break;
  }
}

void task_drop(void* p) noexcept { drop_reference(static_cast<Header*>(p)); }

void unowned_task_drop(void*) noexcept {}

}  // namespace

const WakerVTable kTaskWakerVTable = {&task_clone, &task_wake, &task_wake_by_ref, &task_drop};
const WakerVTable kUnownedTaskWakerVTable = {&task_clone, &task_wake_by_ref, &task_wake_by_ref,
                                              &unowned_task_drop};

void count_task_alloc() noexcept { add_live_tasks(1); }
void count_task_dealloc() noexcept { add_live_tasks(-1); }
int64_t live_tasks() noexcept {
  LiveTaskCounters& all = live_task_counters();
  MutexLock lock(all.mu);
  int64_t sum = 0;
  // relaxed: see add_live_tasks.
  for (const std::atomic<int64_t>* c : all.threads) sum += c->load(std::memory_order_relaxed);
  // relaxed: pairs with nothing, as the per-thread counters.
  return sum + g_live_tasks_fallback.load(std::memory_order_relaxed);
}

void pin_ref_inc(Header* task) noexcept { task->state.ref_inc(); }
void pin_ref_dec(Header* task) noexcept { drop_reference(task); }

void drop_reference(Header* h) noexcept {
  if (h->state.ref_dec()) dealloc(h);
}

void run_task(Header* h, Budget& budget, bool continue_budget) {
  RuntimeContext& ctx = RuntimeContext::current();
  // A RUNNING task in a run queue is owned by that queue entry (DESIGN §4):
  // a new task queued for its first poll, or one that woke itself during its
  // last poll (ScheduleKind::kSelfWake). Either skips transition_to_running;
  // an abort since then only set CANCELLED.
  const TaskState::Snapshot state = h->state.load();
  if (state.is_running()) {
    if (state.is_cancelled()) {
      cancel_and_complete(h, 1);
      return;
    }
  } else {
    switch (h->state.transition_to_running()) {
      case TaskState::RunResult::kFailed:
        drop_reference(h);
        return;
      case TaskState::RunResult::kCancel:
        cancel_and_complete(h, 1);
        return;
      case TaskState::RunResult::kPoll:
        break;
    }
  }
  // The Context borrows a non-owning waker: the poll holds the queue entry's
  // reference, which outlives the poll, so no refcount traffic here.
  Waker borrowed = Waker::from_raw(h, &kTaskWakerVTable);
  if (!continue_budget) budget.reset();
  bool finished;
  ctx.task = h;
  ctx.task_pins = &h->pins;
  ctx.task_woke_itself = false;
  {
    Context cx(borrowed, budget);
    finished = h->vtable->poll(h, cx);  // never throws: the cell catches
  }
  ctx.task = nullptr;
  ctx.task_pins = nullptr;
  borrowed.release();
  if (finished) {
    complete(h, 1);
    return;
  }
  if (ctx.task_woke_itself) {
    // yield_now and the like: queued again still RUNNING with the queue
    // entry's reference, so no transition now and none at its next run.
    // Wakes from other threads meanwhile set NOTIFIED, which the eventual
    // transition_to_idle honours.
    h->scheduler->schedule(h, ScheduleKind::kSelfWake);
    return;
  }
  switch (h->state.transition_to_idle()) {
    case TaskState::IdleResult::kOk:
      return;
    case TaskState::IdleResult::kOkNotified:
      // Woken during its own poll: runs once more, after the tasks already
      // queued. Idle and NOTIFIED now, with the queue entry's reference.
      h->scheduler->schedule(h, ScheduleKind::kWake);
      return;
    case TaskState::IdleResult::kCancelled:
      cancel_and_complete(h, 1);
      return;
  }
}

void abandon_queued_task(Header* h) noexcept {
  if (h->state.load().is_running()) {
    cancel_and_complete(h, 1);
  } else {
    drop_reference(h);
  }
}

void shutdown_task(Header* h) {
  if (h->state.transition_to_shutdown()) cancel_and_complete(h, 0);
}

void shutdown_unlisted_task(Header* h) {
  if (h->state.transition_to_shutdown()) cancel_and_complete(h, 0, Owned::kNo);
  drop_reference(h);  // the list's
}

void cancel_unowned_task(Header* h) noexcept {
  // Never polled, so still RUNNING from its creation (only this thread may
  // drop its future). The queue entry's reference is released here, and the
  // owned-list reference too: it was never handed to a list.
  cancel_and_complete(h, 2, Owned::kNo);
}

void abort_task(Header* h) noexcept {
  if (h->state.transition_to_notified_and_cancel()) h->scheduler->schedule(h, ScheduleKind::kWake);
}

bool join_poll_ready(Header* h, const Waker& waker) noexcept {
  const TaskState::Snapshot s = h->state.load();
  if (s.is_complete()) return true;
  Trailer* t = trailer_of(h);
  if (s.has_join_waker()) {
    if (t->join_waker.get().will_wake(waker)) return false;
    // Take the waker back before replacing it; fails if the task completed.
    if (!h->state.unset_join_waker()) return true;
  }
  // JOIN_WAKER is clear: the trailer's waker is ours to write.
  t->join_waker.get_mut() = waker;
  if (!h->state.set_join_waker()) {
    // Completed meanwhile; the task side never saw our waker.
    t->join_waker.get_mut().reset();
    return true;
  }
  return false;
}

void join_drop(Header* h) noexcept {
  if (!h->state.unset_join_interest()) {
    // Already complete: the result is ours to drop.
    h->vtable->drop_output(h);
  }
  drop_reference(h);
}

}  // namespace pollux::detail
