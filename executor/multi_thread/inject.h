// InjectQueue: the multi_thread scheduler's global FIFO of stealable tasks:
// spawns and wakes from threads that are not its workers, and the half of a
// worker's local queue that overflowed (local_queue.h). Every worker takes
// from it: every global_queue_interval polls, and whenever its own queues
// run dry (a batch at a time).
//
// A mutex-guarded intrusive list, as in tokio: a push is one uncontended
// lock on the paths that use it (a remote wake, an overflow of 128 tasks);
// len() is an atomic, so the workers' "is there anything?" checks take no
// lock. Each hand-off carries RUNNING's ownership (DESIGN §4) through the
// mutex.
//
// Closing (shutdown step 1) refuses further pushes: the caller keeps the
// task and disposes of it (schedule.h's rule: a wake drops its reference,
// a spawn is cancelled).
//
// Thread-safety: every member from any thread.
#ifndef POLLUX_EXECUTOR_MULTI_THREAD_INJECT_H_
#define POLLUX_EXECUTOR_MULTI_THREAD_INJECT_H_

#include <atomic>
#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "executor/internal/task.h"
#include "executor/internal/task_list.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"

namespace pollux::detail {

class InjectQueue {
 public:
  InjectQueue() = default;
  InjectQueue(const InjectQueue&) = delete;
  InjectQueue& operator=(const InjectQueue&) = delete;

  // Queues `task`; false (the task not taken) once closed.
  bool push(Header* task) noexcept {
    MutexLock lock(mu_);
    if (closed_) return false;
    list_.push_back(task);
    publish_len();
    return true;
  }
  // Queues all of `batch`; false (the batch left as it was) once closed.
  bool push_batch(TaskList& batch) noexcept {
    MutexLock lock(mu_);
    if (closed_) return false;
    list_.append(batch);
    publish_len();
    return true;
  }
  // The oldest task, or null.
  Header* pop() noexcept {
    if (is_empty()) return nullptr;
    MutexLock lock(mu_);
    Header* h = list_.pop_front();
    publish_len();
    return h;
  }
  // Moves up to `max` of the oldest tasks to `out`; returns how many.
  size_t pop_batch(TaskList& out, size_t max) noexcept {
    if (is_empty() || max == 0) return 0;
    MutexLock lock(mu_);
    size_t n = 0;
    for (; n < max; ++n) {
      Header* h = list_.pop_front();
      if (h == nullptr) break;
      out.push_back(h);
    }
    publish_len();
    return n;
  }

  size_t len() const noexcept {
    // acquire: pairs with publish_len's release, so a worker that sees a
    // nonzero length and takes the lock finds the tasks (the lock orders
    // them anyway; this keeps the lock-free check honest under TSan).
    return len_.load(std::memory_order_acquire);
  }
  bool is_empty() const noexcept { return len() == 0; }

  // Refuses further pushes and hands back what is queued.
  void close(TaskList& leftover) noexcept {
    MutexLock lock(mu_);
    closed_ = true;
    leftover.append(list_);
    publish_len();
  }
  bool is_closed() const noexcept {
    MutexLock lock(mu_);
    return closed_;
  }

 private:
  void publish_len() noexcept ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // release: see len().
    len_.store(list_.size(), std::memory_order_release);
  }

  mutable Mutex mu_;
  TaskList list_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  Atomic<size_t> len_{0};
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_MULTI_THREAD_INJECT_H_
