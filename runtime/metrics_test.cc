// Tests for Runtime::metrics() (runtime/metrics.h): after a known workload
// each counter equals what the workload did (spawns, alive tasks, polls,
// budget-forced yields, ops submitted/completed/cancelled, steals, LIFO-slot
// hits, parks, queue depths, the blocking pool), metrics() may be called from
// another thread while the runtime runs (run under --config=tsan-clang), and
// to_prometheus() is valid text exposition format.
//
// Every flavour (tests/flavour.h) and both backends run the tests that build
// their runtime with runtime_builder(); the exact poll, park and depth
// counts hold on current_thread, where block_on's root is not a task and
// nothing runs behind the test's back, and are bounds elsewhere.
#include "runtime/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/poll_fn.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "sync/notify.h"
#include "sync/oneshot.h"
#include "tests/flavour.h"
#include "tests/sanitizers.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"

namespace pollux {
namespace {

using pollux::testing::on_current_thread;
using testing::Watchdog;
using Clock = std::chrono::steady_clock;

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

template <class T>
JoinResult<OrUnit<T>> join_here(JoinHandle<T> h) {
  LocalExecutor ex;
  return ex.block_on(std::move(h));
}

// Spins (sleeping 1 ms between looks) until `pred` or `limit`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto end = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

int r_value() { return 42; }

// On the multi-thread flavours block_on's future is a spawned task.
uint64_t root_tasks() { return on_current_thread() ? 0 : 1; }

class MetricsTest : public ::testing::Test {
 protected:
  Watchdog dog_{std::chrono::seconds(120), "metrics test"};
};

TEST_F(MetricsTest, ShapeNamesTheFlavourBackendAndWorkers) {
  Runtime rt = make_runtime();
  const RuntimeMetrics m = rt.metrics();
  EXPECT_EQ(m.workers, rt.worker_count());
  EXPECT_EQ(m.per_worker.size(), rt.worker_count());
  EXPECT_EQ(m.backend, rt.backend().name());
  const char* expected = on_current_thread() ? "current_thread"
                         : pollux::testing::test_flavour() ==
                                 pollux::testing::TestFlavour::kMultiThread
                             ? "multi_thread"
                             : "thread_per_core";
  EXPECT_EQ(m.flavour, expected);
  EXPECT_EQ(m.spawns_total, 0u);
  EXPECT_EQ(m.alive_tasks, 0u);
  EXPECT_EQ(m.total().ops_submitted, 0u);
}

// N spawned tasks waiting on a channel: spawns and alive tasks are N (plus
// the root on the multi-thread flavours) while they wait, and alive falls
// back once they finish.
TEST_F(MetricsTest, SpawnsAndAliveTasksAreExact) {
  Runtime rt = make_runtime();
  constexpr int kTasks = 12;
  struct Seen {
    uint64_t spawns = 0;
    uint64_t alive = 0;
    uint64_t worker_spawns = 0;
  };
  Seen seen = rt.block_on([&rt]() -> Task<Seen> {
    std::vector<sync::oneshot::Sender<int>> txs;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kTasks; ++i) {
      auto [tx, rx] = sync::oneshot::channel<int>();
      txs.push_back(std::move(tx));
      hs.push_back(pollux::spawn([rx = std::move(rx)]() mutable -> Task<void> {
        (void)co_await std::move(rx);
      }));
    }
    const RuntimeMetrics m = rt.metrics();
    Seen s{m.spawns_total, m.alive_tasks, m.total().spawns};
    txs.clear();  // every receiver completes (sender dropped)
    for (JoinHandle<void>& h : hs) (void)co_await std::move(h);
    co_return s;
  }());
  EXPECT_EQ(seen.spawns, kTasks + root_tasks());
  EXPECT_EQ(seen.alive, kTasks + root_tasks());
  if (on_current_thread()) {
    EXPECT_EQ(seen.worker_spawns, uint64_t{kTasks});
  }
  // The root's JoinHandle is ready just before its task leaves OwnedTasks.
  EXPECT_TRUE(eventually([&] { return rt.metrics().alive_tasks == 0; }))
      << rt.metrics().alive_tasks << " still alive";
  EXPECT_EQ(rt.metrics().spawns_total, kTasks + root_tasks());
}

// Five tasks that each yield three times are polled exactly 5 * 4 times on
// current_thread (the root future is not a task); at least that elsewhere.
TEST_F(MetricsTest, PollsAreExactForAKnownSetOfTasks) {
  Runtime rt = make_runtime();
  constexpr int kTasks = 5;
  constexpr int kYields = 3;
  const uint64_t before = rt.metrics().total().polls;
  EXPECT_EQ(before, 0u);
  rt.block_on([]() -> Task<void> {
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(pollux::spawn([]() -> Task<void> {
        for (int y = 0; y < kYields; ++y) co_await yield_now();
      }));
    }
    for (JoinHandle<void>& h : hs) (void)co_await std::move(h);
  }());
  constexpr uint64_t kPolls = kTasks * (kYields + 1);
  if (on_current_thread()) {
    EXPECT_EQ(rt.metrics().total().polls, kPolls);
  } else {
    // A worker adds its polls as its tick ends, which may be just after
    // the JoinHandle block_on waits for is ready.
    EXPECT_TRUE(eventually([&] { return rt.metrics().total().polls >= kPolls; }))
        << rt.metrics().total().polls;
  }
  EXPECT_EQ(rt.metrics().total().budget_forced_yields, 0u);
}

