#include "runtime/runtime.h"

#include <sched.h>

#include <algorithm>
#include <limits>
#include <string>
#include <thread>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "executor/blocking/blocking_pool.h"
#include "executor/blocking/blocking_scheduler.h"
#include "executor/multi_thread/scheduler.h"
#include "executor/internal/local_scheduler.h"
#include "executor/internal/task.h"
#include "executor/thread_parker.h"
#include "future/internal/mutex.h"
#include "timer/instant.h"
#include "future/internal/atomic.h"
#include "reactor/epoll/epoll_backend.h"
#include "reactor/errno_status.h"
#include "reactor/uring/io_uring_backend.h"
#include "reactor/uring/probe.h"
#include "runtime/internal/signal_driver.h"
#include "runtime/internal/thread_per_core.h"
#include "timer/time_driver.h"

namespace pollux {

namespace detail {

SpawnTarget::SpawnTarget(Kind kind, std::vector<Schedule*> schedulers, size_t workers,
                         Schedule* blocking)
    : kind_(kind), schedulers_(std::move(schedulers)), workers_(workers), blocking_(blocking) {
  for (Schedule* s : schedulers_) s->ref_inc();
  blocking_->ref_inc();
}

SpawnTarget::~SpawnTarget() {
  for (Schedule* s : schedulers_) s->ref_dec();
  blocking_->ref_dec();
}

void SpawnTarget::check_worker(size_t i) const {
  POLLUX_CHECK(i < workers_, "spawn_on(core, f) with a core index the runtime does not have");
}

namespace {

constexpr char kPauseForbidden[] =
    "timer::pause() works on a current_thread runtime only (DESIGN §5: with one timer wheel "
    "per worker, an idle worker's paused clock would jump while another does real I/O); run "
    "paused-clock tests on Runtime::Builder().current_thread()";

// What one thread of a runtime parks in: its I/O backend (or a plain
// parker), under its timer driver when time is enabled.
struct Drivers {
  std::unique_ptr<reactor::IoUringBackend> uring;
  std::unique_ptr<reactor::EpollBackend> epoll;
  reactor::Backend* io = nullptr;          // whichever of the two runs
  std::unique_ptr<ThreadParker> parker;    // when there is no I/O
  std::unique_ptr<timer::TimeDriver> time;  // when time is enabled, over io or parker
  Park* park = nullptr;
  // The worker's metrics, written by its executor (which it outlives).
  WorkerCounters counters;

  RuntimeContext context() const noexcept {
    RuntimeContext ctx;
    ctx.backend = io;
    ctx.timers = time ? &time->queue() : nullptr;
    ctx.tick = time ? &time->queue().tick_clock() : nullptr;
    return ctx;
  }
  // On the thread that will run it: own the wheel, enable the ring.
  absl::Status bind_to_current_thread() {
    if (time) time->queue().bind_to_current_thread();
    return uring ? uring->enable_on_current_thread() : absl::OkStatus();
  }
  // On the thread that ran it, as it stops: drain what is in flight, until
  // drain_deadline when Runtime::shutdown_timeout set one, else for the
  // backend's own drain_timeout (10 s by default: the destructor's cap).
  void shutdown() {
    // acquire: pairs with set_drain_deadline's release (which, on the
    // multi-thread flavours, also comes before the scheduler's shutdown).
    const int64_t deadline_ns = drain_deadline_ns.load(std::memory_order_acquire);
    if (deadline_ns == kNoDeadline) {
      if (uring) uring->shutdown();
      if (epoll) epoll->shutdown();
      return;
    }
    // Clamped: the backends add it to their clock.
    const absl::Duration left =
        std::clamp(absl::FromUnixNanos(deadline_ns) - absl::Now(), absl::ZeroDuration(),
                   absl::Hours(24 * 365));
    if (uring) uring->shutdown(left);
    if (epoll) epoll->shutdown(left);
  }
  void set_drain_deadline(absl::Time t) noexcept {
    const int64_t ns = t == absl::InfiniteFuture() ? std::numeric_limits<int64_t>::max() - 1
                                                   : absl::ToUnixNanos(t);
    // release: pairs with shutdown()'s acquire.
    drain_deadline_ns.store(ns, std::memory_order_release);
  }
  uint64_t leaked_ops() const noexcept { return io != nullptr ? io->stats().leaked_ops : 0; }

