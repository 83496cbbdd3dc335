// BlockingPool: threads for work that must block (DESIGN §4, §6: "no
// operation blocks a worker thread"). Today the epoll backend runs its file
// operations here (reactor/epoll/); spawn_blocking (issue 12) is meant to
// put its JoinHandle API on the same core.
//
//   class StatJob final : public BlockingJob {
//     void run() noexcept override { ...; post_result_and_maybe_delete_this(); }
//   };
//   if (!pool.submit(job)) { /* the pool is shut down: the job is still ours */ }
//
// The core is a small, general job queue:
// - Bounded and growing: a job goes to an idle thread if there is one, else
//   to a new thread while fewer than Options::max_threads (default 512, as
//   tokio) run, else it waits in the FIFO queue.
// - An idle thread exits after Options::keep_alive (default 10 s) with no
//   job, so a pool that was busy once costs nothing later.
// - Jobs own their memory. submit() hands the job over; the pool calls
//   exactly one of run() or abandon() on it, once, and never touches it
//   again, so a job frees (or keeps) itself. Nothing the pool does depends on
//   a job's owner still existing: an owner that is gone before its job
//   finishes (the epoll backend after its bounded drain) leaves the job to
//   deal with its own memory.
//
// Shutdown (shutdown() or the destructor): submit() returns false from then
// on; jobs still queued get abandon() (default: run(); a job that is only
// useful to an owner that is going away overrides it); the call returns when
// every thread has exited, so it waits for running jobs without limit
// (DESIGN §9: dropping the runtime waits for the blocking pool).
// shutdown_until(deadline) waits only until `deadline`: the threads still
// running a job then are detached (a job cannot be interrupted) and finish it
// on their own, keeping the pool's shared state alive until they exit; it
// returns how many jobs were still running. A later shutdown() does not
// wait for detached threads.
//
// Thread-safety: every member is thread-safe. run() and abandon() are called
// on pool threads, never under the pool's lock.
#ifndef POLLUX_EXECUTOR_BLOCKING_BLOCKING_POOL_H_
#define POLLUX_EXECUTOR_BLOCKING_BLOCKING_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"

namespace pollux::blocking {

// One unit of blocking work. The submitter allocates it; after submit()
// returned true only the job itself may free it (from run() or abandon()).
class BlockingJob {
 public:
  virtual ~BlockingJob() = default;
  // Does the work, then hands the result on. Must not throw.
  virtual void run() noexcept = 0;
  // Called instead of run() for a job still queued at shutdown.
  virtual void abandon() noexcept { run(); }

 private:
  friend class BlockingPool;
  BlockingJob* next_ = nullptr;  // the pool's queue link (under its lock)
};

// Limits of a BlockingPool: most threads at once, and how long an idle one
// lingers.
struct BlockingPoolOptions {
  size_t max_threads = 512;
  absl::Duration keep_alive = absl::Seconds(10);
};

// Counters for tests and metrics (a consistent snapshot, taken under the lock).
struct BlockingPoolStats {
  size_t threads = 0;        // alive now
  size_t idle_threads = 0;   // waiting for a job
  size_t queued = 0;         // jobs waiting for a thread
  size_t running = 0;        // jobs in run() or abandon() now (detached threads too)
  size_t detached = 0;       // threads a bounded shutdown left running, not exited yet
  uint64_t spawned = 0;      // threads ever started
  uint64_t completed = 0;    // jobs run or abandoned
};

// Threads that run BlockingJobs (see above); shutdown or destruction waits for
// them.
class BlockingPool {
 public:
  explicit BlockingPool(BlockingPoolOptions options = {});
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues `job`; true when the pool took it. False after shutdown (the
  // caller still owns the job) or when no thread could be started and none
  // exists to run it later (the caller still owns it; errno says why).
  [[nodiscard]] bool submit(BlockingJob* job);

  // Stops taking jobs, abandons the queued ones and waits for every thread
  // to exit (see the header comment). Idempotent.
  void shutdown();
  // As shutdown(), but waits for running jobs only until `deadline`, then
  // detaches the threads still running one (see the header comment).
  // Returns the jobs still running then (0: every thread has exited).
  // Idempotent; a second call waits for nothing already detached.
  size_t shutdown_until(absl::Time deadline);

  BlockingPoolStats stats() const;

 private:
  struct Shared;
  // Shared with every pool thread: a thread detached by shutdown_until
  // may outlive the pool.
  std::shared_ptr<Shared> shared_;
};

}  // namespace pollux::blocking

#endif  // POLLUX_EXECUTOR_BLOCKING_BLOCKING_POOL_H_