// A task whose leaf future (a Notify with a stored permit) is always ready
// runs 300 iterations: the budget of 128 refuses it at the 129th and the
// 257th, so two forced yields and three polls, on every flavour.
TEST_F(MetricsTest, BudgetForcedYieldsAreExact) {
  Runtime rt = make_runtime();
  constexpr int kIterations = 300;
  rt.block_on([]() -> Task<void> {
    JoinHandle<void> h = pollux::spawn([]() -> Task<void> {
      sync::Notify n;
      for (int i = 0; i < kIterations; ++i) {
        n.notify_one();
        co_await n.notified();
      }
    });
    (void)co_await std::move(h);
  }());
  const WorkerMetrics t = rt.metrics().total();
  EXPECT_EQ(t.budget_forced_yields, 2u);
  if (on_current_thread()) {
    EXPECT_EQ(t.polls, 3u);
  }
}

// M nops: M submitted and M completed; one read dropped in flight: one
// submitted and one cancelled. The backends count only the futures' ops
// (not their own eventfd reads or cancels), so the sums are exact on both
// backends and every flavour. Kernel entries grow with a sleep.
TEST_F(MetricsTest, OpsSubmittedCompletedCancelledAreExact) {
  Runtime rt = make_runtime();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  OwnedFd rd(p[0]);
  OwnedFd wr(p[1]);
  constexpr int kNops = 10;
  struct Deltas {
    WorkerMetrics nops;
    WorkerMetrics cancel;
    uint64_t entries_before_sleep = 0;
    uint64_t entries_after_sleep = 0;
  };
  const int fd = rd.get();
  Deltas d = rt.block_on([&rt, fd]() -> Task<Deltas> {
    Deltas out;
    const WorkerMetrics m0 = rt.metrics().total();
    for (int i = 0; i < kNops; ++i) {
      absl::Status s = co_await reactor::nop();
      EXPECT_TRUE(s.ok()) << s;
    }
    const WorkerMetrics m1 = rt.metrics().total();
    {
      // Polled once (Pending: the pipe is empty), then dropped.
      reactor::DataOp op = reactor::read(fd, std::vector<char>(16));
      co_await poll_fn([&op](Context& cx) -> Poll<void> {
        EXPECT_TRUE(op.poll(cx).is_pending());
        return Ready{};
      });
    }
    const WorkerMetrics m2 = rt.metrics().total();
    out.entries_before_sleep = m2.kernel_entries;
    co_await sleep(absl::Milliseconds(2));
    out.entries_after_sleep = rt.metrics().total().kernel_entries;
    out.nops.ops_submitted = m1.ops_submitted - m0.ops_submitted;
    out.nops.ops_completed = m1.ops_completed - m0.ops_completed;
    out.nops.ops_cancelled = m1.ops_cancelled - m0.ops_cancelled;
    out.cancel.ops_submitted = m2.ops_submitted - m1.ops_submitted;
    out.cancel.ops_completed = m2.ops_completed - m1.ops_completed;
    out.cancel.ops_cancelled = m2.ops_cancelled - m1.ops_cancelled;
    co_return out;
  }());
  EXPECT_EQ(d.nops.ops_submitted, uint64_t{kNops});
  EXPECT_EQ(d.nops.ops_completed, uint64_t{kNops});
  EXPECT_EQ(d.nops.ops_cancelled, 0u);
  EXPECT_EQ(d.cancel.ops_submitted, 1u);
  EXPECT_EQ(d.cancel.ops_completed, 0u);
  EXPECT_EQ(d.cancel.ops_cancelled, 1u);
  EXPECT_GT(d.entries_after_sleep, d.entries_before_sleep);
  const WorkerMetrics t = rt.metrics().total();
  EXPECT_EQ(t.ops_submitted, t.ops_completed + t.ops_cancelled);
}