  static constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::min();
  // Written by the thread that shuts the runtime down, read by the worker
  // (core) that drains this backend.
  Atomic<int64_t> drain_deadline_ns{kNoDeadline};
};

const char* kind_name(BackendKind k) {
  switch (k) {
    case BackendKind::kAuto:
      return "kAuto";
    case BackendKind::kIoUring:
      return "kIoUring";
    case BackendKind::kEpoll:
      return "kEpoll";
  }
  return "?";
}

// `s` restated as "io_uring cannot be used here", with the way out; the
// code and errno payload stay.
absl::Status io_uring_refused(const absl::Status& s, const std::string& chosen_by) {
  return with_context(
      s, absl::StrCat("io_uring cannot be used here (", chosen_by,
                      "; to run on epoll instead set POLLUX_BACKEND=epoll, which overrides the "
                      "default BackendKind::kAuto, or use Builder::backend(BackendKind::kEpoll))"));
}

// Which backend `b` asks for, after POLLUX_BACKEND (kAuto only) and the
// probe: kIoUring or kEpoll, and why; or the error build() returns.
absl::StatusOr<BackendChoice> choose_backend(BackendKind asked) {
  BackendKind kind = asked;
  std::string why = absl::StrCat("Builder::backend(", kind_name(kind), ")");
  if (kind == BackendKind::kAuto) {
    if (const char* env = std::getenv("POLLUX_BACKEND"); env != nullptr && *env != '\0') {
      if (std::strcmp(env, "io_uring") == 0) {
        kind = BackendKind::kIoUring;
      } else if (std::strcmp(env, "epoll") == 0) {
        kind = BackendKind::kEpoll;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("POLLUX_BACKEND=", env, ": expected io_uring or epoll (or unset it "
                         "to let pollux choose)"));
      }
      why = absl::StrCat("POLLUX_BACKEND=", env);
    }
  }
  if (kind == BackendKind::kAuto) {
    absl::Status probe = reactor::probe_io_uring();
    if (probe.ok()) return BackendChoice{BackendKind::kIoUring, "kAuto: io_uring passed the probe"};
    return BackendChoice{BackendKind::kEpoll,
                         absl::StrCat("kAuto: io_uring is not usable here (", probe.message(),
                                      "); using epoll")};
  }
  if (kind == BackendKind::kIoUring) {
    // Demanded: refuse up front (a ring that can be made but not probed or
    // entered would fail at the first block_on instead).
    absl::Status probe = reactor::probe_io_uring();
    if (!probe.ok()) return io_uring_refused(probe, why);
  }
  return BackendChoice{kind, std::move(why)};
}

// The CPUs this process may run on, in order.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

}  // namespace

// What a Runtime owns. Destruction: the executor(s) first (their tasks'
// futures may cancel ops and timers of the drivers), then the drivers.
struct RuntimeInner {
  using Flavour = Runtime::Builder::Flavour;
  Flavour flavour = Flavour::kCurrentThread;
  BackendChoice choice;
  std::vector<std::unique_ptr<Drivers>> drivers;  // one per worker (core)
  std::shared_ptr<const SpawnTarget> target;
  // current_thread:
  std::unique_ptr<LocalExecutor> executor;
  bool bound = false;          // runtime thread only, after the executor bound it
  // multi_thread (one reference held):
  MultiThreadScheduler* multi = nullptr;
  // thread_per_core:
  std::unique_ptr<ThreadPerCore> cores;
  // spawn_blocking (one reference to the scheduler held), and the epoll
  // backends' file operations: one pool for both and every worker.
  std::unique_ptr<blocking::BlockingPool> pool;
  BlockingScheduler* blocking = nullptr;
  // shutdown() has run: the executors, pool and drivers are gone.
  bool finished = false;

  RuntimeContext context_of(size_t i) const noexcept {
    RuntimeContext ctx = drivers[i]->context();
    ctx.blocking = blocking;
    return ctx;
  }

  static absl::StatusOr<std::unique_ptr<RuntimeInner>> build(const Runtime::Builder& b);

  ~RuntimeInner() {
    if (!finished) (void)shutdown(std::nullopt);
  }

