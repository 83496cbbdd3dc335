// Execution: one run of a model body under the checker's control.
//
// Model threads are real OS threads from a pool that lives as long as the
// Execution (one model::check call), so model thread i is always pool
// thread i and thread_locals behave as in production (they persist from
// one execution to the next, as they would across a thread's tasks). Only
// one model thread runs at a time: it holds the baton (internal/baton.h),
// and hands it over at a scheduling point, when it blocks, or
// when it finishes.
//
// Scheduling: before each instrumented operation the running thread calls
// scheduling_point(). Continuing is alternative 0; switching to another
// runnable thread (or ending a timed wait by its timeout) is a preemption,
// allowed while fewer than max_preemptions were made in this execution.
// When the running thread blocks (a held mutex, a condition variable, a
// join) or finishes, the switch to any runnable thread is free. No runnable
// thread while some have not finished is a deadlock.
//
// Thread-safety: everything here is touched by the thread holding the
// baton only (or by the controller while no model thread runs); the
// semaphores' release/acquire orders those accesses.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_EXECUTION_H_
#define POLLUX_TESTS_MODEL_INTERNAL_EXECUTION_H_

#include <sched.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "tests/model/internal/baton.h"
#include "tests/model/internal/exploration.h"
#include "tests/model/internal/hooks.h"
#include "tests/model/internal/memory_model.h"
#include "tests/model/internal/trace.h"
#include "tests/model/internal/vector_clock.h"

namespace pollux::model::internal {

enum class ThreadStatus : uint8_t {
  kUnused,
  kRunnable,
  kBlockedOnMutex,
  kWaitingOnCondVar,
  kJoining,
  kFinished,
};

struct ModelThread {
  ThreadStatus status = ThreadStatus::kUnused;
  const void* waiting_for = nullptr;  // the mutex or condition variable
  uint32_t waiting_for_object = 0;    // its number in the trace
  int8_t mutex_owner = -1;            // who held the mutex when this thread blocked on it
  int joining = -1;
  bool timed = false;      // a wait_for, which a timeout may end
  bool timed_out = false;  // how the last timed wait ended
  uint64_t wait_ticket = 0;  // FIFO order among a condition variable's waiters
  SourceLoc blocked_at{nullptr, 0};
  ThreadBody body{nullptr, nullptr, nullptr};
  ThreadMemory memory;
};

class Execution;
// The Execution of the model::check in progress, or null.
[[nodiscard]] Execution* current_execution() noexcept;

struct ExecutionLimits {
  int max_preemptions = 2;
  uint64_t max_steps = 0;
};

class Execution {
 public:
  // Starts the pool of kMaxThreads OS threads (idle until run()).
  Execution();
  // Stops and joins the pool.
  ~Execution();
  Execution(const Execution&) = delete;
  Execution& operator=(const Execution&) = delete;

  // ---- The controller (model::check's thread) ----

  // Runs `main` as model thread 0 of a new execution, following
  // `exploration`, and returns when every model thread has finished.
  void run(ThreadBody main, const ExecutionLimits& limits, Exploration& exploration);

  // ---- The running model thread (and reports) ----

  [[nodiscard]] int running_id() const noexcept { return running_; }
  [[nodiscard]] ModelThread& running() noexcept { return threads_[running_]; }
  [[nodiscard]] ModelThread& thread(int id) noexcept { return threads_[id]; }
  [[nodiscard]] const ModelThread& thread(int id) const noexcept { return threads_[id]; }
  [[nodiscard]] int thread_count() const noexcept { return thread_count_; }
  // Process-wide number of this execution (links of objects compare against it).
  [[nodiscard]] uint64_t number() const noexcept { return number_; }
  // Executions run by this Execution object so far (this one included).
  [[nodiscard]] uint64_t runs() const noexcept { return runs_; }
  [[nodiscard]] uint64_t step() const noexcept { return step_; }
  [[nodiscard]] int preemptions() const noexcept { return preemptions_; }
  [[nodiscard]] const ExecutionLimits& limits() const noexcept { return limits_; }
  [[nodiscard]] size_t choices() const noexcept { return exploration_->depth(); }
  [[nodiscard]] Trace& trace() noexcept { return trace_; }
  [[nodiscard]] const Trace& trace() const noexcept { return trace_; }
  [[nodiscard]] MemoryModel& memory() noexcept { return memory_; }

