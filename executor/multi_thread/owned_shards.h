// ShardedOwnedTasks: every not-yet-complete task of a multi_thread
// scheduler, so that shutdown can find and drop every future (DESIGN §4).
//
// One locked shard per worker: a worker binds the tasks it spawns into its
// own shard, so spawns on different workers never share a lock; a task's
// shard index lives in its trailer, so removing it (at completion, on
// whichever worker polled it last) locks only that shard. Spawns from
// other threads go to the shards in turn. bind() checks `closed` under the
// shard lock: after close_all() no task can be added, so the shutdown walk
// cannot miss one.
//
// Task ids: 64-bit, never reused, without a global atomic per spawn: the
// spawning worker's index in the high 16 bits and its own counter below
// (spawns from other threads use index `workers` and one shared counter).
//
// Each shard's list holds one reference per task (TaskState's owned-list
// reference), dropped by whoever removes the task.
//
// Thread-safety: every member from any thread.
#ifndef POLLUX_EXECUTOR_MULTI_THREAD_OWNED_SHARDS_H_
#define POLLUX_EXECUTOR_MULTI_THREAD_OWNED_SHARDS_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "executor/internal/owned_tasks.h"
#include "executor/internal/task.h"
#include "executor/internal/task_list.h"
#include "future/internal/spin_lock.h"

namespace pollux::detail {

class ShardedOwnedTasks {
 public:
  explicit ShardedOwnedTasks(uint32_t shards)
      : count_(shards), shards_(std::make_unique<Shard[]>(shards)) {}
  ShardedOwnedTasks(const ShardedOwnedTasks&) = delete;
  ShardedOwnedTasks& operator=(const ShardedOwnedTasks&) = delete;

  static constexpr int kWorkerIdShift = 48;
  static uint64_t make_id(uint32_t worker, uint64_t counter) noexcept {
    return (uint64_t{worker} << kWorkerIdShift) | counter;
  }

  // Adds a task that is in no list to shard `shard` with id `id`; false
  // (the task not added) once closed.
  bool bind(Header* task, uint32_t shard, uint64_t id) noexcept {
    Trailer* t = trailer_of(task);
    t->owned_shard = static_cast<uint16_t>(shard);  // < 1024 (Runtime::Builder)
    t->id = id;
    Shard& s = shards_[shard];
    SpinLockHolder lock(s.mu);
    if (s.closed) return false;
    s.list.bind(task);
    return true;
  }
  // Removes a task; false when it is in no list (never bound, or taken by
  // the shutdown walk).
  bool remove(Header* task) noexcept {
    Shard& s = shards_[trailer_of(task)->owned_shard];
    SpinLockHolder lock(s.mu);
    return s.list.remove(task);
  }
  // Refuses further binds, in every shard.
  void close_all() noexcept {
    for (uint32_t i = 0; i < count_; ++i) {
      SpinLockHolder lock(shards_[i].mu);
      shards_[i].closed = true;
    }
  }
  // Shutdown: moves every task of shard `shard` for which `pred(task)` holds
  // into `out` (through Header::queue_next: no task is in a run queue by
  // then); the caller owns their list references.
  template <class Pred>
  void take_if(uint32_t shard, Pred pred, TaskList& out) noexcept {
    Shard& s = shards_[shard];
    SpinLockHolder lock(s.mu);
    Header* h = s.list.front();
    while (h != nullptr) {
      Header* next = trailer_of(h)->owned_next;
      if (pred(h)) {
        s.list.remove(h);
        out.push_back(h);
      }
      h = next;
    }
  }
  // fn(task) for every task, each shard under its lock (see
  // MultiThreadScheduler::for_each_task).
  template <class Fn>
  void for_each(Fn& fn) const {
    for (uint32_t i = 0; i < count_; ++i) {
      SpinLockHolder lock(shards_[i].mu);
      for (Header* h = shards_[i].list.front(); h != nullptr; h = trailer_of(h)->owned_next) fn(h);
    }
  }
  // Tasks in every shard (a snapshot).
  size_t size() const noexcept {
    size_t n = 0;
    for (uint32_t i = 0; i < count_; ++i) {
      SpinLockHolder lock(shards_[i].mu);
      n += shards_[i].list.size();
    }
    return n;
  }
  uint32_t shard_count() const noexcept { return count_; }

 private:
  // A cache line each: workers lock their own shards side by side. A spin
  // lock: the sections are a few pointer writes, and a bind on one worker
  // often meets the remove of a task that finished on another.
  struct alignas(64) Shard {
    mutable SpinLock mu;
    LocalOwnedTasks list ABSL_GUARDED_BY(mu);
    bool closed ABSL_GUARDED_BY(mu) = false;
  };
  const uint32_t count_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_MULTI_THREAD_OWNED_SHARDS_H_
