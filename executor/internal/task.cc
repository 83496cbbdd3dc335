#include "executor/internal/task.h"

#include <mutex>
#include <vector>

#include "executor/internal/shared.h"
#include "future/assert.h"
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
  std::mutex mu;
  std::vector<const std::atomic<int64_t>*> threads;  // guarded by mu; never shrinks
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

void add_live_tasks(int64_t d) noexcept {
  std::atomic<int64_t>* c = t_live_tasks;
  if (c == nullptr) {
    // The counter and its slot in the registry live as long as the process
    // (see above): not a leak of whatever task made this thread's first cell.
    ThreadLifetimeAllocation lives_forever;
    c = new std::atomic<int64_t>(0);
    LiveTaskCounters& all = live_task_counters();
    std::lock_guard lock(all.mu);
    all.threads.push_back(c);
    t_live_tasks = c;
  }
  // relaxed, and not a read-modify-write: this thread is the only writer;
  // readers (live_tasks) want a statistic and read it when quiescent.
  c->store(c->load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}

void dealloc(Header* h) noexcept { h->vtable->dealloc(h); }

// RUNNING -> COMPLETE with the result stored; tells the JoinHandle, leaves
// the owned-tasks list, and releases `extra_refs` more references (the queue
// entry's, when called from a poll).
// `core` is null for a task no executor adopted (it holds no owned-list reference).
void complete(ExecutorCore* core, Header* h, uint64_t extra_refs) noexcept {
  uint64_t prev = h->state.transition_to_complete();
  if (!(prev & TaskState::kJoinInterest)) {
    // Nobody will read the result: drop it here, on the polling thread.
    h->vtable->drop_output(h);
  } else if (prev & TaskState::kJoinWaker) {
    // JOIN_WAKER was published before COMPLETE (acq_rel above), so the
    // waker in the trailer is complete and the handle no longer writes it.
    trailer_of(h)->join_waker.get().wake_by_ref();
  }
  uint64_t refs = extra_refs;
  if (core != nullptr) {
    core->disown(h);  // and release the owned-tasks list's reference
    ++refs;
  }
  if (refs > 0 && h->state.ref_dec(refs)) dealloc(h);
}

void cancel_and_complete(ExecutorCore* core, Header* h, uint64_t extra_refs) noexcept {
  h->vtable->cancel(h);
  complete(core, h, extra_refs);
}

Waker task_clone(void* p) noexcept {
  static_cast<Header*>(p)->state.ref_inc();
  return Waker::from_raw(p, &kTaskWakerVTable);
}

void task_wake_by_ref(void* p) noexcept {
  auto* h = static_cast<Header*>(p);
  ExecutorCore* core = current_core();
  if (core != nullptr && core->polling == h) {
    // The task wakes itself from its own poll, on its own thread: run_task
    // queues it again when the poll returns; the state word is not touched.
    core->polling_woke_itself = true;
    return;
  }
  if (h->state.transition_to_notified_by_ref()) h->scheduler->schedule(h);
}

void task_wake(void* p) noexcept {
  auto* h = static_cast<Header*>(p);
  switch (h->state.transition_to_notified_by_val()) {
    case TaskState::WakeByValResult::kSubmit:
      h->scheduler->schedule(h);
      break;
    case TaskState::WakeByValResult::kDealloc:
      dealloc(h);
      break;
    case TaskState::WakeByValResult::kDoNothing:
      break;
  }
}

void task_drop(void* p) noexcept { drop_reference(static_cast<Header*>(p)); }

}  // namespace

const WakerVTable kTaskWakerVTable = {&task_clone, &task_wake, &task_wake_by_ref, &task_drop};

void release_shared_ref(Shared* scheduler) noexcept {
  ExecutorCore* core = current_core();
  if (core == nullptr) core = scheduler->owner_core_if_owner();
  if (core != nullptr && core->return_shared_ref(scheduler)) return;
  scheduler->ref_dec();
}

