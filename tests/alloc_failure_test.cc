// Allocation failure injection (issue 16, seastar's approach): each
// scenario below runs once on a fresh current_thread runtime counting the
// allocations its thread makes (A), then once for every N in 1..A with the
// N-th of them failing (std::bad_alloc, tests/alloc_failure.h). Whatever
// fails, there must be no crash and no leak:
//   spawn     spawn() throws std::bad_alloc (it cannot return a status), or
//             the task's own poll throws it (a Panicked JoinError); the
//             future's counted values are destroyed either way, and the
//             live task cells are back to where they were;
//   op start  an operation that cannot start returns a status
//             (kResourceExhausted) and hands its buffer back; no op slot
//             stays live;
//   channels  mpsc (bounded and unbounded), oneshot and Semaphore waiters:
//             creation throws, or the exchange completes; nothing counted
//             outlives the scenario.
// Then the noexcept paths: dropping or cancelling an op in flight, aborting
// a task, dropping sync waiters and waking tasks run with every allocation
// of this thread failing, and must neither try to allocate nor fail.
//
// Only the test thread's allocations are counted and failed (the injector is
// per thread), so the runtime is current_thread: every poll, drop and wake
// of a scenario runs on that thread. Run on both backends.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/future.h"
#include "future/poll_fn.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "sync/mpsc.h"
#include "sync/notify.h"
#include "sync/oneshot.h"
#include "sync/semaphore.h"
#include "timer/sleep.h"
#include "tests/alloc_failure.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"