// current_thread: K rounds in which the root waits on a channel that another
// thread fills only once the runtime has parked (the counter is bumped just
// before the park) park the thread exactly K times: an unbounded park
// returns only for the unpark. Sleeps park too (at least once each; a
// timed park may wake a little before its deadline and park again), and
// elsewhere every worker parks while idle.
TEST_F(MetricsTest, ParksAreCountedAfterKnownIdle) {
  Runtime rt = make_runtime();
  constexpr int kRounds = 4;
  const uint64_t before = rt.metrics().total().parks;
  if (on_current_thread()) {
    EXPECT_EQ(before, 0u);
    for (int r = 0; r < kRounds; ++r) {
      auto [tx, rx] = sync::oneshot::channel<int>();
      const uint64_t parks = rt.metrics().total().parks;
      std::thread sender([&rt, parks, tx = std::move(tx)]() mutable {
        if (!eventually([&] { return rt.metrics().total().parks > parks; })) return;
        (void)std::move(tx).send(r_value());
      });
      std::optional<int> got = rt.block_on(std::move(rx));
      sender.join();
      EXPECT_TRUE(got.has_value()) << "round " << r << ": the runtime never parked";
    }
    EXPECT_EQ(rt.metrics().total().parks, uint64_t{kRounds});
  }
  const uint64_t before_sleeps = rt.metrics().total().parks;
  rt.block_on([]() -> Task<void> {
    for (int i = 0; i < kRounds; ++i) co_await sleep(absl::Milliseconds(3));
  }());
  const RuntimeMetrics m = rt.metrics();
  if (on_current_thread()) {
    EXPECT_GE(m.total().parks - before_sleeps, uint64_t{kRounds});
  } else {
    for (size_t i = 0; i < m.workers; ++i) {
      EXPECT_TRUE(eventually([&] { return rt.metrics().per_worker[i].parks >= 1; }))
          << "worker " << i << " never parked";
    }
  }
}

