#include "executor/blocking/blocking_pool.h"

#include <cerrno>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "future/internal/mutex.h"
#include "future/internal/thread.h"

namespace pollux::blocking {

struct BlockingPool::Shared {
  explicit Shared(BlockingPoolOptions o) : options(o) {
    if (options.max_threads == 0) options.max_threads = 1;
  }

  BlockingPoolOptions options;
  detail::Mutex mu;
  detail::CondVar work_cv;  // idle threads wait here for a job
  detail::CondVar exit_cv;  // shutdown waits here for the last thread
  BlockingJob* head ABSL_GUARDED_BY(mu) = nullptr;
  BlockingJob* tail ABSL_GUARDED_BY(mu) = nullptr;
  size_t queued ABSL_GUARDED_BY(mu) = 0;
  size_t threads ABSL_GUARDED_BY(mu) = 0;
  size_t idle ABSL_GUARDED_BY(mu) = 0;
  // Notifications sent to idle threads and not yet taken: an idle thread
  // that was notified counts as busy, or two quick submits would both pick
  // the same sleeping thread instead of starting a second one (tokio keeps
  // the same count).
  size_t notified ABSL_GUARDED_BY(mu) = 0;
  size_t running ABSL_GUARDED_BY(mu) = 0;
  // Threads shutdown_until detached (their handles dropped from `live`)
  // that have not exited yet; shutdown waits for `threads - detached`.
  size_t detached ABSL_GUARDED_BY(mu) = 0;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  uint64_t spawned ABSL_GUARDED_BY(mu) = 0;
  uint64_t completed ABSL_GUARDED_BY(mu) = 0;
  uint64_t next_id ABSL_GUARDED_BY(mu) = 0;
  // Live threads by id; a thread that exits moves its own handle to
  // `exited`, where the next submit() or shutdown() joins it (a thread
  // cannot join itself).
  std::unordered_map<uint64_t, detail::Thread> live ABSL_GUARDED_BY(mu);
  int spawn_error ABSL_GUARDED_BY(mu) = EAGAIN;  // why the last spawn_thread() failed
  std::vector<detail::Thread> exited ABSL_GUARDED_BY(mu);

  BlockingJob* pop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    BlockingJob* j = head;
    if (j == nullptr) return nullptr;
    head = j->next_;
    if (head == nullptr) tail = nullptr;
    j->next_ = nullptr;
    --queued;
    return j;
  }
  void push(BlockingJob* j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    j->next_ = nullptr;
    if (tail == nullptr) {
      head = j;
    } else {
      tail->next_ = j;
    }
    tail = j;
    ++queued;
  }

  // Joins the threads that have exited (outside the lock: a join waits for
  // the thread's last instructions after it unlocked).
  void join_exited() {
    std::vector<detail::Thread> done;
    {
      detail::MutexLock lock(mu);
      done.swap(exited);
    }
    for (detail::Thread& t : done) t.join();
  }

  // Starts a thread; false when the system refuses one.
  bool spawn_thread(std::shared_ptr<Shared> self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const uint64_t id = next_id++;
    // Started under the lock (as tokio does): the new thread's first step
    // is to take the lock, so it cannot look for its own handle in `live`
    // before it is there.
    // Piecewise: the map's node is allocated before the thread starts, so
    // a failed allocation never destroys a running (joinable) thread, which
    // would terminate the process (found by tests/alloc_failure_test).
    // The buckets too: reserve() rehashes now, so emplace() cannot.
    try {
      live.reserve(live.size() + 1);
      // SAFETY: the thread holds `self`, so a thread detached by
      // shutdown_until keeps this state alive after the pool is gone.
      live.emplace(std::piecewise_construct, std::forward_as_tuple(id),
                   std::forward_as_tuple([self = std::move(self), id] { self->worker(id); }));
    } catch (const std::system_error&) {
      spawn_error = EAGAIN;
      return false;
    } catch (const std::bad_alloc&) {
      spawn_error = ENOMEM;  // what submit() reports: no thread, for want of memory
      return false;
    }
    ++threads;
    ++spawned;
    return true;
  }