  // Before an operation of the running thread: may switch threads, then
  // numbers the operation (step()).
  void scheduling_point();
  // A spin-wait's yield (hooks.h's thread_yield): a free switch to another
  // runnable thread, if any, then numbers the operation.
  void yield_point(SourceLoc loc);
  // The start of every operation on a shim object: the scheduling point,
  // then the operation's own tick of its thread's clock (each operation has
  // a clock value of its own, see vector_clock.h). Returns the current
  // execution.
  static Execution& begin_operation() {
    Execution& e = *current_execution();
    e.scheduling_point();
    e.running().memory.clock.tick(e.running_id());
    return e;
  }
  // The running thread's status says why it cannot go on: runs other
  // threads until it is runnable again and scheduled (or, for a timed
  // wait, chosen to time out).
  void block();
  // Thread `id` may be able to go on (its mutex was unlocked, it was notified...).
  void make_runnable(int id) noexcept { threads_[id].status = ThreadStatus::kRunnable; }
  [[nodiscard]] int spawn(ThreadBody body, SourceLoc loc);
  [[nodiscard]] uint32_t choose(ChoiceKind kind, uint32_t alternatives) {
    return exploration_->choose(kind, alternatives);
  }
  [[nodiscard]] uint64_t next_wait_ticket() noexcept { return ++wait_tickets_; }
  void record(TraceEvent e) {
    e.step = step_;
    e.thread = static_cast<int8_t>(running_);
    trace_.record(e);
  }
  // One line per thread: what it is doing or waiting for (for reports).
  [[nodiscard]] std::string describe_threads() const;

 private:
  struct Worker {
    Baton baton;
    std::thread os_thread;
  };

  // Pins the pool and the controller to `cpu` (see execution.cc).
  void pin_to(int cpu);
  // Moves them to another CPU when theirs is busy (see execution.cc).
  void place_pool();
  void worker_main(int id);
  // Runs the body of model thread `id` on the calling pool thread.
  void run_thread(int id);
  // After the running thread's body returned: hands the baton on, or ends the execution.
  void finish_running();
  // The thread to run next, or -1 when none can. `current_runnable`: the
  // running thread could go on (switching away is then a preemption).
  [[nodiscard]] int pick_next(bool current_runnable);
  // Hands the baton to `next` and waits until it comes back.
  void switch_to(int next, const char* why);
  [[noreturn]] void report_deadlock();

  std::unique_ptr<Worker> workers_[kMaxThreads];
  cpu_set_t controller_cpus_;  // the controller's affinity before the check
  int pool_cpu_ = -1;          // the CPU the pool and the controller are pinned to
  Baton done_;
  bool stopping_ = false;

  ModelThread threads_[kMaxThreads];
  int thread_count_ = 0;
  int running_ = 0;
  uint64_t number_ = 0;
  uint64_t runs_ = 0;
  uint64_t step_ = 0;
  int preemptions_ = 0;
  uint64_t wait_tickets_ = 0;
  ExecutionLimits limits_;
  Exploration* exploration_ = nullptr;
  Trace trace_;
  MemoryModel memory_;
};

// Marks checker code on this thread: allocations in its scope are the
// checker's own bookkeeping, never tracked; frees are not checked.
class CheckerScope {
 public:
  CheckerScope() noexcept;
  ~CheckerScope();
  CheckerScope(const CheckerScope&) = delete;
  CheckerScope& operator=(const CheckerScope&) = delete;
};

// For the allocation tracker (tests/model/internal/allocation_tracker.cc):
// whether this thread's allocations, and its frees, are checked now.
[[nodiscard]] bool tracking_allocations() noexcept;
[[nodiscard]] bool checking_frees() noexcept;

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_EXECUTION_H_