  // Tears everything down in DESIGN §4's order; `deadline` bounds the ring
  // (epoll: file job) drain and the wait for the blocking pool (nullopt:
  // the destructor's policy, the backends' own drain_timeout and no bound on
  // the pool). On the current_thread runtime's thread (checked by the
  // executor), or a thread that is none of the runtime's (checked by
  // multi_thread's join, thread_per_core's stop).
  ShutdownReport shutdown(std::optional<absl::Time> deadline) {
    POLLUX_CHECK(!finished, "Runtime shut down twice");
    const absl::Time start = absl::Now();
    if (deadline.has_value()) {
      for (const std::unique_ptr<Drivers>& d : drivers) d->set_drain_deadline(*deadline);
    }
    const bool current_thread = executor != nullptr;
    if (executor) {
      // Futures dropped at shutdown may cancel I/O ops and timers: they find
      // their driver through this thread's context.
      RuntimeContext::Enter entered(context_of(0));
      executor.reset();
    }
    if (multi != nullptr) {
      multi->shutdown();
      multi->join();
      multi->ref_dec();
      multi = nullptr;
    }
    cores.reset();  // stops and joins every core
    // Every task is gone (the signal reader and its AsyncFd with them):
    // unsubscribe, then close the signal pipe (runtime/signal.h).
    if (blocking != nullptr) signals_runtime_gone(blocking);
    // The backends first drain what they still have in flight, here for
    // current_thread (the multi-thread flavours' workers did as they
    // stopped): the epoll backends' file jobs get their bounded wait before
    // the pool is shut down below (DESIGN §9).
    if (current_thread) {
      for (const std::unique_ptr<Drivers>& d : drivers) d->shutdown();
    }
    ShutdownReport report;
    for (const std::unique_ptr<Drivers>& d : drivers) report.leaked_ops += d->leaked_ops();
    if (blocking != nullptr) {
      // Calls still queued are cancelled unrun; running ones are waited for
      // (until the deadline, then left to finish on their detached threads).
      blocking->close();
      if (deadline.has_value() && *deadline != absl::InfiniteFuture()) {
        report.blocking_still_running = pool->shutdown_until(*deadline);
      } else {
        pool->shutdown();
      }
      // From now on the Runtime spawns onto the closed blocking scheduler,
      // which cancels every spawn at once, so it no longer keeps the
      // executors' shared blocks (and with them their eventfds) alive; a
      // Handle taken earlier still does, until it goes.
      target = std::make_shared<SpawnTarget>(SpawnTarget::Kind::kOne,
                                             std::vector<Schedule*>{blocking}, drivers.size(),
                                             blocking);
      blocking->ref_dec();
      blocking = nullptr;
    }
    // Each backend closes its ring or set now; each eventfd goes with its
    // last unparker.
    drivers.clear();
    pool.reset();
    finished = true;
    report.elapsed = absl::Now() - start;
    return report;
  }
};

absl::StatusOr<std::unique_ptr<RuntimeInner>> RuntimeInner::build(const Runtime::Builder& b) {
  auto inner = std::make_unique<RuntimeInner>();
  inner->flavour = b.flavour_;
  inner->pool = std::make_unique<blocking::BlockingPool>(b.blocking_);
  inner->blocking = BlockingScheduler::create(inner->pool.get());
  const bool many = b.flavour_ != Flavour::kCurrentThread;
  size_t n = 1;
  std::vector<int> cpus;
  if (many) {
    cpus = allowed_cpus();
    n = b.threads_ != 0 ? b.threads_ : std::max<size_t>(cpus.size(), 1);
    if (n > 1024) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Runtime::Builder: ", n, " worker threads; at most 1024 (one per CPU is the norm)"));
    }
    if (b.pin_workers_ && cpus.size() < n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Runtime::Builder::worker_cpu_affinity: ", n, " workers but the process may run on ",
          cpus.size(), " CPUs; ask for fewer workers or drop the affinity"));
    }
  }
  if (b.io_) {
    absl::StatusOr<BackendChoice> choice = choose_backend(b.backend_);
    if (!choice.ok()) return choice.status();
    inner->choice = std::move(*choice);
  }
  for (size_t i = 0; i < n; ++i) {
    auto d = std::make_unique<Drivers>();
    if (b.io_ && inner->choice.kind == BackendKind::kIoUring) {
      reactor::IoUringOptions opts = b.uring_;
      // Every ring of the runtime shares the first one's kernel workers.
      if (i > 0) opts.attach_wq_fd = inner->drivers[0]->uring->ring_fd();
      absl::StatusOr<std::unique_ptr<reactor::IoUringBackend>> io =
          reactor::IoUringBackend::create(opts);
      if (!io.ok()) return io_uring_refused(io.status(), inner->choice.reason);
      d->uring = std::move(*io);
      d->io = d->uring.get();
      d->park = d->io;
    } else if (b.io_) {
      // One epoll set per worker (DESIGN §5, "epoll under multi_thread"):
      // an fd is registered lazily in the set of each worker that waits on
      // it, and its owner's release removes it from each.
      reactor::EpollOptions opts;
      opts.pool = inner->pool.get();
      opts.drain_timeout = b.uring_.drain_timeout;
      opts.syscalls = b.epoll_sys_;
      absl::StatusOr<std::unique_ptr<reactor::EpollBackend>> io =
          reactor::EpollBackend::create(opts);
      if (!io.ok()) return io.status();
      d->epoll = std::move(*io);
      d->io = d->epoll.get();
      d->park = d->io;
    } else {
      d->parker = std::make_unique<ThreadParker>();
      d->park = d->parker.get();
    }
    if (b.time_) {
      d->time = std::make_unique<timer::TimeDriver>(*d->park);
      if (many) d->time->queue().forbid_pause(kPauseForbidden);
      d->park = d->time.get();
    }
    inner->drivers.push_back(std::move(d));
  }
  if (!many) {
    inner->executor = std::make_unique<LocalExecutor>(
        *inner->drivers[0]->park, /*bind_lazily=*/true, &inner->drivers[0]->counters);
    inner->target = std::make_shared<SpawnTarget>(
        SpawnTarget::Kind::kOne, std::vector<Schedule*>{inner->executor->scheduler()}, 1,
        inner->blocking);
    return inner;
  }
  std::vector<WorkerConfig> configs;
  for (size_t i = 0; i < n; ++i) {
    Drivers* d = inner->drivers[i].get();
    WorkerConfig c;
    c.park = d->park;
    c.base = inner->context_of(i);
    c.on_start = [d] { return d->bind_to_current_thread(); };
    c.on_stop = [d] { d->shutdown(); };
    c.counters = &d->counters;
    if (b.pin_workers_) c.cpu = cpus[i];
    configs.push_back(std::move(c));
  }
  if (b.flavour_ == Flavour::kMultiThread) {
    inner->multi = MultiThreadScheduler::start(std::move(configs));
    inner->target = std::make_shared<SpawnTarget>(
        SpawnTarget::Kind::kWorkers, std::vector<Schedule*>{inner->multi}, n, inner->blocking);
  } else {
    inner->cores = std::make_unique<ThreadPerCore>(std::move(configs));
    std::vector<Schedule*> schedulers;
    for (size_t i = 0; i < n; ++i) schedulers.push_back(inner->cores->scheduler(i));
    inner->target =
        std::make_shared<SpawnTarget>(SpawnTarget::Kind::kCores, std::move(schedulers), n,
                                      inner->blocking);
  }
  return inner;
}

}  // namespace detail