// current_thread: five tasks that yield many times fill the run queue; after
// one tick (61 polls) all five are queued again. Spawns from another thread
// wait in the inject queue while the root's poll holds the thread.
TEST_F(MetricsTest, QueueDepthsOnCurrentThread) {
  if (!on_current_thread()) GTEST_SKIP() << pollux::testing::kCurrentThreadOnly;
  Runtime rt = make_runtime();
  Handle handle = rt.handle();
  struct Seen {
    uint64_t local = 0;
    uint64_t inject = 0;
    uint64_t runtime_inject = 0;
    uint64_t spawns_before_adoption = 0;
  };
  auto stop = std::make_shared<std::atomic<bool>>(false);
  Seen seen = rt.block_on([&rt, handle, stop]() -> Task<Seen> {
    Seen s;
    std::vector<JoinHandle<void>> hs;
    for (int i = 0; i < 5; ++i) {
      hs.push_back(pollux::spawn([stop]() -> Task<void> {
        for (int n = 0; n < 100'000 && !stop->load(); ++n) co_await yield_now();
      }));
    }
    co_await yield_now();  // one tick runs: 61 polls of the five
    s.local = rt.metrics().per_worker[0].local_queue_depth;
    std::vector<JoinHandle<void>> remote;
    std::thread t([&] {
      for (int i = 0; i < 3; ++i) remote.push_back(handle.spawn([]() -> Task<void> { co_return; }));
    });
    t.join();  // the root's poll holds the thread: none is adopted yet
    const RuntimeMetrics m = rt.metrics();
    s.inject = m.per_worker[0].inject_queue_depth;
    s.runtime_inject = m.inject_queue_depth;
    s.spawns_before_adoption = m.spawns_total;
    stop->store(true);
    for (JoinHandle<void>& h : hs) (void)co_await std::move(h);
    for (JoinHandle<void>& h : remote) (void)co_await std::move(h);
    co_return s;
  }());
  EXPECT_EQ(seen.local, 5u);
  EXPECT_EQ(seen.inject, 3u);
  EXPECT_EQ(seen.runtime_inject, 3u);
  EXPECT_EQ(seen.spawns_before_adoption, 5u);
  const RuntimeMetrics m = rt.metrics();
  EXPECT_EQ(m.spawns_total, 8u);
  EXPECT_EQ(m.inject_queue_depth, 0u);
  EXPECT_EQ(m.per_worker[0].local_queue_depth, 0u);
}

// multi_thread(2): worker 0 spawns K children onto its stealable queue and
// then blocks in one long poll until they are all done, so worker 1 steals
// every one of them: K tasks stolen, by worker 1 only, in at least
// log2(K) + 1 steals (each takes at most half of what is queued).
TEST_F(MetricsTest, StealsAreExactOnMultiThread) {
  absl::StatusOr<Runtime> built = Runtime::Builder().multi_thread(2).enable_all().build();
  ASSERT_TRUE(built.ok()) << built.status();
  Runtime& rt = *built;
  constexpr int kChildren = 16;
  // Plain pointers into this frame (it outlives the join): with shared_ptr
  // copies captured by the poll_fn lambda nested in the coroutine lambda,
  // GCC 12 builds freed the flag before the test read it (ASan: use after
  // free), which looks like a compiler bug; pointers avoid the question.
  std::atomic<int> done{0};
  std::atomic<bool> timed_out{false};
  JoinHandle<void> root = rt.spawn_on(0, [d = &done, t = &timed_out]() -> Task<void> {
    for (int i = 0; i < kChildren; ++i) {
      pollux::spawn([d]() -> Task<void> {
        d->fetch_add(1);
        co_return;
      }).detach();
    }
    co_await poll_fn([d, t](Context&) -> Poll<void> {
      if (!eventually([d] { return d->load() == kChildren; })) t->store(true);
      return Ready{};
    });
  });
  ASSERT_TRUE(join_here(std::move(root)).ok());
  ASSERT_FALSE(timed_out.load()) << done.load() << " of the children ran";
  const RuntimeMetrics m = rt.metrics();
  EXPECT_EQ(m.per_worker[0].steals, 0u);
  EXPECT_EQ(m.per_worker[1].steals, uint64_t{kChildren});
  EXPECT_EQ(m.per_worker[0].steal_operations, 0u);
  EXPECT_GE(m.per_worker[1].steal_operations, 5u);
  EXPECT_LE(m.per_worker[1].steal_operations, uint64_t{kChildren});
  EXPECT_EQ(m.spawns_total, kChildren + 1u);
}

// multi_thread(2): A (pinned to worker 0) wakes B (spawn_local: pinned there
// too) while A runs, so B goes to the LIFO slot and is polled from it once;
// B's completion wakes A after B's poll, not from the LIFO slot.
TEST_F(MetricsTest, LifoSlotHitsAreExactOnMultiThread) {
  absl::StatusOr<Runtime> built = Runtime::Builder().multi_thread(2).enable_all().build();
  ASSERT_TRUE(built.ok()) << built.status();
  Runtime& rt = *built;
  JoinHandle<void> a = rt.spawn_on(0, []() -> Task<void> {
    auto [tx, rx] = sync::oneshot::channel<int>();
    JoinHandle<void> b = spawn_local([rx = std::move(rx)]() mutable -> Task<void> {
      (void)co_await std::move(rx);
    });
    co_await yield_now();  // B runs first and waits on the channel
    (void)std::move(tx).send(1);
    (void)co_await std::move(b);
  });
  ASSERT_TRUE(join_here(std::move(a)).ok());
  const RuntimeMetrics m = rt.metrics();
  EXPECT_EQ(m.per_worker[0].lifo_slot_hits, 1u);
  EXPECT_EQ(m.per_worker[1].lifo_slot_hits, 0u);
}

// The blocking pool's threads and queue: with one thread busy, a second
// job waits in the queue.
TEST_F(MetricsTest, BlockingPoolThreadsAndQueue) {
  absl::StatusOr<Runtime> built =
      pollux::testing::runtime_builder().enable_all().max_blocking_threads(1).build();
  ASSERT_TRUE(built.ok()) << built.status();
  Runtime& rt = *built;
  auto release = std::make_shared<std::atomic<bool>>(false);
  auto started = std::make_shared<std::atomic<bool>>(false);
  JoinHandle<void> first = rt.spawn_blocking([release, started] {
    started->store(true);
    while (!release->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  ASSERT_TRUE(eventually([&] { return started->load(); }));
  JoinHandle<int> second = rt.spawn_blocking([] { return 7; });
  const RuntimeMetrics m = rt.metrics();
  EXPECT_EQ(m.blocking_threads, 1u);
  EXPECT_EQ(m.blocking_idle_threads, 0u);
  EXPECT_EQ(m.blocking_queue_depth, 1u);
  release->store(true);
  EXPECT_TRUE(join_here(std::move(first)).ok());
  EXPECT_EQ(join_here(std::move(second)).value(), 7);
  EXPECT_TRUE(eventually([&] { return rt.metrics().blocking_idle_threads == 1; }));
  EXPECT_EQ(rt.metrics().blocking_queue_depth, 0u);
}

// metrics() and to_prometheus() from another thread in a loop while the
// runtime spawns, yields, does nops and sleeps (TSan: no race), and the
// counters it sees never go backwards.
TEST_F(MetricsTest, MetricsFromAnotherThreadWhileTheRuntimeRuns) {
  Runtime rt = make_runtime();
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::atomic<bool> went_backwards{false};
  std::thread reader([&] {
    uint64_t last_polls = 0;
    uint64_t last_ops = 0;
    while (!stop.load()) {
      const RuntimeMetrics m = rt.metrics();
      const WorkerMetrics t = m.total();
      if (t.polls < last_polls || t.ops_submitted < last_ops) went_backwards.store(true);
      last_polls = t.polls;
      last_ops = t.ops_submitted;
      (void)m.to_prometheus();
      reads.fetch_add(1);
    }
  });
  constexpr int kRounds = pollux::testing::kUnderTsan ? 20 : 100;
  rt.block_on([]() -> Task<void> {
    for (int r = 0; r < kRounds; ++r) {
      std::vector<JoinHandle<void>> hs;
      for (int i = 0; i < 8; ++i) {
        hs.push_back(pollux::spawn([]() -> Task<void> {
          co_await yield_now();
          (void)co_await reactor::nop();
        }));
      }
      for (JoinHandle<void>& h : hs) (void)co_await std::move(h);
      if (r % 10 == 0) co_await sleep(absl::Milliseconds(1));
    }
  }());
  EXPECT_TRUE(eventually([&] { return reads.load() >= 2; }));
  stop.store(true);
  reader.join();
  EXPECT_FALSE(went_backwards.load());
  const WorkerMetrics t = rt.metrics().total();
  EXPECT_EQ(t.ops_submitted, uint64_t{kRounds} * 8);
  EXPECT_EQ(t.ops_completed, uint64_t{kRounds} * 8);
  EXPECT_TRUE(eventually([&] { return rt.metrics().total().polls >= uint64_t{kRounds} * 8 * 2; }));
}

// ---- to_prometheus ----

RuntimeMetrics sample_metrics() {
  RuntimeMetrics m;
  m.flavour = "multi_thread";
  m.backend = "io_uring";
  m.workers = 2;
  m.alive_tasks = 3;
  m.spawns_total = 40;
  m.inject_queue_depth = 1;
  m.blocking_threads = 2;
  m.blocking_idle_threads = 1;
  m.blocking_queue_depth = 0;
  WorkerMetrics w0;
  w0.polls = 123;
  w0.ops_submitted = 9;
  w0.kernel_entries = 5;
  WorkerMetrics w1;
  w1.polls = 7;
  w1.steals = 4;
  w1.local_queue_depth = 2;
  m.per_worker = {w0, w1};
  return m;
}

TEST(MetricsPrometheusTest, SamplesCarryTheirValuesAndLabels) {
  const std::string text = sample_metrics().to_prometheus();
  EXPECT_NE(text.find("\npollux_worker_polls_total{worker=\"0\"} 123\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\npollux_worker_polls_total{worker=\"1\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("\npollux_worker_steals_total{worker=\"1\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("\npollux_worker_local_queue_depth{worker=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("\npollux_worker_ops_submitted_total{worker=\"0\",backend=\"io_uring\"} 9\n"),
            std::string::npos);
  EXPECT_NE(text.find("\npollux_worker_kernel_entries_total{worker=\"0\",backend=\"io_uring\"} 5\n"),
            std::string::npos);
  EXPECT_NE(text.find("\npollux_spawns_total 40\n"), std::string::npos);
  EXPECT_NE(text.find("\npollux_alive_tasks 3\n"), std::string::npos);
  EXPECT_NE(text.find("\npollux_blocking_threads 2\n"), std::string::npos);
  EXPECT_NE(text.find("pollux_runtime_info{flavour=\"multi_thread\",backend=\"io_uring\"} 1\n"),
            std::string::npos);
}

// The grammar of the text format: every line is a # HELP, a # TYPE or a
// sample; each family's HELP and TYPE come once, before its samples;
// counters end in _total, and depths and thread counts are gauges.
TEST(MetricsPrometheusTest, IsValidTextExpositionFormat) {
  const std::string text = sample_metrics().to_prometheus();
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge))");
  const std::regex sample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? [0-9]+)");
  std::set<std::string> helped;
  std::set<std::string> typed;
  std::string current;
  std::string current_type;
  int samples = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch mt;
    if (std::regex_match(line, mt, help)) {
      EXPECT_TRUE(helped.insert(mt[1]).second) << "HELP twice: " << line;
      current = mt[1];
    } else if (std::regex_match(line, mt, type)) {
      EXPECT_EQ(mt[1], current) << "TYPE without its HELP: " << line;
      EXPECT_TRUE(typed.insert(mt[1]).second) << "TYPE twice: " << line;
      current_type = mt[2];
      const bool total = current.size() > 6 && current.substr(current.size() - 6) == "_total";
      EXPECT_EQ(total, current_type == "counter") << line;
      if (current.find("depth") != std::string::npos ||
          current.find("threads") != std::string::npos) {
        EXPECT_EQ(current_type, "gauge") << line;
      }
    } else if (std::regex_match(line, mt, sample)) {
      EXPECT_EQ(mt[1], current) << "a sample outside its family: " << line;
      EXPECT_TRUE(typed.count(mt[1])) << line;
      ++samples;
    } else {
      ADD_FAILURE() << "not a valid line: '" << line << "'";
    }
  }
  EXPECT_GT(samples, 20);
  EXPECT_TRUE(typed.count("pollux_worker_polls_total"));
  EXPECT_TRUE(typed.count("pollux_worker_kernel_entries_total"));
  EXPECT_TRUE(typed.count("pollux_inject_queue_depth"));
}

TEST(MetricsPrometheusTest, LabelValuesAreEscaped) {
  RuntimeMetrics m = sample_metrics();
  m.backend = "a\"b\\c\nd";
  const std::string text = m.to_prometheus();
  EXPECT_NE(text.find("backend=\"a\\\"b\\\\c\\nd\""), std::string::npos) << text;
}

TEST(MetricsTotalTest, SumsEveryWorker) {
  const WorkerMetrics t = sample_metrics().total();
  EXPECT_EQ(t.polls, 130u);
  EXPECT_EQ(t.steals, 4u);
  EXPECT_EQ(t.ops_submitted, 9u);
  EXPECT_EQ(t.local_queue_depth, 2u);
}

}  // namespace
}  // namespace pollux