void count_task_alloc() noexcept { add_live_tasks(1); }
void count_task_dealloc() noexcept { add_live_tasks(-1); }
int64_t live_tasks() noexcept {
  LiveTaskCounters& all = live_task_counters();
  std::lock_guard lock(all.mu);
  int64_t sum = 0;
  // relaxed: see add_live_tasks.
  for (const std::atomic<int64_t>* c : all.threads) sum += c->load(std::memory_order_relaxed);
  return sum;
}

void drop_reference(Header* h) noexcept {
  if (h->state.ref_dec()) dealloc(h);
}

void run_task(Header* h, Budget& budget) {
  ExecutorCore* core = current_core();
  // A new task (queued RUNNING for its first poll, see TaskState) and one
  // that woke itself during its last poll (queued again still RUNNING, see
  // below) skip transition_to_running; an abort since then only set
  // CANCELLED. Only this thread polls a local task, so a RUNNING task in its
  // run queue can only be such a one. (A work-stealing scheduler would have
  // to keep these off its stealable queues.)
  const uint64_t state = h->state.load();
  if (state & TaskState::kRunning) {
    if (state & TaskState::kCancelled) {
      cancel_and_complete(core, h, 1);
      return;
    }
  } else {
    switch (h->state.transition_to_running()) {
      case TaskState::RunResult::kFailed:
        drop_reference(h);
        return;
      case TaskState::RunResult::kCancel:
        cancel_and_complete(core, h, 1);
        return;
      case TaskState::RunResult::kPoll:
        break;
    }
  }
  // The Context borrows a non-owning waker: the poll holds the queue entry's
  // reference, which outlives the poll, so no refcount traffic here.
  Waker borrowed = Waker::from_raw(h, &kTaskWakerVTable);
  budget.reset();
  bool finished;
  core->polling = h;
  core->polling_woke_itself = false;
  {
    Context cx(borrowed, budget);
    finished = h->vtable->poll(h, cx);  // never throws: the cell catches
  }
  core->polling = nullptr;
  borrowed.release();
  if (finished) {
    complete(core, h, 1);
    return;
  }
  if (core->polling_woke_itself) {
    // yield_now and the like: back of the queue, still RUNNING and holding
    // the queue entry's reference, so no transition now and none at its next
    // run. Wakes from other threads meanwhile set NOTIFIED, which the
    // eventual transition_to_idle honours.
    core->run_queue.push_back(h);
    return;
  }
  switch (h->state.transition_to_idle()) {
    case TaskState::IdleResult::kOk:
      return;
    case TaskState::IdleResult::kOkNotified:
      // Woken during its own poll: runs once more, after the tasks already queued.
      core->run_queue.push_back(h);
      return;
    case TaskState::IdleResult::kCancelled:
      cancel_and_complete(core, h, 1);
      return;
  }
}

void abandon_queued_task(ExecutorCore* core, Header* h) noexcept {
  if (h->state.load() & TaskState::kRunning) {
    cancel_and_complete(core, h, 1);
  } else {
    drop_reference(h);
  }
}

void shutdown_task(Header* h) {
  if (h->state.transition_to_shutdown()) cancel_and_complete(current_core(), h, 0);
}

void cancel_unowned_task(Header* h) noexcept {
  // Never polled, so still RUNNING from its creation (only this thread may
  // drop its future). The queue entry's reference is released here; the
  // owned-list reference was never handed to a list, so release it too.
  cancel_and_complete(nullptr, h, 2);
}

void abort_task(Header* h) noexcept {
  if (h->state.transition_to_notified_and_cancel()) h->scheduler->schedule(h);
}

bool join_poll_ready(Header* h, const Waker& waker) noexcept {
  uint64_t s = h->state.load();
  if (s & TaskState::kComplete) return true;
  Trailer* t = trailer_of(h);
  if (s & TaskState::kJoinWaker) {
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