namespace pollux {
namespace {

using testing::AllocFailure;

// Values whose destruction the scenarios count.
struct Counted {
  static inline std::atomic<int> live{0};
  int v = 0;
  explicit Counted(int x = 0) : v(x) { live.fetch_add(1, std::memory_order_relaxed); }
  Counted(const Counted& o) : v(o.v) { live.fetch_add(1, std::memory_order_relaxed); }
  Counted(Counted&& o) noexcept : v(o.v) { live.fetch_add(1, std::memory_order_relaxed); }
  Counted& operator=(const Counted&) = default;
  ~Counted() { live.fetch_sub(1, std::memory_order_relaxed); }
};

// How a scenario arms the injector: count only (the measuring run), or
// fail the n-th allocation.
struct Arm {
  uint64_t fail_at = 0;  // 0: count only
  void operator()() const {
    if (fail_at == 0) {
      AllocFailure::count_only();
    } else {
      AllocFailure::fail_nth(fail_at);
    }
  }
};

// What one run of a scenario saw.
struct Outcome {
  uint64_t allocations = 0;  // on this thread while armed
  uint64_t failures = 0;
  int bad_allocs = 0;        // std::bad_alloc caught (from spawn, creation, a poll)
  int exhausted = 0;         // ops that returned kResourceExhausted
  std::string errors;        // anything else unexpected
};

void note(Outcome& out, const std::string& what) { out.errors += what + "; "; }

// A future holding a Counted that yields once before completing.
struct HoldsCounted {
  using Output = int;
  Counted c;
  bool yielded = false;
  Poll<int> poll(Context& cx) {
    if (!yielded) {
      yielded = true;
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready<int>(c.v);
  }
};

Task<int> counted_task(Counted c) {
  co_await yield_now();
  co_return c.v;
}

// ---- Scenarios (each a coroutine run by block_on on a fresh runtime) ----

Task<void> spawn_scenario(Arm arm, Outcome* out) {
  arm();
  for (int i = 0; i < 3; ++i) {
    try {
      JoinHandle<int> h = i == 0   ? spawn(HoldsCounted{Counted(7)})
                          : i == 1 ? spawn([c = Counted(8)]() { return counted_task(c); })
                                   : spawn(HoldsCounted{Counted(9)});
      if (i == 2) h.abort();
      JoinResult<int> r = co_await std::move(h);
      if (r.ok()) {
        if (r.value() != 7 + i) note(*out, "wrong task result");
      } else if (i == 2 && r.status().code() == absl::StatusCode::kCancelled) {
        // aborted, as asked
      } else {
        // A poll that threw std::bad_alloc (the coroutine frame, say).
        if (r.status().code() != absl::StatusCode::kInternal) note(*out, r.status().ToString());
        ++out->bad_allocs;
      }
    } catch (const std::bad_alloc&) {
      ++out->bad_allocs;
    }
  }
  AllocFailure::disarm();
}

// An op's result: OK, or (only when an allocation failed) kResourceExhausted.
void check_status(Outcome& out, const absl::Status& s, const char* what) {
  if (s.ok()) return;
  if (s.code() == absl::StatusCode::kResourceExhausted) {
    ++out.exhausted;
    return;
  }
  note(out, std::string(what) + ": " + s.ToString());
}

Task<void> op_scenario(Arm arm, Outcome* out, int pipe_r, int pipe_w, int sock_a, int sock_b,
                       int file_fd) {
  const std::string root = "/";
  arm();
  try {
    check_status(*out, co_await reactor::nop(), "nop");
    {
      reactor::IoResult w = co_await reactor::write(pipe_w, std::vector<char>(16, 'p'));
      if (w.buf.size() != 16) note(*out, "write lost its buffer");
      check_status(*out, w.n.status(), "write");
      if (w.n.ok()) {
        reactor::IoResult r = co_await reactor::read(pipe_r, std::vector<char>(16));
        if (r.buf.size() != 16) note(*out, "read lost its buffer");
        check_status(*out, r.n.status(), "read");
        // A read that could not start leaves the bytes for the next run's
        // drain; one that ran got all 16.
        if (r.n.ok() && *r.n != 16) note(*out, "short pipe read");
      }
    }
    {
      reactor::IoResult s = co_await reactor::send(sock_a, std::vector<char>(8, 's'));
      if (s.buf.size() != 8) note(*out, "send lost its buffer");
      check_status(*out, s.n.status(), "send");
      if (s.n.ok()) {
        reactor::IoResult r = co_await reactor::recv(sock_b, std::vector<char>(8));
        if (r.buf.size() != 8) note(*out, "recv lost its buffer");
        check_status(*out, r.n.status(), "recv");
      }
    }
    check_status(*out, co_await reactor::fsync(file_fd), "fsync");
    {
      absl::StatusOr<struct statx> st = co_await reactor::statx(AT_FDCWD, root, 0);
      check_status(*out, st.status(), "statx");
    }
  } catch (const std::bad_alloc&) {
    // Not from an op start (those return a status): the coroutine machinery.
    ++out->bad_allocs;
  }
  AllocFailure::disarm();
}

Task<int> semaphore_waiter(sync::Semaphore* sem, Counted c) {
  absl::StatusOr<sync::SemaphorePermit> p = co_await sem->acquire();
  co_return p.ok() ? c.v : -1;
}

Task<void> channel_scenario(Arm arm, Outcome* out) {
  arm();
  try {
    auto tx_rx = sync::mpsc::channel<Counted>(2);
    auto& tx = tx_rx.first;
    auto& rx = tx_rx.second;
    for (int i = 0; i < 2; ++i) {
      if (std::optional<Counted> back = co_await tx.send(Counted(i)); back) note(*out, "send refused");
    }
    for (int i = 0; i < 2; ++i) {
      std::optional<Counted> v = co_await rx.recv();
      if (!v || v->v != i) note(*out, "bounded recv lost a message");
    }
  } catch (const std::bad_alloc&) {
    ++out->bad_allocs;
  }
  try {
    auto tx_rx = sync::mpsc::unbounded_channel<Counted>();
    auto& tx = tx_rx.first;
    auto& rx = tx_rx.second;
    int sent = 0;
    for (int i = 0; i < 20; ++i) {
      try {
        if (tx.send(Counted(i))) note(*out, "unbounded send refused");
        ++sent;
      } catch (const std::bad_alloc&) {
        ++out->bad_allocs;  // the queue could not grow: that message only
      }
    }
    for (int i = 0; i < sent; ++i) {
      if (!(co_await rx.recv())) note(*out, "unbounded recv lost a message");
    }
  } catch (const std::bad_alloc&) {
    ++out->bad_allocs;
  }
  try {
    auto tx_rx = sync::oneshot::channel<Counted>();
    auto& tx = tx_rx.first;
    auto& rx = tx_rx.second;
    if (std::move(tx).send(Counted(5))) note(*out, "oneshot send refused");
    auto v = co_await std::move(rx);
    if (!v || v->v != 5) note(*out, "oneshot lost its value");
  } catch (const std::bad_alloc&) {
    ++out->bad_allocs;
  }
  try {
    sync::Semaphore sem(1);
    // Optional, so giving the permit back allocates nothing (an error
    // Status would: then the waiter, borrowing `sem`, could outlive it).
    std::optional<absl::StatusOr<sync::SemaphorePermit>> held(sem.try_acquire());
    if (!held->ok()) note(*out, "try_acquire failed");
    std::optional<JoinHandle<int>> waiter;
    try {
      waiter.emplace(spawn([&sem]() { return semaphore_waiter(&sem, Counted(3)); }));
    } catch (const std::bad_alloc&) {
      ++out->bad_allocs;
    }
    // Neither step allocates: the waiter always ends before `sem` does.
    if (waiter) {
      co_await yield_now();  // the waiter queues
      held.reset();          // gives the permit to the waiter
      JoinResult<int> r = co_await std::move(*waiter);
      if (r.ok() && r.value() != 3) note(*out, "semaphore waiter failed");
      if (!r.ok()) ++out->bad_allocs;  // its coroutine frame
    }
  } catch (const std::bad_alloc&) {
    ++out->bad_allocs;
  }
  AllocFailure::disarm();
}

// Runs one scenario on a fresh runtime and checks that nothing leaked.
using Scenario = std::function<Task<void>(Arm, Outcome*)>;

Outcome run_once(const Scenario& scenario, Arm arm) {
  Outcome out;
  const int cells_before = static_cast<int>(live_task_cells());
  const int fds_before = testing::open_fd_count();
  {
    absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
    if (!rt.ok()) {
      note(out, rt.status().ToString());
      return out;
    }
    rt->block_on(scenario(arm, &out));
    out.allocations = AllocFailure::count();
    out.failures = AllocFailure::failures();
    if (testing::live_ops(*rt) != 0) note(out, "an op slot stayed live");
  }
  if (Counted::live.load() != 0) note(out, "a Counted value leaked");
  if (live_task_cells() != cells_before) note(out, "a task cell leaked");
  if (testing::open_fd_count() != fds_before) note(out, "an fd leaked");
  Counted::live.store(0);
  return out;
}

void run_matrix(const char* name, const Scenario& scenario) {
  const Outcome base = run_once(scenario, Arm{0});
  ASSERT_EQ(base.errors, "") << name << ": the scenario fails without injected failures";
  ASSERT_EQ(base.failures, 0u);
  ASSERT_GT(base.allocations, 0u) << name << ": nothing allocated; the scenario tests nothing";
  int thrown = 0, exhausted = 0;
  for (uint64_t n = 1; n <= base.allocations; ++n) {
    const Outcome o = run_once(scenario, Arm{n});
    EXPECT_EQ(o.errors, "") << name << " with allocation " << n << " of " << base.allocations
                            << " failing";
    // A failure early on may skip the later allocations (the part it
    // failed did not run), so the n-th may never come.
    EXPECT_LE(o.failures, 1u) << name << " allocation " << n;
    thrown += o.bad_allocs;
    exhausted += o.exhausted;
  }
  std::printf("%s: %llu allocations, each failed once: %d std::bad_alloc, %d ResourceExhausted\n",
              name, static_cast<unsigned long long>(base.allocations), thrown, exhausted);
}

// ---- The noexcept paths: drops, cancels, wakes ----

// Polls *f once; Ready(true) if it was Pending.
template <class F>
struct PollOnce {
  using Output = bool;
  F* f;
  Poll<bool> poll(Context& cx) { return Ready<bool>(f->poll(cx).is_pending()); }
};
template <class F>
PollOnce<F> poll_once(F& f) {
  return PollOnce<F>{&f};
}

// What a noexcept step tried to allocate, with every allocation failing.
struct NoAlloc {
  std::string name;
  uint64_t attempts;
};

// Runs `step` with every allocation of this thread failing.
template <class Step>
void without_memory(std::vector<NoAlloc>* log, const char* name, Step&& step) {
  AllocFailure::fail_all();
  step();
  AllocFailure::disarm();
  log->push_back(NoAlloc{name, AllocFailure::count()});
}

Task<int> wait_notified(sync::Notify* n) {
  co_await n->notified();
  co_return 1;
}

Task<void> noexcept_scenario(int pipe_r, std::vector<NoAlloc>* log) {
  for (int round = 0; round < 2; ++round) {  // round 0 warms up (first-use allocations)
    std::vector<NoAlloc> scratch;
    std::vector<NoAlloc>* out = round == 0 ? &scratch : log;
    {
      std::optional<reactor::DataOp> op(reactor::read(pipe_r, std::vector<char>(16)));
      if (!co_await poll_once(*op)) out->push_back(NoAlloc{"read was not pending", 1});
      without_memory(out, "drop a read in flight (cancel)", [&] { op.reset(); });
    }
    {
      std::optional<Sleep> sl(sleep(absl::Seconds(30)));
      (void)co_await poll_once(*sl);
      without_memory(out, "drop an armed Sleep", [&] { sl.reset(); });
    }
    {
      sync::Notify notify;
      JoinHandle<int> h = spawn([&notify] { return wait_notified(&notify); });
      co_await yield_now();  // it waits now
      without_memory(out, "notify_one waking a task", [&] { notify.notify_one(); });
      (void)co_await std::move(h);
    }
    {
      sync::Semaphore sem(0);
      std::optional<sync::Acquire> acq(sem.acquire());
      (void)co_await poll_once(*acq);
      without_memory(out, "drop a queued Semaphore acquire", [&] { acq.reset(); });
      std::optional<sync::Acquire> acq2(sem.acquire());
      (void)co_await poll_once(*acq2);
      without_memory(out, "Semaphore release to a waiter", [&] { sem.release(1); });
      acq2.reset();
    }
    {
      auto tx_rx = sync::mpsc::channel<Counted>(4);
      auto& tx = tx_rx.first;
      auto& rx = tx_rx.second;
      {
        auto r = rx.recv();
        (void)co_await poll_once(r);
        without_memory(out, "mpsc send waking the receiver", [&] { (void)tx.try_send(Counted(1)); });
      }
      {
        auto tx2_rx2 = sync::mpsc::channel<Counted>(4);  // the sender keeps it open
        auto& rx2 = tx2_rx2.second;
        std::optional<decltype(rx2.recv())> r2(rx2.recv());
        (void)co_await poll_once(*r2);
        without_memory(out, "drop a waiting mpsc recv", [&] { r2.reset(); });
      }
    }
    {
      JoinHandle<int> h = spawn([]() { return counted_task(Counted(2)); });
      co_await yield_now();  // it is idle, waiting for its own yield
      without_memory(out, "abort a task", [&] { h.abort(); });
      (void)co_await std::move(h);
    }
  }
}

class AllocFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!AllocFailure::replacement_active()) GTEST_SKIP() << testing::kInactiveMessage;
    if (!testing::on_current_thread()) GTEST_SKIP() << testing::kCurrentThreadOnly;
  }
};

