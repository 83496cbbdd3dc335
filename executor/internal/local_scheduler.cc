#include "executor/internal/local_scheduler.h"

#include "executor/context.h"
#include "executor/internal/task.h"
#include "executor/internal/thread_token.h"
#include "future/assert.h"

namespace pollux::detail {

LocalScheduler::LocalScheduler(std::shared_ptr<Unparker> unparker, LocalCore* core,
                               bool bind_now)
    : unparker_(std::move(unparker)),
      owner_(bind_now ? this_thread_token() : nullptr),
      core_(core) {}

bool LocalScheduler::running_here() const noexcept {
  return RuntimeContext::current().scheduler == this;
}

bool LocalScheduler::bind_owner() noexcept {
  const void* self = this_thread_token();
  // Every spawn checks the owner: once bound, a plain load answers it, no
  // locked instruction. acquire: pairs with the CAS below (the binding, and
  // everything the binder did before it, is visible to a later check).
  if (owner_.load(std::memory_order_acquire) == self) return true;
  const void* expected = nullptr;
  // acq_rel: release publishes the binding to the acquire loads above.
  if (owner_.compare_exchange_strong(expected, self, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
    return true;
  }
  return expected == self;
}

LocalCore* LocalScheduler::owner_core() const noexcept {
  if (running_here()) return core_.get();
  // The owner check comes first: only the owner thread writes core_
  // (detach_core), so reading it is race-free only once we know we are it.
  // relaxed: only "it is me" matters, and only this thread can have stored
  // its own id (bind_owner, or the constructor before the executor was
  // handed to anyone).
  if (owner_.load(std::memory_order_relaxed) != this_thread_token()) return nullptr;
  return core_.get();
}

void LocalScheduler::detach_core() noexcept {
  LocalCore* core = core_.get();
  core_.get_mut() = nullptr;
  if (core != nullptr && core->banked_task_refs > 0) {
    const size_t banked = core->banked_task_refs;
    core->banked_task_refs = 0;
    ref_dec(banked);
  }
}

void LocalScheduler::take_task_ref(LocalCore* core) noexcept {
  if (core == nullptr) {
    ref_inc();
    return;
  }
  if (core->banked_task_refs == 0) {
    ref_inc(LocalCore::kTaskRefBatch);
    core->banked_task_refs = LocalCore::kTaskRefBatch;
  }
  --core->banked_task_refs;
}

void LocalScheduler::drop_task_ref() noexcept {
  if (LocalCore* core = owner_core()) {
    ++core->banked_task_refs;
    return;
  }
  ref_dec();
}

void LocalScheduler::schedule(Header* task, ScheduleKind kind) noexcept {
  LocalCore* core = owner_core();
  if (kind == ScheduleKind::kSpawn) take_task_ref(core);  // the cell's, until dealloc
  if (core == nullptr) {
    POLLUX_DCHECK(kind != ScheduleKind::kSelfWake, "a self-wake off the owner thread");
    push_remote(task, kind);
    return;
  }
  if (kind == ScheduleKind::kSpawn) {
    spawn_local(*core, task);
  } else {
    push_local(*core, task);
  }
}

bool LocalScheduler::release(Header* task) noexcept {
  LocalCore* core = owner_core();
  POLLUX_DCHECK(core != nullptr, "LocalScheduler::release off the owner thread");
  if (core == nullptr || !core->owned.remove(task)) return false;
  core->counters->released.inc();
  return true;
}

void LocalScheduler::push_local(LocalCore& core, Header* task) noexcept {
  if (is_closed()) {
    // Shutting down: nobody will poll it; the owned list (or the shutdown
    // walk) still holds a reference until its future is dropped here.
    drop_reference(task);
    return;
  }
  core.run_queue.push_back(task);
}

namespace {
// A task joining the owner's list: its id, and the tick time of the thread
// that adopts it (no clock read).
void stamp(LocalCore& core, Header* task) noexcept {
  Trailer* t = trailer_of(task);
  t->id = core.next_task_id++;
  if (const TickClock* tick = RuntimeContext::current().tick) t->spawned_ms = tick->stamp_ms();
}
}  // namespace

void LocalScheduler::spawn_local(LocalCore& core, Header* task) noexcept {
  stamp(core, task);
  core.owned.bind(task);
  core.counters->spawns.inc();
  if (is_closed()) {
    // Cancelled before its first poll; the queue entry's reference goes too.
    abandon_queued_task(task);
    return;
  }
  core.run_queue.push_back(task);
}

void LocalScheduler::push_remote(Header* task, ScheduleKind kind) noexcept {
  // Once `task` is queued the owner may run, complete and free it, and with
  // it the reference that keeps this block alive: hold our own across the
  // unpark.
  ref_inc();
  bool queued = false;
  {
    MutexLock lock(inject_mu_);
    // relaxed: closed_ is written under inject_mu_, which we hold.
    if (!closed_.load(std::memory_order_relaxed)) {
      (kind == ScheduleKind::kSpawn ? remote_spawns_ : inject_).push_back(task);
      // release: pairs with has_injected()'s acquire.
      inject_nonempty_.store(true, std::memory_order_release);
      queued = true;
    }
  }
  if (queued) {
    unparker_->unpark();  // outside the lock: it may make a syscall
  } else if (kind == ScheduleKind::kSpawn) {
    // Spawned onto a closed executor: never polled and in no list, so its
    // future is dropped here, on the spawning thread.
    cancel_unowned_task(task);
  } else {
    // The executor is gone or going: nobody will run the task. The owned
    // list (or shutdown) still holds a reference until its future is
    // dropped on the owner thread.
    drop_reference(task);
  }
  ref_dec();
}

void LocalScheduler::drain_inject(LocalCore& core) noexcept {
  TaskList spawned;
  {
    MutexLock lock(inject_mu_);
    core.run_queue.append(inject_);
    spawned.append(remote_spawns_);
    // relaxed: under inject_mu_; a push after the unlock sets it again.
    inject_nonempty_.store(false, std::memory_order_relaxed);
  }
  while (Header* h = spawned.pop_front()) {
    stamp(core, h);
    core.owned.bind(h);
    core.counters->spawns.inc();
    core.run_queue.push_back(h);
  }
}

size_t LocalScheduler::injected_len() const noexcept {
  MutexLock lock(inject_mu_);
  return inject_.size() + remote_spawns_.size();
}

void LocalScheduler::close(TaskList& leftover, TaskList& unadopted) noexcept {
  MutexLock lock(inject_mu_);
  // release: pairs with is_closed()'s acquire on the owner's local paths.
  closed_.store(true, std::memory_order_release);
  leftover.append(inject_);
  unadopted.append(remote_spawns_);
  // relaxed: under inject_mu_.
  inject_nonempty_.store(false, std::memory_order_relaxed);
}

namespace {
Waker root_clone(void* p) noexcept;
void root_wake(void* p) noexcept {
  auto* s = static_cast<LocalScheduler*>(p);
  s->wake_root();
  s->ref_dec();
}
void root_wake_by_ref(void* p) noexcept { static_cast<LocalScheduler*>(p)->wake_root(); }
void root_drop(void* p) noexcept { static_cast<LocalScheduler*>(p)->ref_dec(); }
constexpr WakerVTable kRootWakerVTable = {&root_clone, &root_wake, &root_wake_by_ref,
                                          &root_drop};
Waker root_clone(void* p) noexcept {
  static_cast<LocalScheduler*>(p)->ref_inc();
  return Waker::from_raw(p, &kRootWakerVTable);
}
}  // namespace

Waker LocalScheduler::root_waker() noexcept { return root_clone(this); }

void LocalScheduler::wake_root() noexcept {
  // release: pairs with take_root_woken's acquire.
  root_woken_.store(true, std::memory_order_release);
  if (running_here()) return;  // the owner sees the flag at its next tick
  if (!is_closed()) unparker_->unpark();
}

}  // namespace pollux::detail
