// ThreadPerCore: the cores of Runtime::Builder().thread_per_core(n)
// (DESIGN §4): n threads, each a LocalExecutor with its own backend and
// timer wheel, no stealing. A task spawned onto a core runs there for its
// whole life; other threads reach a core through its LocalScheduler's
// inject queue plus one unpark (an eventfd write only when the core
// sleeps).
//
// Each core thread: pins itself to its CPU (when asked), enters its
// context (backend, timers, core index), runs on_start, then block_on of a
// future that ends when the runtime stops. Shutdown (stop_and_join): that
// future is woken on every core; each core's LocalExecutor then drops its
// unfinished tasks on its own thread, runs on_stop (drain the ring), and
// the thread exits; the caller joins them all.
//
// Thread-safety: scheduler(), status() from any thread; stop_and_join()
// from a thread that is not a core.
#ifndef POLLUX_RUNTIME_INTERNAL_THREAD_PER_CORE_H_
#define POLLUX_RUNTIME_INTERNAL_THREAD_PER_CORE_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "executor/internal/local_scheduler.h"
#include "executor/internal/schedule.h"
#include "executor/multi_thread/scheduler.h"
#include "future/internal/mutex.h"
#include "future/internal/thread.h"
#include "future/waker.h"

namespace pollux::detail {

class ThreadPerCore {
 public:
  // Starts one core per config (WorkerConfig: the same resources a
  // multi_thread worker gets) and returns once every core's executor is up.
  explicit ThreadPerCore(std::vector<WorkerConfig> cores);
  ~ThreadPerCore();  // stop_and_join()
  ThreadPerCore(const ThreadPerCore&) = delete;
  ThreadPerCore& operator=(const ThreadPerCore&) = delete;

  size_t size() const noexcept { return cores_.size(); }
  // Core `i`'s scheduler (valid until the last reference to it goes).
  Schedule* scheduler(size_t i) const noexcept { return cores_[i].scheduler; }
  // Tasks woken or spawned onto core `i` from other threads and not yet
  // adopted (for metrics; takes that core's inject lock).
  size_t injected_len(size_t i) const noexcept { return cores_[i].local->injected_len(); }
  // OK, or the first error that stopped a core (its on_start, or its Park).
  absl::Status status() const;
  void stop_and_join();

 private:
  struct Core {
    WorkerConfig config;
    Schedule* scheduler = nullptr;  // one reference held, set once running
    LocalScheduler* local = nullptr;  // the same scheduler
  };
  class UntilStopped;

  void run_core(size_t index);
  void record_failure(absl::Status s);

  std::vector<Core> cores_;
  std::vector<Thread> threads_;
  mutable Mutex mu_;
  CondVar started_cv_;
  size_t started_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Waker> stop_wakers_ ABSL_GUARDED_BY(mu_);
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pollux::detail

#endif  // POLLUX_RUNTIME_INTERNAL_THREAD_PER_CORE_H_
