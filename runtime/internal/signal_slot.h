// SignalSlot: one subscriber slot of the signal registry
// (runtime/internal/signal_registry.h): a runtime's pipe write end, the
// pending flag the handler sets, and the count of handlers inside the slot.
// Header-only so that tests/model/signal_slot_model_test.cc checks this very
// code against every interleaving.
//
//   handler (deliver):  users += 1; fd = load; if fd >= 0 { pending = true;
//                       write(fd) }; users -= 1
//   release:            fd = -1; wait until users == 0; pending = false
//   claim:              CAS fd -1 -> fd
//   reader:             read the byte(s), then take_pending()
//
// Why release() may be followed by close(fd): `users += 1` / `load fd` in
// the handler and `fd = -1` / `load users` in release() are all seq_cst, a
// Dekker pair: in the single total order either the handler's load comes
// after `fd = -1` (it sees -1 and does nothing), or release's load of
// `users` comes after `users += 1` (it sees the handler and waits for its
// `users -= 1`, a release store its acquire load synchronises with, so the
// write(2) happened before the close).
//
// Why a delivery is not lost: pending is stored before the byte is written,
// and the reader takes it after it read the byte (the pipe orders the two;
// seq_cst on both sides makes that visible to the checker as well).
//
// deliver() is async-signal-safe: atomics (lock-free) and whatever `write`
// does. release() spins, which cannot deadlock: a handler that interrupts
// the releasing thread finishes before that thread resumes, and one on
// another thread is inside one non-blocking write(2).
//
// Thread-safety: deliver() from any thread or handler; claim(), release()
// and take_pending() by the one holder of the slot (claim by anyone).
#ifndef POLLUX_RUNTIME_INTERNAL_SIGNAL_SLOT_H_
#define POLLUX_RUNTIME_INTERNAL_SIGNAL_SLOT_H_

#include <sched.h>

#include <atomic>

#include "future/internal/atomic.h"
#include "future/internal/thread.h"

namespace pollux::detail {

// One subscriber slot (see above).
class SignalSlot {
 public:
  // The handler's part: true when the slot held an fd (`write(fd)` ran).
  template <class Write>
  bool deliver(Write&& write) noexcept {
    // seq_cst: the Dekker pair with release() (see above).
    users_.fetch_add(1, std::memory_order_seq_cst);
    // seq_cst: ditto.
    const int fd = fd_.load(std::memory_order_seq_cst);
    if (fd >= 0) {
      // seq_cst (release would do): before the byte; the reader's
      // take_pending() comes after it read the byte.
      pending_.store(true, std::memory_order_seq_cst);
      write(fd);
    }
    // release: our write(fd) happens-before release()'s acquire load of 0.
    users_.fetch_sub(1, std::memory_order_release);
    return fd >= 0;
  }

  // Takes the slot for `fd`; false when it is held.
  bool claim(int fd) noexcept {
    int expected = -1;
    // seq_cst: publishes fd to deliver()'s load. A free slot's pending is
    // false (release() cleared it), so a claim starts clean. relaxed on
    // failure: nothing is read.
    return fd_.compare_exchange_strong(expected, fd, std::memory_order_seq_cst,
                                       std::memory_order_relaxed);
  }

  // Frees the slot; after it returns no deliver() touches the old fd.
  void release() noexcept {
    // seq_cst: the other half of the Dekker pair.
    fd_.store(-1, std::memory_order_seq_cst);
    // seq_cst (acquire needed): pairs with deliver()'s fetch_sub.
    for (unsigned spins = 1; users_.load(std::memory_order_seq_cst) != 0; ++spins) {
      spin_loop_hint();
      if (spins % 64 == 0) sched_yield();
    }
    // relaxed would do: no deliver() stores it while fd is -1 and none is
    // inside; the next claim's CAS publishes the cleared flag.
    pending_.store(false, std::memory_order_seq_cst);
  }

  // In a fork()ed child (pthread_atfork): the slot is free. No wait: the
  // handlers counted in `users` ran on threads the child does not have.
  void reset_in_child() noexcept {
    // relaxed: the child has one thread.
    fd_.store(-1, std::memory_order_relaxed);
    pending_.store(false, std::memory_order_relaxed);
    users_.store(0, std::memory_order_relaxed);
  }

  // Whether a delivery came since the last call; clears it.
  bool take_pending() noexcept {
    // seq_cst (acquire would do): pairs with deliver()'s store.
    return pending_.exchange(false, std::memory_order_seq_cst);
  }

 private:
  Atomic<int> fd_{-1};
  Atomic<bool> pending_{false};
  Atomic<unsigned> users_{0};
};

}  // namespace pollux::detail

#endif  // POLLUX_RUNTIME_INTERNAL_SIGNAL_SLOT_H_
