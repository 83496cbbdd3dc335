// The model checker's entry points for the instrumented shim types
// (tests/model/instrumented.h): what an Atomic, Mutex, CondVar, Thread or
// RaceCell calls to make an access a scheduling point of the checker.
//
// Contract:
// - Call in_execution() first. When it is false (static initialisation, a
//   plain test, any thread that is not a model thread) the type behaves as
//   the ordinary std/absl one and calls nothing else here.
// - When it is true, the caller is the one model thread that holds the
//   checker's baton; each call below may switch to another model thread
//   before it returns (that is the scheduling point), and records the
//   access in the execution's trace.
// - Each instrumented object embeds a small link struct (below) that ties
//   it to its state in the current execution. A link whose `execution` is
//   not the current one is stale: the object is seen for the first time in
//   this execution and starts fresh (an atomic with its current value, a
//   mutex unlocked, a cell with no previous accesses). Constructors reset
//   their link, so memory reused for a new object never inherits the old
//   object's history.
// - Values of atomics travel as 64-bit patterns (T is trivially copyable
//   and at most 8 bytes); `latest` is the object's current inline value,
//   used when the link is stale.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_HOOKS_H_
#define POLLUX_TESTS_MODEL_INTERNAL_HOOKS_H_

#include <atomic>
#include <cstdint>

#include "tests/model/internal/vector_clock.h"

namespace pollux::model::internal {

// Where an access is made (the caller's __builtin_FILE/__builtin_LINE).
struct SourceLoc {
  const char* file;
  int line;
};

// True on a model thread during an execution of model::check.
[[nodiscard]] bool in_execution() noexcept;

// ---- Atomics ----

struct AtomicLink {
  uint64_t execution = 0;
  uint32_t index = 0;
};

// What a read-modify-write does to the old value: returns the new one.
using RmwFunction = uint64_t (*)(uint64_t old_bits, uint64_t operand_bits);

struct RmwResult {
  uint64_t old_bits;
  uint64_t new_bits;
};

[[nodiscard]] uint64_t atomic_load(AtomicLink& link, const void* object, uint64_t latest,
                                   std::memory_order order, SourceLoc loc);
void atomic_store(AtomicLink& link, const void* object, uint64_t latest, uint64_t value,
                  std::memory_order order, SourceLoc loc);
// `name` is the operation's name in the trace ("fetch_add", "exchange").
[[nodiscard]] RmwResult atomic_rmw(AtomicLink& link, const void* object, uint64_t latest,
                                   const char* name, RmwFunction apply, uint64_t operand,
                                   std::memory_order order, SourceLoc loc);
// A compare-exchange: true (and the store made) when the current value
// equals `expected`; otherwise `expected` receives the current value.
[[nodiscard]] bool atomic_compare_exchange(AtomicLink& link, const void* object, uint64_t latest,
                                           uint64_t& expected, uint64_t desired,
                                           std::memory_order success, std::memory_order failure,
                                           SourceLoc loc);
void atomic_fence(std::memory_order order, SourceLoc loc);

// ---- Mutexes and condition variables ----

struct MutexLink {
  uint64_t execution = 0;
  uint32_t id = 0;
  int8_t owner = -1;      // the model thread holding it, or -1
  VectorClock released;   // the clock of the last unlock (unlock -> lock edge)
};

struct CondVarLink {
  uint64_t execution = 0;
  uint32_t id = 0;
};

void mutex_lock(MutexLink& link, const void* mutex, SourceLoc loc);
[[nodiscard]] bool mutex_try_lock(MutexLink& link, const void* mutex, SourceLoc loc);
void mutex_unlock(MutexLink& link, const void* mutex, SourceLoc loc);
// Releases the mutex, waits for a notify (or, when `timed`, possibly a
// timeout: the checker explores both), re-acquires it. True on timeout.
[[nodiscard]] bool condvar_wait(CondVarLink& cv_link, const void* cv, MutexLink& mutex_link,
                                const void* mutex, bool timed, SourceLoc loc);
void condvar_notify(CondVarLink& link, const void* cv, bool all, SourceLoc loc);

// ---- Threads ----

// A model thread's code: `run(context)`, then `destroy(context)` on the
// same thread (both while it is still a model thread, so what they free is
// checked like any other access).
struct ThreadBody {
  void (*run)(void* context);
  void (*destroy)(void* context);
  void* context;
};

// Starts a model thread (a scheduling point); returns its id.
[[nodiscard]] int thread_spawn(ThreadBody body, SourceLoc loc);
// Blocks until model thread `id` finished; its operations then happen before ours.
void thread_join(int id, SourceLoc loc);
// Reports a model thread handle destroyed while still joinable.
[[noreturn]] void thread_not_joined(int id);
// A spin-wait's hint (detail::spin_loop_hint): switches to another runnable
// thread (which one is a choice, as at any scheduling point) without
// counting a preemption, and goes on only when no other thread can run.
// So a wait that needs another thread's progress, and yields each time
// round, gets it instead of running into the step bound (loom's
// yield_now). The running thread going on at once is not explored.
void thread_yield(SourceLoc loc);

// ---- RaceCell accesses ----

enum class CellAccess : uint8_t { kRead, kWrite, kConstruct, kDestroy };

struct CellAccessRecord {
  uint32_t clock = 0;  // 0: none in this execution
  const char* file = nullptr;
  int line = 0;
};

struct CellLink {
  uint64_t execution = 0;
  uint32_t id = 0;
  int8_t writer = -1;                 // the thread of the last write, or -1
  CellAccessRecord write;             // that write
  CellAccessRecord reads[kMaxThreads];  // each thread's last read since that write
};

// Checks one access against the others with vector clocks: a write that
// does not happen after every earlier access, or a read that does not
// happen after the last write, is a reported data race. Not a scheduling
// point: a race is found whatever the interleaving, as long as both
// accesses happen in the execution.
void cell_access(CellLink& link, const void* cell, CellAccess access, SourceLoc loc);

// ---- Allocations ----

// Allocations made between pause and resume on this thread are not
// tracked (ThreadLifetimeAllocation); frees are still checked.
void pause_allocation_tracking() noexcept;
void resume_allocation_tracking() noexcept;

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_HOOKS_H_