TEST_F(AllocFailureTest, InjectorCountsAndFails) {
  AllocFailure::fail_nth(2);
  auto* a = new int(1);
  EXPECT_THROW((void)new int(2), std::bad_alloc);
  auto* c = new (std::nothrow) int(3);
  AllocFailure::disarm();
  EXPECT_EQ(AllocFailure::count(), 3u);
  EXPECT_EQ(AllocFailure::failures(), 1u);
  delete a;
  delete c;
  AllocFailure::fail_all();
  EXPECT_EQ(new (std::nothrow) int(4), nullptr);
  AllocFailure::disarm();
}

TEST_F(AllocFailureTest, SpawnFailsCleanly) { run_matrix("spawn", spawn_scenario); }

TEST_F(AllocFailureTest, OpStartFailsWithAStatus) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  int s[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s), 0);
  char path[] = "/tmp/pollux_alloc_failure_XXXXXX";
  const int file = ::mkostemp(path, O_CLOEXEC);
  ASSERT_GE(file, 0);
  ::unlink(path);
  auto drain = [&] {
    // Bytes a run wrote but did not read (its read failed to start).
    char junk[64];
    ::fcntl(p[0], F_SETFL, O_NONBLOCK);
    while (::read(p[0], junk, sizeof junk) > 0) {}
    ::fcntl(p[0], F_SETFL, 0);
    while (::recv(s[1], junk, sizeof junk, MSG_DONTWAIT) > 0) {}
  };
  run_matrix("op start", [&](Arm arm, Outcome* out) {
    drain();
    return op_scenario(arm, out, p[0], p[1], s[0], s[1], file);
  });
  for (int fd : {p[0], p[1], s[0], s[1], file}) ::close(fd);
}

TEST_F(AllocFailureTest, ChannelsFailCleanly) { run_matrix("channels", channel_scenario); }

}  // namespace
}  // namespace pollux

namespace pollux {
namespace {

TEST_F(AllocFailureTest, NoexceptPathsNeverAllocate) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::vector<NoAlloc> log;
  {
    absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt->block_on(noexcept_scenario(p[0], &log));
    EXPECT_EQ(testing::live_ops(*rt), 0u);
  }
  ASSERT_FALSE(log.empty());
  for (const NoAlloc& a : log) {
    std::printf("  %-36s %llu allocation attempts\n", a.name.c_str(),
                static_cast<unsigned long long>(a.attempts));
    EXPECT_EQ(a.attempts, 0u) << a.name << " tried to allocate (every allocation failing)";
  }
  ::close(p[0]);
  ::close(p[1]);
}

}  // namespace
}  // namespace pollux