absl::StatusOr<Runtime> Runtime::Builder::build() {
  absl::StatusOr<std::unique_ptr<detail::RuntimeInner>> inner = detail::RuntimeInner::build(*this);
  if (!inner.ok()) return inner.status();
  return Runtime(std::move(*inner));
}

Runtime::Runtime(std::unique_ptr<detail::RuntimeInner> inner) : inner_(std::move(inner)) {}
Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&&) noexcept = default;
Runtime::~Runtime() = default;

detail::RuntimeInner& Runtime::inner() const noexcept {
  // Always on (one predictable branch): a moved-from Runtime would otherwise
  // be a null dereference, a segfault with no word of why in -c opt.
  POLLUX_CHECK(inner_ != nullptr,
               "use of a moved-from Runtime (only destroying it or assigning to it is allowed)");
  return *inner_;
}

ShutdownReport Runtime::shutdown_timeout(absl::Duration d) {
  POLLUX_CHECK(inner_ != nullptr, "Runtime::shutdown_timeout on a moved-from Runtime");
  if (inner_->finished) return ShutdownReport{};  // a second call: nothing left to do
  if (RuntimeContext::current().scheduler != nullptr) {
    detail::check_failed("RuntimeContext::current().scheduler == nullptr",
                         "Runtime::shutdown_timeout called from inside a task (or on a runtime's "
                         "worker thread); it waits for the runtime's threads: call it from "
                         "outside the runtime",
                         __FILE__, __LINE__);
  }
  const absl::Time deadline =
      d == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + d;
  return inner_->shutdown(deadline);
}

