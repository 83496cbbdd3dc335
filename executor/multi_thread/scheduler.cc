#include "executor/multi_thread/scheduler.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <utility>

#include "executor/internal/task_state.h"
#include "future/assert.h"
#include "future/internal/race_cell.h"

namespace pollux::detail {

// The worker thread's own state: nobody else reads or writes it.
struct MultiThreadScheduler::Core {
  Header* lifo_slot = nullptr;
  // Tasks pinned to this worker (never stolen), served alternately with the
  // stealable queue.
  TaskList pinned;
  bool pinned_turn = false;
  bool searching = false;
  uint32_t polls_since_inject = 0;
  uint32_t global_queue_interval = kInitialGlobalQueueInterval;
  // Mean poll time (ns), an exponentially weighted moving average sampled
  // every kTuneEveryTicks ticks: the clock is read twice per sample only.
  double mean_poll_ns = 0;
  uint32_t ticks = 0;
  uint64_t rng = 0;
  uint64_t next_task_id = 0;
  // References to the scheduler already counted, handed to cells spawned
  // here and given back by cells freed here (as LocalCore's bank): no
  // locked instruction on a line every worker shares, per spawn or free.
  // Only a count; returned when the worker exits.
  size_t banked_refs = 0;
  Budget budget;
};

struct alignas(64) MultiThreadScheduler::Worker {
  uint32_t index = 0;
  WorkerConfig config;
  std::shared_ptr<Unparker> unparker;
  // Any thread: stolen from, and pushed to by its own thread.
  LocalQueue run_queue;
  // Any thread: wakes of tasks pinned here from other threads, and tasks
  // spawned onto this worker (spawn_on) from elsewhere.
  Mutex remote_mu;
  TaskList remote ABSL_GUARDED_BY(remote_mu);
  bool remote_closed ABSL_GUARDED_BY(remote_mu) = false;
  Atomic<bool> remote_nonempty{false};
  // Written by the worker's thread only (WorkerCounters); config.counters,
  // or own_counters.
  WorkerCounters* counters = nullptr;
  WorkerCounters own_counters;
  // The worker's thread only.
  Core core;
};

namespace {

// The inject interval targets one look at the inject queue every 200 us of
// polling, as tokio does (TARGET_GLOBAL_QUEUE_INTERVAL), between 2 and 127.
constexpr double kTargetInjectIntervalNs = 200'000;
constexpr double kPollTimeEwmaAlpha = 0.1;
constexpr uint32_t kMinGlobalQueueInterval = 2;
constexpr uint32_t kMaxGlobalQueueInterval = 127;
constexpr uint32_t kTuneEveryTicks = 16;
constexpr size_t kBankedRefBatch = 64;
// At most this many tasks move from the inject queue to a worker at once.
constexpr size_t kMaxInjectBatch = 128;

uint64_t monotonic_ns() noexcept {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// xorshift64*: the victim choice needs speed, not quality.
uint32_t next_random(uint64_t& s) noexcept {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return static_cast<uint32_t>((s * 0x2545F4914F6CDD1DULL) >> 32);
}

}  // namespace

MultiThreadScheduler* MultiThreadScheduler::start(std::vector<WorkerConfig> workers) {
  POLLUX_CHECK(!workers.empty(), "a multi_thread scheduler needs at least one worker");
  auto* s = new MultiThreadScheduler(std::move(workers));
  MutexLock lock(s->mu_);
  for (uint32_t i = 0; i < s->count_; ++i) {
    s->threads_.emplace_back([s, i] { s->run_worker(i); });
  }
  return s;
}

MultiThreadScheduler::MultiThreadScheduler(std::vector<WorkerConfig> configs)
    : count_(static_cast<uint32_t>(configs.size())),
      workers_(std::make_unique<Worker[]>(configs.size())),
      idle_(count_),
      owned_(count_) {
  for (uint32_t i = 0; i < count_; ++i) {
    Worker& w = workers_[i];
    w.index = i;
    w.config = std::move(configs[i]);
    w.unparker = w.config.park->unparker();
    w.counters = w.config.counters != nullptr ? w.config.counters : &w.own_counters;
    w.core.rng = 0x9E3779B97F4A7C15ULL * (i + 1);
  }
}

MultiThreadScheduler::~MultiThreadScheduler() = default;

MultiThreadScheduler::Worker* MultiThreadScheduler::current_worker() noexcept {
  const RuntimeContext& ctx = RuntimeContext::current();
  return ctx.scheduler == this ? &workers_[ctx.worker_index] : nullptr;
}

// ---------------------------------------------------------------- scheduling

void MultiThreadScheduler::schedule(Header* task, ScheduleKind kind) noexcept {
  Worker* here = current_worker();
  switch (kind) {
    case ScheduleKind::kSpawn:
      spawn(task, here);
      return;
    case ScheduleKind::kSelfWake:
      // Still RUNNING, on the worker that just polled it: to the back of
      // its queue (a yield runs after what is queued), waking nobody.
      POLLUX_DCHECK(here != nullptr, "a self-wake off the polling worker");
      if (is_shutdown()) {
        abandon_queued_task(task);
        return;
      }
      push_local(*here, task, /*notify=*/false);
      return;
    case ScheduleKind::kWake:
      wake(task, here);
      return;
  }
}

void MultiThreadScheduler::drop_task_ref() noexcept {
  if (Worker* here = current_worker()) {
    ++here->core.banked_refs;
    return;
  }
  ref_dec();
}

void MultiThreadScheduler::spawn(Header* task, Worker* here) noexcept {
  // The cell's reference, given back by drop_task_ref when it is freed.
  if (here == nullptr) {
    ref_inc();
  } else {
    if (here->core.banked_refs == 0) {
      ref_inc(kBankedRefBatch);
      here->core.banked_refs = kBankedRefBatch;
    }
    --here->core.banked_refs;
  }
  uint32_t shard;
  uint64_t id;
  // relaxed: the cell is not shared yet.
  const bool pinned = task->pins.load(std::memory_order_relaxed) != 0;
  if (here != nullptr) {
    shard = pinned ? task->home : here->index;
    id = ShardedOwnedTasks::make_id(here->index, here->core.next_task_id++);
    // The spawning worker's tick time (no clock read); a spawn from
    // elsewhere has none (0: its age is unknown to the task dump).
    if (const TickClock* tick = RuntimeContext::current().tick) {
      trailer_of(task)->spawned_ms = tick->stamp_ms();
    }
  } else if (pinned) {
    POLLUX_CHECK(task->home < count_, "spawn_on(worker, f) with a worker the runtime lacks");
    shard = task->home;
    id = ShardedOwnedTasks::make_id(count_, external_spawns_.fetch_add(1, std::memory_order_relaxed));
  } else {
    // relaxed: only a counter (shard choice and id).
    const uint64_t n = external_spawns_.fetch_add(1, std::memory_order_relaxed);
    shard = static_cast<uint32_t>(n % count_);
    id = ShardedOwnedTasks::make_id(count_, n);
  }
  if (!owned_.bind(task, shard, id)) {
    // Closed: never polled and in no list, so it is cancelled here.
    cancel_unowned_task(task);
    return;
  }
  if (here != nullptr) {
    here->counters->spawns.inc();
  } else {
    // relaxed: a counter only. A locked add, but on a path that has just
    // taken a shard lock (bind) and will take the inject or remote lock.
    external_bound_.fetch_add(1, std::memory_order_relaxed);
  }
  if (pinned && (here == nullptr || task->home != here->index)) {
    push_remote(workers_[task->home], task);  // spawn_on another worker
    return;
  }
  if (here != nullptr) {
    if (is_shutdown()) {
      abandon_queued_task(task);
      return;
    }
    // A spawn_local task is pinned from birth (spawn.h) and stays here.
    push_local(*here, task, /*notify=*/true);
    return;
  }
  // Held across the notify: once queued the task may run and be freed with
  // the last reference that kept this scheduler alive.
  ref_inc();
  if (inject_.push(task)) {
    notify_parked();
  } else {
    abandon_queued_task(task);
  }
  ref_dec();
}

void MultiThreadScheduler::wake(Header* task, Worker* here) noexcept {
  // relaxed: the NOTIFIED transition that led here ordered the last poll's
  // pin changes before this read (TaskPin, executor/context.h).
  const bool pinned = task->pins.load(std::memory_order_relaxed) != 0;
  if (here != nullptr) {
    if (is_shutdown()) {
      drop_reference(task);
      return;
    }
    if (pinned && task->home != here->index) {
      push_remote(workers_[task->home], task);
      return;
    }
    if (RuntimeContext::current().task != nullptr) {
      // Woken by the running task: likely the next thing it needs (a
      // message's receiver), run right after it, on this worker.
      if (Header* displaced = std::exchange(here->core.lifo_slot, task)) {
        push_local(*here, displaced, /*notify=*/true);
      }
      return;
    }
    push_local(*here, task, /*notify=*/true);
    return;
  }
  if (pinned) {
    push_remote(workers_[task->home], task);
    return;
  }
  ref_inc();  // as in spawn
  if (inject_.push(task)) {
    notify_parked();
  } else {
    drop_reference(task);
  }
  ref_dec();
}

void MultiThreadScheduler::push_local(Worker& w, Header* task, bool notify) noexcept {
  // relaxed: this thread polled the task last, or won its NOTIFIED.
  if (task->pins.load(std::memory_order_relaxed) != 0) {
    POLLUX_DCHECK(task->home == w.index, "a pinned task queued off its home worker");
    w.core.pinned.push_back(task);
    return;
  }
  push_stealable(w, task, notify);
}

void MultiThreadScheduler::push_stealable(Worker& w, Header* task, bool notify) noexcept {
  TaskList overflow;
  if (w.run_queue.push_back(task, overflow) && !inject_.push_batch(overflow)) {
    while (Header* h = overflow.pop_front()) abandon_queued_task(h);
    return;
  }
  if (notify) notify_parked();
}

void MultiThreadScheduler::push_remote(Worker& home, Header* task) noexcept {
  ref_inc();  // as in spawn: the task may be freed before the unpark
  bool queued = false;
  {
    MutexLock lock(home.remote_mu);
    if (!home.remote_closed) {
      home.remote.push_back(task);
      // release: pairs with has_tasks()' acquire.
      home.remote_nonempty.store(true, std::memory_order_release);
      queued = true;
    }
  }
  if (queued) {
    home.unparker->unpark();  // outside the lock: it may make a syscall
  } else {
    // Shutting down: a new task (spawn_on) is cancelled here; a woken one
    // gives back the entry's reference (the shard walk drops its future).
    abandon_queued_task(task);
  }
  ref_dec();
}

void MultiThreadScheduler::notify_parked() noexcept {
  if (std::optional<uint32_t> w = idle_.worker_to_notify()) workers_[*w].unparker->unpark();
}

void MultiThreadScheduler::notify_if_work_pending() noexcept {
  for (uint32_t i = 0; i < count_; ++i) {
    if (!workers_[i].run_queue.is_empty()) {
      notify_parked();
      return;
    }
  }
  if (!inject_.is_empty()) notify_parked();
}

void MultiThreadScheduler::unpark() noexcept {
  for (uint32_t i = 0; i < count_; ++i) workers_[i].unparker->unpark();
}

// ---------------------------------------------------------------- the worker loop

void MultiThreadScheduler::run_worker(uint32_t index) {
  run_worker_loop(index);
  // Outside the worker's context: cells freed on this thread from now on
  // count atomically. The runtime's own reference outlives this.
  if (const size_t banked = std::exchange(workers_[index].core.banked_refs, 0)) ref_dec(banked);
}

void MultiThreadScheduler::run_worker_loop(uint32_t index) {
  Worker& w = workers_[index];
  if (w.config.cpu.has_value()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(*w.config.cpu, &set);
    if (int err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); err != 0) {
      record_failure(absl::InvalidArgumentError("multi_thread worker " + std::to_string(index) +
                                                ": cannot pin to CPU " +
                                                std::to_string(*w.config.cpu)));
    }
  }
  RuntimeContext ctx = w.config.base;
  ctx.scheduler = this;
  ctx.worker_index = index;
  ctx.task = nullptr;
  ctx.task_pins = nullptr;
  RuntimeContext::Enter entered(ctx);
  if (w.config.on_start) {
    if (absl::Status s = w.config.on_start(); !s.ok()) record_failure(std::move(s));
  }
  Park& park_here = *w.config.park;
  while (!is_shutdown()) {
    const size_t polls = run_tick(w);
    if (is_shutdown()) break;
    if (polls > 0 || has_tasks(w)) {
      park_here.poll_now();
    } else {
      park(w);
    }
    if (absl::Status s = park_here.status(); !s.ok()) record_failure(std::move(s));
  }
  shutdown_worker(w);
}

size_t MultiThreadScheduler::run_tick(Worker& w) {
  Core& c = w.core;
  const bool tune = ++c.ticks % kTuneEveryTicks == 0;
  const uint64_t start = tune ? monotonic_ns() : 0;
  size_t polls = 0;
  while (polls < kTickPolls && !is_shutdown()) {
    Header* task = next_task(w);
    if (task == nullptr) task = steal_work(w);
    if (task == nullptr) break;
    if (c.searching) end_search(w);
    polls += run_with_lifo(w, task);
  }
  // Once per tick, not per poll (relaxed single-writer stores).
  w.counters->polls.add(polls);
  w.counters->queue_depth.set(c.pinned.size());
  if (tune && polls > 0) {
    const double per_poll = static_cast<double>(monotonic_ns() - start) / polls;
    c.mean_poll_ns = c.mean_poll_ns == 0
                         ? per_poll
                         : kPollTimeEwmaAlpha * per_poll + (1 - kPollTimeEwmaAlpha) * c.mean_poll_ns;
    const double interval = kTargetInjectIntervalNs / std::max(c.mean_poll_ns, 1.0);
    c.global_queue_interval = static_cast<uint32_t>(std::clamp<double>(
        interval, kMinGlobalQueueInterval, kMaxGlobalQueueInterval));
  }
  return polls;
}

Header* MultiThreadScheduler::next_task(Worker& w) noexcept {
  Core& c = w.core;
  if (++c.polls_since_inject >= c.global_queue_interval) {
    // Fairness: the inject queue is not starved by a busy local queue.
    c.polls_since_inject = 0;
    if (Header* h = inject_.pop()) return h;
  }
  if (Header* h = next_local_task(w)) return h;
  return pop_inject_batch(w);
}

Header* MultiThreadScheduler::next_local_task(Worker& w) noexcept {
  Core& c = w.core;
  if (Header* h = std::exchange(c.lifo_slot, nullptr)) return h;
  // acquire: pairs with push_remote's release store.
  if (w.remote_nonempty.load(std::memory_order_acquire)) {
    MutexLock lock(w.remote_mu);
    c.pinned.append(w.remote);
    // relaxed: under remote_mu; a later push sets it again.
    w.remote_nonempty.store(false, std::memory_order_relaxed);
  }
  c.pinned_turn = !c.pinned_turn;
  if (c.pinned_turn) {
    if (Header* h = c.pinned.pop_front()) return h;
    return w.run_queue.pop();
  }
  if (Header* h = w.run_queue.pop()) return h;
  return c.pinned.pop_front();
}

Header* MultiThreadScheduler::pop_inject_batch(Worker& w) noexcept {
  if (inject_.is_empty()) return nullptr;
  // A fair share of what waits, as much as fits without overflowing.
  const size_t share = inject_.len() / count_ + 1;
  const size_t n = std::min({share, size_t{w.run_queue.remaining_slots()} + 1, kMaxInjectBatch});
  TaskList batch;
  inject_.pop_batch(batch, n);
  Header* first = batch.pop_front();
  while (Header* h = batch.pop_front()) push_stealable(w, h, /*notify=*/false);
  return first;
}

Header* MultiThreadScheduler::steal_work(Worker& w) noexcept {
  if (is_shutdown()) return nullptr;
  Core& c = w.core;
  if (!c.searching) {
    if (!idle_.transition_worker_to_searching()) return nullptr;
    c.searching = true;
  }
  const uint32_t first = next_random(c.rng) % count_;
  for (uint32_t i = 0; i < count_; ++i) {
    const uint32_t victim = (first + i) % count_;
    if (victim == w.index) continue;
    uint32_t stolen = 0;
    if (Header* h = workers_[victim].run_queue.steal_into(w.run_queue, &stolen)) {
      w.counters->steal_ops.inc();
      w.counters->stolen_tasks.add(stolen);
      return h;
    }
  }
  return pop_inject_batch(w);
}

void MultiThreadScheduler::end_search(Worker& w) noexcept {
  w.core.searching = false;
  // The last searcher found work: there may be more, so another looks.
  if (idle_.transition_worker_from_searching()) notify_parked();
}

size_t MultiThreadScheduler::run_with_lifo(Worker& w, Header* task) {
  Core& c = w.core;
  poll_task(w, task, /*continue_budget=*/false);
  size_t polls = 1;
  int lifo_polls = 0;
  while (Header* next = std::exchange(c.lifo_slot, nullptr)) {
    if (lifo_polls >= kMaxLifoPolls || c.budget.remaining() == 0 || is_shutdown()) {
      // Two tasks waking each other must not monopolise the worker.
      push_local(w, next, /*notify=*/true);
      break;
    }
    ++lifo_polls;
    poll_task(w, next, /*continue_budget=*/true);
    ++polls;
  }
  if (lifo_polls > 0) w.counters->lifo_hits.add(lifo_polls);
  return polls;
}

void MultiThreadScheduler::poll_task(Worker& w, Header* task, bool continue_budget) {
  // relaxed: we own the task (RUNNING's hand-off ordered its last poll).
  if (task->pins.load(std::memory_order_relaxed) == 0) {
    // relaxed, through atomic_ref: the owner's own reads stay plain (it
    // holds RUNNING), while the task dump may read `home` from another
    // thread (for_each_task; a relaxed load, a hint only).
    std::atomic_ref<uint32_t>(task->home).store(w.index, std::memory_order_relaxed);
  } else {
    POLLUX_CHECK(task->home == w.index, "a pinned task was polled off its home worker");
  }
  run_task(task, w.core.budget, continue_budget);
  if (w.core.budget.take_refused()) w.counters->forced_yields.inc();
}

bool MultiThreadScheduler::has_tasks(Worker& w) const noexcept {
  const Core& c = w.core;
  // acquire: as in next_local_task.
  return c.lifo_slot != nullptr || !c.pinned.empty() || !w.run_queue.is_empty() ||
         w.remote_nonempty.load(std::memory_order_acquire);
}

void MultiThreadScheduler::park(Worker& w) {
  Core& c = w.core;
  if (idle_.transition_worker_to_parked(w.index, c.searching)) {
    // The last searcher: work queued after the others stopped looking
    // would be stranded unless someone is woken for it (idle.h).
    notify_if_work_pending();
  }
  c.searching = false;
  Park& park_here = *w.config.park;
  for (;;) {
    // A push to this worker's remote queue or a notify unparks it, and an
    // unpark before park() makes it return at once: nothing is lost
    // between the check and the park.
    if (!has_tasks(w) && !is_shutdown()) {
      w.counters->parks.inc();
      park_here.park(std::nullopt);
    }
    if (is_shutdown() || !park_here.status().ok()) return;
    if (has_tasks(w)) {
      // Its own events (ring, timers, remote queue) woke it, or a notify
      // did: only the latter makes it a searcher.
      c.searching = !idle_.unpark_worker_by_id(w.index);
      return;
    }
    if (!idle_.is_parked(w.index)) {
      c.searching = true;  // notified to look for work
      return;
    }
  }
}

const WorkerCounters& MultiThreadScheduler::counters(uint32_t i) const noexcept {
  return *workers_[i].counters;
}

size_t MultiThreadScheduler::local_queue_len(uint32_t i) const noexcept {
  const Worker& w = workers_[i];
  return w.run_queue.len() + w.counters->queue_depth.load();
}

size_t MultiThreadScheduler::remote_queue_len(uint32_t i) const noexcept {
  Worker& w = workers_[i];
  MutexLock lock(w.remote_mu);
  return w.remote.size();
}

// ---------------------------------------------------------------- shutdown

void MultiThreadScheduler::shutdown() noexcept {
  TaskList injected;
  TaskList remote;
  {
    MutexLock lock(mu_);
    if (closing_) return;
    closing_ = true;
    owned_.close_all();
    inject_.close(injected);
    for (uint32_t i = 0; i < count_; ++i) {
      Worker& w = workers_[i];
      MutexLock remote_lock(w.remote_mu);
      w.remote_closed = true;
      remote.append(w.remote);
    }
  }
  // Outside the lock: futures dropped here may wake or spawn (the closed
  // queues refuse both). Tasks never polled (spawns from other threads) are
  // cancelled here; woken ones only give back the queue entry's reference
  // (their futures go in the shard walk, on a worker).
  while (Header* h = injected.pop_front()) abandon_queued_task(h);
  while (Header* h = remote.pop_front()) abandon_queued_task(h);
  // Only now, with both lists above empty, may the workers start their
  // shutdown walk: it links the tasks it takes through Header::queue_next,
  // the link these lists use. Publishing the flag before them (as this did)
  // let a worker take a task still in `injected` or `remote`: each thread's
  // push_back/pop_front cut the other's chain, so a queued RUNNING task was
  // never abandoned (the walk leaves RUNNING ones to their queue entry) and
  // tasks behind the cut in a worker's list were never shut down: their
  // futures, cells and JoinHandles outlived the runtime
  // (multi_thread_test's ShutdownFromAForeignThread..., TSan: a race
  // between TaskList::push_back in take_if and pop_front here).
  // release: pairs with is_shutdown()'s acquire; the queues are closed.
  shutdown_.store(true, std::memory_order_release);
  unpark();
}

void MultiThreadScheduler::shutdown_worker(Worker& w) {
  Core& c = w.core;
  // Step 2: nothing of this worker's queues is polled again. An entry still
  // RUNNING (a first poll, a self-wake) is completed as cancelled here.
  if (Header* h = std::exchange(c.lifo_slot, nullptr)) abandon_queued_task(h);
  while (Header* h = c.pinned.pop_front()) abandon_queued_task(h);
  while (Header* h = w.run_queue.pop()) abandon_queued_task(h);
  TaskList remote;
  {
    MutexLock lock(w.remote_mu);
    remote.append(w.remote);
  }
  while (Header* h = remote.pop_front()) abandon_queued_task(h);
  rendezvous();  // no worker polls any more: pins and homes are final
  TaskList mine;
  for (uint32_t shard = 0; shard < count_; ++shard) {
    owned_.take_if(
        shard,
        [&](Header* h) {
          // relaxed: ordered by the rendezvous after the last poll.
          const bool pinned = h->pins.load(std::memory_order_relaxed) != 0;
          return (pinned ? h->home : trailer_of(h)->owned_shard) == w.index;
        },
        mine);
  }
  // Futures dropped here may wake or spawn: the closed queues refuse both.
  while (Header* h = mine.pop_front()) shutdown_unlisted_task(h);
  rendezvous();  // step 3
  if (w.index == 0) {
    POLLUX_CHECK(owned_.size() == 0, "a task survived the multi_thread shutdown walk");
  }
  if (w.config.on_stop) w.config.on_stop();  // step 4
}

void MultiThreadScheduler::rendezvous() noexcept {
  MutexLock lock(mu_);
  const uint64_t generation = rendezvous_generation_;
  if (++rendezvous_arrived_ == count_) {
    rendezvous_arrived_ = 0;
    ++rendezvous_generation_;
    rendezvous_cv_.notify_all();
    return;
  }
  while (rendezvous_generation_ == generation) rendezvous_cv_.wait(mu_);
}

void MultiThreadScheduler::join() {
  POLLUX_CHECK(current_worker() == nullptr, "a multi_thread runtime joined from its own worker");
  std::vector<Thread> threads;
  {
    MutexLock lock(mu_);
    threads.swap(threads_);
  }
  for (Thread& t : threads) t.join();
}

void MultiThreadScheduler::record_failure(absl::Status s) noexcept {
  {
    MutexLock lock(mu_);
    if (failure_.ok()) failure_ = std::move(s);
  }
  shutdown();
}

absl::Status MultiThreadScheduler::status() const {
  MutexLock lock(mu_);
  return failure_;
}

}  // namespace pollux::detail
