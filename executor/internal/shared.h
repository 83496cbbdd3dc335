// Shared: the reference-counted part of an executor that tasks and wakers
// can reach from any thread, and may outlive the executor.
//
// Holds the inject queue (wakes and spawns from other threads), the closed
// flag, the Unparker of the owner's driver, the owner thread id, and the
// block_on root's "woken" flag. Every task cell holds a reference, as does
// every block_on root waker; so a waker that outlives its executor finds a
// closed flag, never freed memory.
//
// ExecutorCore is the owner thread's half: the local run queue (no atomics),
// the owned-tasks list, and the coop budget. While an executor runs, its core
// is the thread's current core (a thread_local), which is how a wake on the
// owner thread goes straight to the local queue with no lock and no syscall.
#ifndef POLLUX_EXECUTOR_INTERNAL_SHARED_H_
#define POLLUX_EXECUTOR_INTERNAL_SHARED_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>

#include "executor/driver.h"
#include "future/context.h"

namespace pollux::detail {

struct Header;

// Intrusive FIFO of task headers through Header::queue_next.
class TaskList {
 public:
  void push_back(Header* h) noexcept;
  Header* pop_front() noexcept;
  // Moves all of `other` to the back of this list.
  void append(TaskList&& other) noexcept;
  bool empty() const noexcept { return head_ == nullptr; }
  size_t size() const noexcept { return size_; }

 private:
  Header* head_ = nullptr;
  Header* tail_ = nullptr;
  size_t size_ = 0;
};

struct ExecutorCore;

class Shared {
 public:
  // `bind_now`: owned by the constructing thread; otherwise unbound until
  // the first bind_owner().
  Shared(std::shared_ptr<Unparker> unparker, bool bind_now);
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  void ref_inc(size_t n = 1) noexcept {
    // relaxed: a reference is only created from an existing one.
    refs_.fetch_add(n, std::memory_order_relaxed);
  }
  void ref_dec(size_t n = 1) noexcept;

  // Queues a notified task (the caller hands over the queue entry's
  // reference): onto the current thread's local queue when this executor is
  // running here, else onto the inject queue followed by an unpark. After
  // close() the reference is dropped instead.
  void schedule(Header* h) noexcept;
  // Inject queue push + unpark (any thread).
  void schedule_remote(Header* h) noexcept;
  // A task spawned from another thread (Handle::spawn): queued for the owner
  // to adopt into its owned-tasks list. False when closed (nothing queued).
  bool spawn_remote(Header* h) noexcept;
  // Moves every injected task to `run`, and remotely spawned ones to
  // `spawned` (owner thread).
  void drain_inject(TaskList& run, TaskList& spawned) noexcept;
  bool has_injected() const noexcept {
    // acquire: pairs with the release store in schedule_remote, so the
    // drain that follows sees the pushed tasks (it also takes the lock).
    return inject_nonempty_.load(std::memory_order_acquire);
  }
  // Refuses further remote pushes. Returns what was still injected, and the
  // remotely spawned tasks nobody adopted.
  void close(TaskList& leftover, TaskList& unadopted) noexcept;
  bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  // block_on's root future: its waker sets this flag and unparks.
  void wake_root() noexcept;
  bool take_root_woken() noexcept {
    // acquire: pairs with wake_root's release, so what the waker published
    // before waking is visible to the root's next poll.
    return root_woken_.exchange(false, std::memory_order_acquire);
  }
  bool root_woken() const noexcept { return root_woken_.load(std::memory_order_relaxed); }
  // An owning waker for block_on's root future (holds a reference).
  Waker root_waker() noexcept;

  // The owner thread; a default id while unbound (see bind_owner).
  std::thread::id owner() const noexcept {
    // acquire: pairs with bind_owner's CAS, which happens before any use on the owner.
    return owner_.load(std::memory_order_acquire);
  }
  // Binds an unbound executor to the calling thread. True when the calling
  // thread is (now) the owner.
  bool bind_owner() noexcept;
  Unparker& unparker() noexcept { return *unparker_; }

  // The owner's core, for returning task references to its bank when a cell
  // is freed on the owner thread outside a tick (a JoinHandle dropped after
  // block_on). Set and cleared by the executor on the owner thread, and read
  // only after checking that the caller is the owner.
  void set_owner_core(ExecutorCore* core) noexcept { owner_core_ = core; }
  ExecutorCore* owner_core_if_owner() const noexcept {
    if (owner_core_ == nullptr) return nullptr;
    // relaxed: only a true answer matters, and only the owner itself can
    // have stored its own id (it did so before setting owner_core_).
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id() ? owner_core_
                                                                                : nullptr;
  }

 private:
  std::atomic<size_t> refs_{1};
  std::atomic<bool> root_woken_{false};
  std::atomic<bool> inject_nonempty_{false};
  std::atomic<bool> closed_{false};
  std::mutex inject_mu_;
  TaskList inject_;         // guarded by inject_mu_
  TaskList remote_spawns_;  // guarded by inject_mu_
  std::shared_ptr<Unparker> unparker_;
  std::atomic<std::thread::id> owner_;
  ExecutorCore* owner_core_ = nullptr;  // owner thread only, see set_owner_core
};

// The owner thread's half of an executor.
struct ExecutorCore {
  explicit ExecutorCore(Shared* s) noexcept : shared(s) {}
  ~ExecutorCore() {
    if (banked_shared_refs > 0) shared->ref_dec(banked_shared_refs);
  }
  ExecutorCore(const ExecutorCore&) = delete;
  ExecutorCore& operator=(const ExecutorCore&) = delete;

  // Every task cell holds a reference to `shared`. Taking one per spawn and
  // dropping one per free would be two locked instructions per task, so the
  // core keeps a bank of references it already holds: a spawn takes one from
  // the bank (refilling it kSharedRefBatch at a time), and a cell freed on
  // this thread while this core is current puts its reference back. Every
  // reference counted in `shared` is held by a cell or by the bank, and the
  // bank's are released when the core is destroyed. Owner thread only.
  static constexpr size_t kSharedRefBatch = 64;
  void take_shared_ref() noexcept {
    if (banked_shared_refs == 0) {
      shared->ref_inc(kSharedRefBatch);
      banked_shared_refs = kSharedRefBatch;
    }
    --banked_shared_refs;
  }
  // True when the reference a cell of `s` held went back into the bank;
  // false when the caller must drop it (another executor's). The bank is
  // only a count, never larger than the most cells alive at once: no cap.
  bool return_shared_ref(Shared* s) noexcept {
    if (s != shared) return false;
    ++banked_shared_refs;
    return true;
  }

  Shared* shared;
  size_t banked_shared_refs = 0;
  // The task run_task is polling on this core, and whether it woke itself
  // during that poll (yield_now): such a wake needs no atomic (see run_task).
  Header* polling = nullptr;
  bool polling_woke_itself = false;
  TaskList run_queue;
  // Intrusive list of every task not yet complete (through Trailer links).
  Header* owned_head = nullptr;
  size_t owned_count = 0;
  Budget budget;

  void own(Header* h) noexcept;
  void disown(Header* h) noexcept;
};

// The core running on this thread, or null.
ExecutorCore* current_core() noexcept;
// Makes `core` current for its scope and restores the previous one after.
class CurrentCoreGuard {
 public:
  explicit CurrentCoreGuard(ExecutorCore* core) noexcept;
  ~CurrentCoreGuard();
  CurrentCoreGuard(const CurrentCoreGuard&) = delete;
  CurrentCoreGuard& operator=(const CurrentCoreGuard&) = delete;

 private:
  ExecutorCore* prev_;
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_SHARED_H_