namespace {

using detail::Header;
using detail::Trailer;

// What `h` looks like now, `now_ns` being the dumping thread's tick time.
TaskInfo describe(Header* h, size_t worker, int64_t now_ns) {
  TaskInfo info;
  const detail::TaskState::Snapshot s = h->state.load();
  info.state = s.is_complete()   ? TaskInfo::State::kComplete
               : s.is_running()  ? TaskInfo::State::kRunning
               : s.is_notified() ? TaskInfo::State::kScheduled
                                 : TaskInfo::State::kIdle;
  info.cancelled = s.is_cancelled();
  // relaxed: a report, ordered by nothing.
  info.pinned = h->pins.load(std::memory_order_relaxed) != 0;
  info.worker = worker;
  // The trailer's id and spawn fields were written before the task was
  // bound into the list we are walking (under its lock, or on this thread).
  const Trailer* t = detail::trailer_of(h);
  info.id = t->id;
  info.spawned_at = t->spawned_at;
  if (t->spawned_ms != 0 && now_ns != 0) {
    // Modulo 2^32 ms, as stamped (TickClock::stamp_ms).
    const uint32_t now_ms = static_cast<uint32_t>(static_cast<uint64_t>(now_ns) / 1'000'000);
    info.age = absl::Milliseconds(static_cast<uint32_t>(now_ms - t->spawned_ms));
  }
  return info;
}

int64_t tick_now_ns() noexcept {
  const TickClock* tick = RuntimeContext::current().tick;
  return tick != nullptr ? tick->now_ns : 0;
}

// On the owner thread of a single-thread scheduler: its tasks, leaving out
// `skip` (the task serving a dump request).
void dump_local(detail::Schedule* scheduler, size_t worker, const Header* skip,
                std::vector<TaskInfo>& out) {
  detail::LocalCore* core = static_cast<detail::LocalScheduler*>(scheduler)->owner_core();
  if (core == nullptr) return;
  const int64_t now = tick_now_ns();
  for (Header* h = core->owned.front(); h != nullptr; h = detail::trailer_of(h)->owned_next) {
    if (h != skip) out.push_back(describe(h, worker, now));
  }
}

// A dump request to single-thread cores, answered by a task on each.
struct DumpRequest {
  detail::Mutex mu;
  detail::CondVar cv;
  std::vector<TaskInfo> tasks ABSL_GUARDED_BY(mu);
  size_t pending ABSL_GUARDED_BY(mu) = 0;
};

// The task that answers on one core: read between two polls of that core.
class ServeDump {
 public:
  using Output = void;
  ServeDump(std::shared_ptr<DumpRequest> req, size_t worker)
      : req_(std::move(req)), worker_(worker) {}
  Poll<void> poll(Context&) {
    std::vector<TaskInfo> mine;
    dump_local(RuntimeContext::current().scheduler, worker_, RuntimeContext::current().task,
               mine);
    detail::MutexLock lock(req_->mu);
    for (TaskInfo& t : mine) req_->tasks.push_back(std::move(t));
    --req_->pending;
    req_->cv.notify_all();
    return Ready{};
  }

 private:
  std::shared_ptr<DumpRequest> req_;
  size_t worker_;
};

}  // namespace

const char* TaskInfo::state_name(State s) noexcept {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kScheduled:
      return "scheduled";
    case State::kRunning:
      return "running";
    case State::kComplete:
      return "complete";
  }
  return "?";
}

std::string TaskInfo::to_string() const {
  return absl::StrCat("task ", id, " ", state_name(state), cancelled ? " cancelled" : "",
                      pinned ? " pinned" : "", " worker ", worker, " age ",
                      age.has_value() ? absl::FormatDuration(*age) : std::string("?"),
                      " spawned at ", spawned_at.file_name(), ":", spawned_at.line(), " (",
                      spawned_at.function_name(), ")");
}