  void worker(uint64_t id) {
    mu.lock();
    for (;;) {
      while (BlockingJob* job = pop()) {
        const bool abandon = shut_down;
        ++running;
        mu.unlock();
        // After this call the job may be gone: it owns itself.
        if (abandon) {
          job->abandon();
        } else {
          job->run();
        }
        mu.lock();
        --running;
        ++completed;
      }
      if (shut_down) break;
      ++idle;
      const bool timed_out = work_cv.wait_for(mu, options.keep_alive);
      --idle;
      if (notified > 0) {
        --notified;  // our notification (or one we take over: the job is there)
        continue;
      }
      if (shut_down || head != nullptr) continue;
      if (timed_out) break;  // idle for keep_alive: exit
      // A spurious wake-up: wait again.
    }
    --threads;
    auto it = live.find(id);
    if (it != live.end()) {
      exited.push_back(std::move(it->second));
      live.erase(it);
    } else {
      --detached;  // shutdown_until let it go: nobody joins it
    }
    if (threads == detached) exit_cv.notify_all();
    mu.unlock();
  }
};

BlockingPool::BlockingPool(BlockingPoolOptions options)
    : shared_(std::make_shared<Shared>(options)) {}

BlockingPool::~BlockingPool() { shutdown(); }

bool BlockingPool::submit(BlockingJob* job) {
  bool joined_needed;
  {
    detail::MutexLock lock(shared_->mu);
    if (shared_->shut_down) return false;
    if (shared_->idle > shared_->notified) {
      shared_->push(job);
      ++shared_->notified;
      shared_->work_cv.notify_one();
    } else if (shared_->threads < shared_->options.max_threads && shared_->spawn_thread(shared_)) {
      shared_->push(job);
    } else if (shared_->threads > 0) {
      // Every thread is busy (or none could be started): the job waits for
      // the first one that finishes.
      shared_->push(job);
    } else {
      // Only reached when spawn_thread() failed just now; it says why.
      errno = shared_->spawn_error;
      return false;
    }
    joined_needed = !shared_->exited.empty();
  }
  if (joined_needed) shared_->join_exited();
  return true;
}

void BlockingPool::shutdown() {
  {
    detail::MutexLock lock(shared_->mu);
    shared_->shut_down = true;
    shared_->work_cv.notify_all();
    while (shared_->threads > shared_->detached) shared_->exit_cv.wait(shared_->mu);
  }
  shared_->join_exited();
}

size_t BlockingPool::shutdown_until(absl::Time deadline) {
  std::vector<detail::Thread> let_go;
  size_t still_running = 0;
  {
    detail::MutexLock lock(shared_->mu);
    shared_->shut_down = true;
    shared_->work_cv.notify_all();
    while (shared_->threads > shared_->detached) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      shared_->exit_cv.wait_for(shared_->mu, left);
    }
    if (shared_->threads > shared_->detached) {
      // Out of time: the threads still here finish their job (or, idle,
      // just exit) on their own; none of them is joined.
      for (auto& [id, t] : shared_->live) let_go.push_back(std::move(t));
      shared_->live.clear();
      shared_->detached = shared_->threads;
    }
    still_running = shared_->running;
  }
  for (detail::Thread& t : let_go) t.detach();
  shared_->join_exited();
  return still_running;
}

BlockingPoolStats BlockingPool::stats() const {
  detail::MutexLock lock(shared_->mu);
  BlockingPoolStats s;
  s.threads = shared_->threads;
  s.idle_threads = shared_->idle;
  s.queued = shared_->queued;
  s.running = shared_->running;
  s.detached = shared_->detached;
  s.spawned = shared_->spawned;
  s.completed = shared_->completed;
  return s;
}

}  // namespace pollux::blocking
