#include "runtime/internal/thread_per_core.h"

#include <pthread.h>
#include <sched.h>

#include <optional>
#include <string>
#include <utility>

#include "executor/context.h"
#include "executor/local_executor.h"
#include "future/assert.h"

namespace pollux::detail {

// block_on's root on each core: Ready once the runtime stops.
class ThreadPerCore::UntilStopped {
 public:
  using Output = void;
  UntilStopped(ThreadPerCore* owner, size_t index) : owner_(owner), index_(index) {}
  Poll<void> poll(Context& cx) {
    MutexLock lock(owner_->mu_);
    if (owner_->stopping_) return Ready{};
    owner_->stop_wakers_[index_] = cx.waker();
    return Pending{};
  }

 private:
  ThreadPerCore* owner_;
  size_t index_;
};

ThreadPerCore::ThreadPerCore(std::vector<WorkerConfig> cores) {
  cores_.resize(cores.size());
  for (size_t i = 0; i < cores.size(); ++i) cores_[i].config = std::move(cores[i]);
  {
    MutexLock lock(mu_);
    stop_wakers_.resize(cores_.size());
  }
  for (size_t i = 0; i < cores_.size(); ++i) threads_.emplace_back([this, i] { run_core(i); });
  MutexLock lock(mu_);
  while (started_ < cores_.size()) started_cv_.wait(mu_);
}

ThreadPerCore::~ThreadPerCore() {
  stop_and_join();
  for (Core& c : cores_) {
    if (c.scheduler != nullptr) c.scheduler->ref_dec();
  }
}

void ThreadPerCore::run_core(size_t index) {
  Core& core = cores_[index];
  if (core.config.cpu.has_value()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(*core.config.cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
      record_failure(absl::InvalidArgumentError("thread_per_core core " + std::to_string(index) +
                                                ": cannot pin to CPU " +
                                                std::to_string(*core.config.cpu)));
    }
  }
  RuntimeContext base = core.config.base;
  base.worker_index = static_cast<uint32_t>(index);
  RuntimeContext::Enter entered(base);
  absl::Status start = core.config.on_start ? core.config.on_start() : absl::OkStatus();
  std::optional<LocalExecutor> executor;
  // Owned by this thread from here on; counting into the runtime's counters.
  executor.emplace(*core.config.park, /*bind_lazily=*/false, core.config.counters);
  core.scheduler = executor->scheduler();
  // SAFETY: a LocalExecutor's scheduler is a LocalScheduler; the reference
  // taken below keeps it alive after the executor goes.
  core.local = static_cast<LocalScheduler*>(core.scheduler);
  core.scheduler->ref_inc();
  {
    MutexLock lock(mu_);
    ++started_;
    started_cv_.notify_all();
  }
  if (!start.ok()) {
    record_failure(std::move(start));
  } else {
    absl::StatusOr<Unit> ran = executor->try_block_on_in(base, UntilStopped(this, index));
    if (!ran.ok()) record_failure(ran.status());
  }
  executor.reset();  // drops every unfinished task's future here, on its core
  if (core.config.on_stop) core.config.on_stop();
}

void ThreadPerCore::stop_and_join() {
  const Schedule* here = RuntimeContext::current().scheduler;
  for (const Core& c : cores_) {
    POLLUX_CHECK(here == nullptr || here != c.scheduler,
                 "a thread_per_core runtime destroyed from one of its own cores");
  }
  std::vector<Waker> wakers;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    wakers.swap(stop_wakers_);
  }
  for (Waker& w : wakers) {
    if (w) std::move(w).wake();
  }
  for (Thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void ThreadPerCore::record_failure(absl::Status s) {
  std::vector<Waker> wakers;
  {
    MutexLock lock(mu_);
    if (failure_.ok()) failure_ = std::move(s);
    // A core that cannot run stops the runtime, as on multi_thread.
    stopping_ = true;
    wakers.swap(stop_wakers_);
  }
  for (Waker& w : wakers) {
    if (w) std::move(w).wake();
  }
}

absl::Status ThreadPerCore::status() const {
  MutexLock lock(mu_);
  return failure_;
}

}  // namespace pollux::detail