std::string TaskDump::to_string() const {
  std::string out = absl::StrCat(tasks.size(), " task(s)", complete ? "" : " (incomplete: a "
                                 "worker did not answer)", "\n");
  for (const TaskInfo& t : tasks) absl::StrAppend(&out, "  ", t.to_string(), "\n");
  return out;
}

TaskDump Runtime::dump_tasks(absl::Duration wait) const {
  TaskDump dump;
  if (inner_ == nullptr || inner_->finished) return dump;
  if (inner_->multi != nullptr) {
    // A worker has its tick time; elsewhere one clock reading for the whole
    // dump (multi_thread's clocks are never paused: no offset).
    int64_t now = tick_now_ns();
    if (now == 0 && !inner_->drivers.empty() && inner_->drivers[0]->time) now = Instant::now().nanos();
    inner_->multi->for_each_task([&](Header* h) {
      // relaxed (atomic_ref): `home` changes at the start of a poll; a hint.
      const uint32_t home = std::atomic_ref<uint32_t>(h->home).load(std::memory_order_relaxed);
      dump.tasks.push_back(describe(h, home, now));
    });
  } else {
    std::vector<detail::Schedule*> cores;
    if (inner_->executor) {
      cores.push_back(inner_->executor->scheduler());
    } else {
      for (size_t i = 0; i < inner_->cores->size(); ++i) cores.push_back(inner_->cores->scheduler(i));
    }
    auto req = std::make_shared<DumpRequest>();
    std::vector<TaskInfo> direct;
    std::vector<size_t> ask;
    for (size_t i = 0; i < cores.size(); ++i) {
      if (static_cast<detail::LocalScheduler*>(cores[i])->owner_core() != nullptr) {
        dump_local(cores[i], i, nullptr, direct);  // this thread owns it
      } else {
        ask.push_back(i);
      }
    }
    {
      detail::MutexLock lock(req->mu);
      req->pending = ask.size();
    }
    for (size_t i : ask) detail::spawn_onto(cores[i], ServeDump(req, i)).detach();
    const absl::Time give_up = absl::Now() + wait;
    detail::MutexLock lock(req->mu);
    while (req->pending > 0) {
      const absl::Duration left = give_up - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      req->cv.wait_for(req->mu, left);
    }
    dump.complete = req->pending == 0;
    dump.tasks = std::move(direct);
    for (TaskInfo& t : req->tasks) dump.tasks.push_back(std::move(t));
    req->tasks.clear();
  }
  std::sort(dump.tasks.begin(), dump.tasks.end(),
            [](const TaskInfo& a, const TaskInfo& b) { return a.id < b.id; });
  return dump;
}

bool Runtime::is_shut_down() const noexcept { return inner_ == nullptr || inner_->finished; }

std::string ShutdownReport::to_string() const {
  return absl::StrCat("shutdown in ", absl::FormatDuration(elapsed), ": ", blocking_still_running,
                      " blocking call(s) still running (left on detached threads), ",
                      leaked_ops, " op(s) leaked in the kernel");
}

absl::Status Runtime::enter_check() {
  if (inner_ == nullptr) {
    return absl::FailedPreconditionError(
        "use of a moved-from Runtime (only destroying it or assigning to it is allowed)");
  }
  if (inner_->finished) {
    return absl::FailedPreconditionError(
        "Runtime::block_on after Runtime::shutdown_timeout: the runtime is finished; build a "
        "new one");
  }
  if (RuntimeContext::current().scheduler != nullptr) {
    return absl::FailedPreconditionError(
        "Runtime::block_on called from inside a task (or on a runtime's worker thread); it "
        "would block that thread: co_await the future instead");
  }
  if (!is_current_thread()) return absl::OkStatus();
  // The executor's owner binding is one compare-exchange: of two threads
  // racing their first block_on, exactly one becomes the runtime thread.
  if (!inner().executor->try_bind_to_current_thread()) {
    return absl::FailedPreconditionError(
        "Runtime::block_on called from a thread other than the one the current_thread runtime "
        "is bound to (the first thread that ran it); use Runtime::handle().spawn() from other "
        "threads");
  }
  if (!inner().bound) {
    // The runtime thread owns the timer wheel and the ring from now on.
    if (absl::Status s = inner().drivers[0]->bind_to_current_thread(); !s.ok()) return s;
    inner().bound = true;
  }
  return absl::OkStatus();
}

