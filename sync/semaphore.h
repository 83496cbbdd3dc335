// Semaphore: a counting semaphore with fair (FIFO) waiters, for tasks.
//
//   pollux::sync::Semaphore pool(8);
//   absl::StatusOr<sync::SemaphorePermit> p = co_await pool.acquire();
//   if (!p.ok()) ...             // the semaphore was closed
//   // ... use the resource; the permit goes back when `p` is dropped
//
// Semantics (tokio's batch semaphore):
// - acquire(n) waits for n permits, first come first served, also for n > 1:
//   a large request at the head is filled as permits come back and is not
//   overtaken by smaller requests behind it (permits returned while it waits
//   are set aside for it).
// - try_acquire(n) takes n permits now or fails without waiting; it does not
//   jump the queue either (with waiters queued it fails).
// - release(n) / add_permits(n) hand permits to the waiters in order; what
//   they do not need is stored.
// - close() fails every queued acquire and every later one with the distinct
//   status kFailedPrecondition "semaphore closed" (`is_closed_status`);
//   permits already held stay valid and can be released.
//
// Costs: an acquire that finds permits and a release with nobody waiting
// are one compare-exchange each (no lock, no syscall). Waiting takes the
// semaphore's lock; waiters live in an intrusive list inside their futures.
//
// Cancellation: dropping an Acquire future before Ready gives back the
// permits set aside for it so far and loses its place in the queue; if it
// had been granted all of them but not yet polled, they go back too. Nothing
// leaks and nobody's wake-up is lost.
//
// Thread-safety: every method from any thread. An Acquire future is polled
// and dropped by one task at a time and must not move once it waits. The
// semaphore must outlive its futures and permits.
#ifndef POLLUX_SYNC_SEMAPHORE_H_
#define POLLUX_SYNC_SEMAPHORE_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "future/future.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "sync/internal/waiters.h"

namespace pollux::sync {

class Semaphore;

// Permits held from a Semaphore; they go back when it is destroyed.
class [[nodiscard]] SemaphorePermit {
 public:
  SemaphorePermit(SemaphorePermit&& o) noexcept
      : sem_(std::exchange(o.sem_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  SemaphorePermit& operator=(SemaphorePermit&& o) noexcept;
  ~SemaphorePermit();

  size_t count() const noexcept { return n_; }
  // Keeps the permits out of the semaphore for good (they are not released).
  void forget() && noexcept { n_ = 0; }
  // Moves `other`'s permits into this one (same semaphore).
  void merge(SemaphorePermit&& other) noexcept;

 private:
  friend class Semaphore;
  friend class Acquire;
  SemaphorePermit(Semaphore* sem, size_t n) noexcept : sem_(sem), n_(n) {}
  Semaphore* sem_;
  size_t n_;
};

// True for the status of an acquire on a closed semaphore.
bool is_closed_status(const absl::Status& s) noexcept;

// The future acquire() returns: Ready with the permits, or an error once
// closed.
class [[nodiscard]] Acquire : private detail::WaiterNode {
 public:
  using Output = absl::StatusOr<SemaphorePermit>;

  Acquire(Acquire&& other) noexcept;
  Acquire& operator=(Acquire&&) = delete;
  ~Acquire();

  Poll<Output> poll(Context& cx);

  // For primitives built on the semaphore (Mutex, RwLock, mpsc): OK once the
  // permits are held (and then owned by the caller, not by a
  // SemaphorePermit), or the closed status. Same protocol as poll().
  Poll<absl::Status> poll_raw(Context& cx);

 private:
  friend class Semaphore;
  template <class>
  friend class detail::WaiterList;
  Acquire(Semaphore* sem, size_t n) noexcept : sem_(sem), total_(n), needed_(n) {}

  enum class Phase : uint8_t { kInit, kWaiting, kDone };

  Semaphore* sem_;
  size_t total_;     // permits asked for
  size_t needed_;    // permits still to get (guarded by the semaphore's lock while waiting)
  size_t acquired_ = 0;  // permits set aside for it so far (same)
  bool closed_ = false;  // the semaphore closed while it waited (same)
  Phase phase_ = Phase::kInit;
};

// An async FIFO-fair counting semaphore (see above).
class Semaphore {
 public:
  // The most permits a semaphore can hold.
  static constexpr size_t kMaxPermits = SIZE_MAX >> 3;

  explicit Semaphore(size_t permits);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore();

  // Waits for n (>= 1) permits; see the header comment.
  Acquire acquire(size_t n = 1) noexcept { return Acquire(this, n); }
  // n permits now, or an error: kResourceExhausted when there are not enough
  // (or others wait first), the closed status after close().
  absl::StatusOr<SemaphorePermit> try_acquire(size_t n = 1) noexcept;
  // Adds n new permits (handed to waiters first).
  void add_permits(size_t n) noexcept { release(n); }
  // Gives back n permits taken without a SemaphorePermit (forget(), or a
  // primitive built on this one).
  void release(size_t n) noexcept;
  // Fails every waiter and every later acquire (see the header comment).
  void close() noexcept;
  bool is_closed() const noexcept;
  // Permits available now (a snapshot).
  size_t available_permits() const noexcept;

  // For primitives built on the semaphore (Mutex, RwLock, mpsc): n permits
  // now, or false; never waits, never jumps the queue.
  [[nodiscard]] bool try_take(size_t n) noexcept;

 private:
  friend class Acquire;
  // word_: permits << kShift | QUEUED | CLOSED. QUEUED is set (under mu_)
  // while waiters are queued: a release that sees it takes the lock to hand
  // its permits to them; one that does not adds them lock-free.
  static constexpr uint64_t kClosed = 1;
  static constexpr uint64_t kQueued = 2;
  static constexpr uint64_t kShift = 3;

  // Hands `n` permits to the waiters in order (those it fills go to
  // `wake`) and stores what is left once the list is empty (clearing
  // QUEUED). Stops early when `wake` is full: returns the permits it has not
  // handed out yet (the caller wakes the batch and calls again).
  size_t release_locked(size_t n, detail::WakeList& wake) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Clears QUEUED once the last waiter left (lock held, list empty).
  void clear_queued_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  pollux::detail::Atomic<uint64_t> word_;
  mutable pollux::detail::Mutex mu_;
  detail::WaiterList<Acquire> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_SEMAPHORE_H_
