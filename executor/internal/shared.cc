#include "executor/internal/shared.h"

#include "executor/internal/task.h"
#include "future/assert.h"

namespace pollux::detail {

namespace {
thread_local ExecutorCore* tls_core = nullptr;
}  // namespace

// ---- TaskList ----

void TaskList::push_back(Header* h) noexcept {
  h->queue_next = nullptr;
  if (tail_ == nullptr) {
    head_ = tail_ = h;
  } else {
    tail_->queue_next = h;
    tail_ = h;
  }
  ++size_;
}

Header* TaskList::pop_front() noexcept {
  Header* h = head_;
  if (h == nullptr) return nullptr;
  head_ = h->queue_next;
  if (head_ == nullptr) tail_ = nullptr;
  h->queue_next = nullptr;
  --size_;
  return h;
}

void TaskList::append(TaskList&& other) noexcept {
  if (other.head_ == nullptr) return;
  if (tail_ == nullptr) {
    head_ = other.head_;
  } else {
    tail_->queue_next = other.head_;
  }
  tail_ = other.tail_;
  size_ += other.size_;
  other.head_ = other.tail_ = nullptr;
  other.size_ = 0;
}

// ---- Shared ----

Shared::Shared(std::shared_ptr<Unparker> unparker, bool bind_now)
    : unparker_(std::move(unparker)),
      owner_(bind_now ? std::this_thread::get_id() : std::thread::id()) {}

bool Shared::bind_owner() noexcept {
  const std::thread::id self = std::this_thread::get_id();
  // Every spawn checks the owner: once bound, a plain load answers it, no
  // locked instruction. acquire: pairs with the CAS below (the binding, and
  // everything the binder did before it, is visible to a later check).
  if (owner_.load(std::memory_order_acquire) == self) return true;
  std::thread::id expected;
  // acq_rel: release publishes the binding to owner()'s acquire loads.
  if (owner_.compare_exchange_strong(expected, self, std::memory_order_acq_rel)) return true;
  return expected == self;
}

bool Shared::spawn_remote(Header* h) noexcept {
  ref_inc();  // see schedule_remote: the owner may free `h` once it is queued
  {
    std::lock_guard lock(inject_mu_);
    if (closed_.load(std::memory_order_relaxed)) {  // relaxed: written under inject_mu_
      ref_dec();
      return false;
    }
    remote_spawns_.push_back(h);
    // release: pairs with has_injected()'s acquire.
    inject_nonempty_.store(true, std::memory_order_release);
  }
  unparker_->unpark();
  ref_dec();
  return true;
}

void Shared::ref_dec(size_t n) noexcept {
  // acq_rel: release orders this holder's accesses before the delete; acquire
  // on the last decrement sees every other holder's.
  if (refs_.fetch_sub(n, std::memory_order_acq_rel) == n) delete this;
}

void Shared::schedule(Header* h) noexcept {
  ExecutorCore* core = tls_core;
  if (core != nullptr && core->shared == this) {
    if (is_closed()) {
      drop_reference(h);
      return;
    }
    core->run_queue.push_back(h);
    return;
  }
  schedule_remote(h);
}

void Shared::schedule_remote(Header* h) noexcept {
  // Once `h` is in the inject queue the owner may run, complete and free it,
  // and with it the reference to this Shared that kept us alive; hold our own
  // across the unpark.
  ref_inc();
  {
    std::lock_guard lock(inject_mu_);
    if (!closed_.load(std::memory_order_relaxed)) {  // relaxed: written under inject_mu_
      inject_.push_back(h);
      // release: pairs with has_injected()'s acquire.
      inject_nonempty_.store(true, std::memory_order_release);
      h = nullptr;
    }
  }
  if (h == nullptr) {
    // Outside the lock: unpark may make a syscall.
    unparker_->unpark();
    ref_dec();
    return;
  }
  ref_dec();
  // The executor is gone or going: nobody will run the task. Dropping the
  // queue reference is safe: the owned list (or shutdown) still holds one
  // until the future is dropped on the owner thread.
  drop_reference(h);
}

void Shared::drain_inject(TaskList& run, TaskList& spawned) noexcept {
  std::lock_guard lock(inject_mu_);
  run.append(std::move(inject_));
  spawned.append(std::move(remote_spawns_));
  inject_nonempty_.store(false, std::memory_order_relaxed);  // relaxed: under inject_mu_
}

void Shared::close(TaskList& leftover, TaskList& unadopted) noexcept {
  std::lock_guard lock(inject_mu_);
  // release: pairs with is_closed()'s acquire on the owner thread's local path.
  closed_.store(true, std::memory_order_release);
  leftover.append(std::move(inject_));
  unadopted.append(std::move(remote_spawns_));
  inject_nonempty_.store(false, std::memory_order_relaxed);
}

namespace {
Waker shared_root_clone(void* p) noexcept;
void shared_root_wake(void* p) noexcept {
  auto* s = static_cast<Shared*>(p);
  s->wake_root();
  s->ref_dec();
}
void shared_root_wake_by_ref(void* p) noexcept { static_cast<Shared*>(p)->wake_root(); }
void shared_root_drop(void* p) noexcept { static_cast<Shared*>(p)->ref_dec(); }
constexpr WakerVTable kRootWakerVTable = {&shared_root_clone, &shared_root_wake,
                                          &shared_root_wake_by_ref, &shared_root_drop};
Waker shared_root_clone(void* p) noexcept {
  static_cast<Shared*>(p)->ref_inc();
  return Waker::from_raw(p, &kRootWakerVTable);
}
}  // namespace

void Shared::wake_root() noexcept {
  // release: pairs with take_root_woken's acquire.
  root_woken_.store(true, std::memory_order_release);
  ExecutorCore* core = tls_core;
  if (core != nullptr && core->shared == this) return;  // the owner sees the flag next tick
  if (!is_closed()) unparker_->unpark();
}

Waker Shared::root_waker() noexcept { return shared_root_clone(this); }

// ---- ExecutorCore ----

void ExecutorCore::own(Header* h) noexcept {
  Trailer* t = trailer_of(h);
  t->owned_prev = nullptr;
  t->owned_next = owned_head;
  if (owned_head != nullptr) trailer_of(owned_head)->owned_prev = h;
  owned_head = h;
  ++owned_count;
}

void ExecutorCore::disown(Header* h) noexcept {
  Trailer* t = trailer_of(h);
  if (t->owned_prev != nullptr) {
    trailer_of(t->owned_prev)->owned_next = t->owned_next;
  } else {
    owned_head = t->owned_next;
  }
  if (t->owned_next != nullptr) trailer_of(t->owned_next)->owned_prev = t->owned_prev;
  t->owned_prev = t->owned_next = nullptr;
  --owned_count;
}

ExecutorCore* current_core() noexcept { return tls_core; }

CurrentCoreGuard::CurrentCoreGuard(ExecutorCore* core) noexcept : prev_(tls_core) {
  tls_core = core;
}
CurrentCoreGuard::~CurrentCoreGuard() { tls_core = prev_; }

}  // namespace pollux::detail