absl::Status Runtime::finished_early_status() const {
  absl::Status s = inner().multi != nullptr   ? inner().multi->status()
                   : inner().cores != nullptr ? inner().cores->status()
                                              : absl::OkStatus();
  if (!s.ok()) return s;
  return absl::CancelledError(
      "the runtime shut down before the block_on future finished (destroyed from another "
      "thread)");
}

bool Runtime::is_current_thread() const noexcept {
  return inner().flavour == detail::RuntimeInner::Flavour::kCurrentThread;
}
LocalExecutor& Runtime::executor() const noexcept { return *inner().executor; }
RuntimeContext Runtime::context() const noexcept { return inner().context_of(0); }
const detail::SpawnTarget& Runtime::spawn_target() const noexcept { return *inner().target; }
Handle Runtime::handle() const { return Handle(inner().target); }
size_t Runtime::worker_count() const noexcept { return inner().drivers.size(); }

reactor::Backend* Runtime::io_backend(size_t worker) const noexcept {
  return worker < inner().drivers.size() ? inner().drivers[worker]->io : nullptr;
}

const BackendChoice& Runtime::backend() const noexcept { return inner().choice; }

timer::TimerQueue* Runtime::timer_queue(size_t worker) const noexcept {
  if (worker >= inner().drivers.size() || !inner().drivers[worker]->time) return nullptr;
  return &inner().drivers[worker]->time->queue();
}

RuntimeMetrics Runtime::metrics() const {
  const detail::RuntimeInner& in = *inner_;
  RuntimeMetrics m;
  using Flavour = detail::RuntimeInner::Flavour;
  m.flavour = in.flavour == Flavour::kCurrentThread ? "current_thread"
              : in.flavour == Flavour::kMultiThread ? "multi_thread"
                                                    : "thread_per_core";
  m.backend = in.choice.name();
  m.workers = in.drivers.size();
  uint64_t spawned = 0;
  uint64_t released = 0;
  for (size_t i = 0; i < in.drivers.size(); ++i) {
    const detail::Drivers& d = *in.drivers[i];
    const detail::WorkerCounters& c = d.counters;
    WorkerMetrics w;
    w.polls = c.polls.load();
    w.spawns = c.spawns.load();
    w.steals = c.stolen_tasks.load();
    w.steal_operations = c.steal_ops.load();
    w.parks = c.parks.load();
    w.lifo_slot_hits = c.lifo_hits.load();
    w.budget_forced_yields = c.forced_yields.load();
    if (in.multi != nullptr) {
      const auto index = static_cast<uint32_t>(i);
      w.local_queue_depth = in.multi->local_queue_len(index);
      w.inject_queue_depth = in.multi->remote_queue_len(index);
    } else {
      w.local_queue_depth = c.queue_depth.load();
      w.inject_queue_depth =
          in.executor ? in.executor->injected_tasks() : in.cores->injected_len(i);
    }
    if (d.io != nullptr) {
      const reactor::BackendStats s = d.io->stats();
      w.ops_submitted = s.ops_submitted;
      w.ops_completed = s.ops_completed;
      w.ops_cancelled = s.ops_cancelled;
      w.kernel_entries = s.kernel_entries;
      w.eagain_retries = s.eagain_retries;
      w.leaked_ops = s.leaked_ops;
    }
    spawned += w.spawns;
    released += c.released.load();
    m.per_worker.push_back(w);
  }
  if (in.multi != nullptr) {
    m.spawns_total = spawned + in.multi->external_spawns();
    m.alive_tasks = in.multi->live_tasks();
    m.inject_queue_depth = in.multi->inject_len();
  } else {
    m.spawns_total = spawned;
    // Released is read after spawned: a task spawned and completed between
    // the two reads could make it larger for a moment.
    m.alive_tasks = spawned > released ? spawned - released : 0;
    for (const WorkerMetrics& w : m.per_worker) m.inject_queue_depth += w.inject_queue_depth;
  }
  const blocking::BlockingPoolStats b = in.pool->stats();
  m.blocking_threads = b.threads;
  m.blocking_idle_threads = b.idle_threads;
  m.blocking_queue_depth = b.queued;
  return m;
}

std::optional<size_t> this_core() noexcept {
  const RuntimeContext& ctx = RuntimeContext::current();
  if (ctx.scheduler == nullptr) return std::nullopt;
  return ctx.worker_index;
}

}  // namespace pollux
