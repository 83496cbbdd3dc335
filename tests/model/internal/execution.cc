#include "tests/model/internal/execution.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include "tests/model/internal/report.h"

namespace pollux::model::internal {

namespace {

Execution* g_current = nullptr;
// Process-wide, so links left in long-lived objects by an earlier
// model::check are stale in a later one too.
uint64_t g_execution_numbers = 0;

thread_local bool t_model_thread = false;  // running a model thread's body
thread_local int t_checker_depth = 0;      // inside checker code (CheckerScope)
thread_local int t_lifetime_depth = 0;     // inside a ThreadLifetimeAllocation

}  // namespace

Execution* current_execution() noexcept { return g_current; }

bool in_execution() noexcept { return t_model_thread; }

CheckerScope::CheckerScope() noexcept { ++t_checker_depth; }
CheckerScope::~CheckerScope() { --t_checker_depth; }

bool tracking_allocations() noexcept {
  return t_model_thread && t_checker_depth == 0 && t_lifetime_depth == 0;
}
bool checking_frees() noexcept { return t_model_thread && t_checker_depth == 0; }

void pause_allocation_tracking() noexcept { ++t_lifetime_depth; }
void resume_allocation_tracking() noexcept { --t_lifetime_depth; }

Execution::Execution() {
  pthread_getaffinity_np(pthread_self(), sizeof controller_cpus_, &controller_cpus_);
  for (int i = 0; i < kMaxThreads; ++i) {
    workers_[i] = std::make_unique<Worker>();
    workers_[i]->os_thread = std::thread([this, i] { worker_main(i); });
  }
  pin_to(sched_getcpu());
}

Execution::~Execution() {
  stopping_ = true;
  for (auto& w : workers_) {
    w->baton.give();
    w->os_thread.join();
  }
  pthread_setaffinity_np(pthread_self(), sizeof controller_cpus_, &controller_cpus_);
  if (g_current == this) g_current = nullptr;
}

// The pool and the controller run on one CPU: only one of them runs at a
// time, and a hand-off to a thread on the same CPU is a plain context
// switch, several times cheaper than waking one on another CPU (hand-offs
// are most of the checker's cost).
void Execution::pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  for (auto& w : workers_) pthread_setaffinity_np(w->os_thread.native_handle(), sizeof one, &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
  pool_cpu_ = cpu;
}

void Execution::place_pool() {
  // Now and then, let the kernel place the controller freely: woken from a
  // short sleep it lands on an idle CPU if ours is busy (another checker
  // pinned there, say), and the pool follows.
  constexpr uint64_t kExecutionsPerProbe = 512;
  if (runs_ % kExecutionsPerProbe != 0) return;
  pthread_setaffinity_np(pthread_self(), sizeof controller_cpus_, &controller_cpus_);
  std::this_thread::sleep_for(std::chrono::microseconds(50));
  const int cpu = sched_getcpu();
  pin_to(cpu >= 0 ? cpu : pool_cpu_);
}

void Execution::worker_main(int id) {
  for (;;) {
    workers_[id]->baton.take();
    if (stopping_) return;
    run_thread(id);
  }
}

void Execution::run(ThreadBody main, const ExecutionLimits& limits, Exploration& exploration) {
  place_pool();
  limits_ = limits;
  exploration_ = &exploration;
  exploration.begin_execution();
  number_ = ++g_execution_numbers;
  ++runs_;
  step_ = 0;
  preemptions_ = 0;
  wait_tickets_ = 0;
  trace_.clear();
  memory_.reset();
  for (ModelThread& t : threads_) t = ModelThread();
  threads_[0].status = ThreadStatus::kRunnable;
  threads_[0].body = main;
  threads_[0].memory.clock.tick(0);
  thread_count_ = 1;
  running_ = 0;
  g_current = this;
  workers_[0]->baton.give();
  done_.take();
}

void Execution::run_thread(int id) {
  ModelThread& t = threads_[id];
  t_model_thread = true;
  try {
    t.body.run(t.body.context);
  } catch (const std::exception& e) {
    report_failure(FailureKind::kAssertion, "uncaught exception in model thread T" +
                                                std::to_string(id) + ": " + e.what());
  } catch (...) {
    report_failure(FailureKind::kAssertion,
                   "uncaught exception in model thread T" + std::to_string(id));
  }
  // Still a model thread: what the body's captures free is checked too.
  if (t.body.destroy != nullptr) t.body.destroy(t.body.context);
  t.body = ThreadBody{nullptr, nullptr, nullptr};
  t_model_thread = false;
  finish_running();
}

void Execution::finish_running() {
  CheckerScope scope;
  const int me = running_;
  threads_[me].status = ThreadStatus::kFinished;
  record(TraceEvent{.op = "finish"});
  for (int i = 0; i < thread_count_; ++i) {
    if (threads_[i].status == ThreadStatus::kJoining && threads_[i].joining == me) {
      make_runnable(i);
    }
  }
  const int next = pick_next(/*current_runnable=*/false);
  if (next < 0) {
    for (int i = 0; i < thread_count_; ++i) {
      if (threads_[i].status != ThreadStatus::kFinished) report_deadlock();
    }
    done_.give();  // the execution is over; this pool thread waits for the next one
    return;
  }
  record(TraceEvent{.op = "switch", .other_thread = static_cast<int8_t>(next), .note = "finished"});
  running_ = next;
  workers_[next]->baton.give();
}

void Execution::scheduling_point() {
  if (step_ + 1 > limits_.max_steps) {
    report_failure(FailureKind::kStepBound,
                   "the execution exceeded max_steps = " + std::to_string(limits_.max_steps) +
                       " scheduling points (a livelock, a spin loop that never sees progress, "
                       "or a model too large for the bound)");
  }
  const int me = running_;
  const int next = pick_next(/*current_runnable=*/true);
  if (next != me) switch_to(next, "preemption");
  // Counted once this thread goes on: each operation's step is its
  // position in the execution (the order seq_cst operations share).
  ++step_;
}

void Execution::yield_point(SourceLoc loc) {
  if (step_ + 1 > limits_.max_steps) {
    report_failure(FailureKind::kStepBound,
                   "the execution exceeded max_steps = " + std::to_string(limits_.max_steps) +
                       " scheduling points (a livelock, a spin loop that never sees progress, "
                       "or a model too large for the bound)");
  }
  const int me = running_;
  int others[kMaxThreads];
  int n = 0;
  for (int i = 0; i < thread_count_; ++i) {
    if (i != me && threads_[i].status == ThreadStatus::kRunnable) others[n++] = i;
  }
  record(TraceEvent{.op = "yield", .note = n == 0 ? "nobody else can run" : nullptr, .loc = loc});
  if (n > 0) {
    // Not a preemption: the yielding thread asked for it, and its going on
    // would only repeat the wait.
    const int next = others[n == 1 ? 0 : choose(ChoiceKind::kSchedule, static_cast<uint32_t>(n))];
    switch_to(next, "yield");
  }
  // Time has passed for this thread: what was stored meanwhile is visible
  // now (memory_model.h).
  running().memory.yield_visible_step = step_;
  ++step_;
}

void Execution::block() {
  const int next = pick_next(/*current_runnable=*/false);
  if (next < 0) report_deadlock();
  if (next != running_) switch_to(next, "blocked");
}

int Execution::pick_next(bool current_runnable) {
  const int me = running_;
  const bool may_preempt = preemptions_ < limits_.max_preemptions;
  if (current_runnable && !may_preempt) return me;
  // Alternative 0 continues the running thread: the first execution of
  // all is the sequential one.
  int candidates[2 * kMaxThreads];
  bool timeout[2 * kMaxThreads];
  int n = 0;
  if (current_runnable) {
    candidates[n] = me;
    timeout[n++] = false;
  }
  for (int i = 0; i < thread_count_; ++i) {
    if (i != me && threads_[i].status == ThreadStatus::kRunnable) {
      candidates[n] = i;
      timeout[n++] = false;
    }
  }
  // Timeouts come last. Time passes for free when no thread can run (the
  // process is idle); a timeout while threads can run is a preemption, so
  // that a wait_for loop cannot time out without bound.
  const bool idle = n == 0;
  if (idle || may_preempt) {
    for (int i = 0; i < thread_count_; ++i) {
      if (threads_[i].status == ThreadStatus::kWaitingOnCondVar && threads_[i].timed) {
        candidates[n] = i;
        timeout[n++] = true;
      }
    }
  }
  if (n == 0) return -1;
  const uint32_t pick = n == 1 ? 0 : choose(ChoiceKind::kSchedule, static_cast<uint32_t>(n));
  const int next = candidates[pick];
  if ((current_runnable && next != me) || (timeout[pick] && !idle)) ++preemptions_;
  if (timeout[pick]) {
    threads_[next].status = ThreadStatus::kRunnable;
    threads_[next].timed_out = true;
  }
  return next;
}

void Execution::switch_to(int next, const char* why) {
  const int me = running_;
  const bool timed_out = threads_[next].timed_out && threads_[next].timed;
  record(TraceEvent{.op = "switch",
                    .other_thread = static_cast<int8_t>(next),
                    .note = timed_out ? "its wait_for timed out" : why});
  running_ = next;
  workers_[next]->baton.give();
  workers_[me]->baton.take();
  // Whoever handed the baton back set running_ to this thread.
}

int Execution::spawn(ThreadBody body, SourceLoc loc) {
  scheduling_point();
  if (thread_count_ == kMaxThreads) {
    report_failure(FailureKind::kMisuse, "a model may start at most " +
                                             std::to_string(kMaxThreads - 1) +
                                             " threads besides its body's");
  }
  const int me = running_;
  const int id = thread_count_++;
  ModelThread& parent = threads_[me];
  parent.memory.clock.tick(me);
  ModelThread& child = threads_[id];
  child = ModelThread();
  child.status = ThreadStatus::kRunnable;
  child.body = body;
  // Everything the parent did so far happens before the child's first operation.
  child.memory.clock = parent.memory.clock;
  child.memory.clock.tick(id);
  record(TraceEvent{.op = "spawn",
                    .object_kind = ObjectKind::kThread,
                    .other_thread = static_cast<int8_t>(id),
                    .loc = loc});
  return id;
}

std::string Execution::describe_threads() const {
  std::string out;
  for (int i = 0; i < thread_count_; ++i) {
    const ModelThread& t = threads_[i];
    char line[256];
    const char* file = short_file(t.blocked_at.file);
    switch (t.status) {
      case ThreadStatus::kUnused:
        continue;
      case ThreadStatus::kRunnable:
        std::snprintf(line, sizeof line, "    T%d: runnable%s\n", i, i == running_ ? " (running)" : "");
        break;
      case ThreadStatus::kBlockedOnMutex:
        std::snprintf(line, sizeof line, "    T%d: blocked locking mutex#%u, held by T%d (at %s:%d)\n",
                      i, t.waiting_for_object, t.mutex_owner, file, t.blocked_at.line);
        break;
      case ThreadStatus::kWaitingOnCondVar:
        std::snprintf(line, sizeof line, "    T%d: waiting on condvar#%u%s (at %s:%d)\n", i,
                      t.waiting_for_object, t.timed ? " with a timeout" : ", never notified", file,
                      t.blocked_at.line);
        break;
      case ThreadStatus::kJoining:
        std::snprintf(line, sizeof line, "    T%d: joining T%d (at %s:%d)\n", i, t.joining, file,
                      t.blocked_at.line);
        break;
      case ThreadStatus::kFinished:
        std::snprintf(line, sizeof line, "    T%d: finished\n", i);
        break;
    }
    out += line;
  }
  return out;
}

void Execution::report_deadlock() {
  report_failure(FailureKind::kDeadlock,
                 "no thread can run and not every thread has finished (a lost wake-up, "
                 "a lock-order inversion, a join that never returns); see the threads below");
}

}  // namespace pollux::model::internal
