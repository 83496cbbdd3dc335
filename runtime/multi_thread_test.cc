// Stress and behaviour tests of the multi_thread flavour (runtime.h,
// executor/multi_thread/scheduler.h) on 2 workers (issue 12): cross-thread
// wakes none of which is lost, 1,000,000 spawns each destroyed exactly once,
// abort() from a foreign thread, a waker woken before its poll returns
// Pending, stealing (and never stealing a pinned task), starvation of timers
// and I/O by an always-ready task, and shutdown racing every kind of queued
// and in-flight work.
//
// Every loop is bounded in count and in time; a Watchdog turns a hang (a
// lost wake-up) into an abort that says which test. Sleeps only give a steal
// or the kernel a chance, never stand in for a synchronisation. Counts are
// scaled down under TSan (kScale), never in the plain build.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "executor/context.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "sync/notify.h"
#include "sync/oneshot.h"
#include "tests/fd_count.h"
#include "tests/sanitizers.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"


namespace pollux {
namespace {

using testing::Counted;
using testing::open_fd_count;
using testing::Watchdog;
using Clock = std::chrono::steady_clock;

#ifdef POLLUX_TESTS_TSAN
constexpr int64_t kScale = 2;  // TSan: 1/2 of every count
#else
constexpr int64_t kScale = 1;
#endif

Runtime make_mt(size_t workers = 2) {
  absl::StatusOr<Runtime> rt = Runtime::Builder().multi_thread(workers).enable_all().build();
  POLLUX_CHECK(rt.ok(), std::string(rt.status().message()).c_str());
  return std::move(*rt);
}

// Parks this (foreign) thread until `h` is ready.
template <class T>
auto join_here(JoinHandle<T> h) {
  LocalExecutor ex;
  return ex.block_on(std::move(h));
}

// Waits (yielding the CPU) until pred() or `limit` passes; returns pred().
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > deadline) return pred();
    std::this_thread::yield();
  }
  return true;
}

// Blocks the calling thread's CPU until pred() or `limit`; true when pred().
template <class Pred>
bool spin_until(Pred pred, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
  }
  return true;
}

// live_task_cells() once every late reference (a waker a cancelled op or
// timer gave back on its worker) is gone: bounded.
int64_t settled_task_cells(int64_t expected) {
  wait_until([&] { return live_task_cells() == expected; }, std::chrono::seconds(5));
  return live_task_cells();
}


// The running task's pin count (TaskPin), or -1 outside a task poll.
[[maybe_unused]] int64_t current_pins() {
  std::atomic<uint32_t>* p = RuntimeContext::current().task_pins;
  return p == nullptr ? -1 : int64_t{p->load(std::memory_order_relaxed)};
}

// A pipe whose ends the test owns; a reader task borrows the read end.
// The write end is non-blocking (a writer thread never blocks on a full one).
struct Pipe {
  Pipe() {
    int p[2];
    POLLUX_CHECK(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
    POLLUX_CHECK(::fcntl(p[1], F_SETFL, O_NONBLOCK) == 0, "fcntl");
    r = std::make_shared<OwnedFd>(p[0]);
    w = std::make_shared<OwnedFd>(p[1]);
  }
  std::shared_ptr<OwnedFd> r, w;
};

class MultiThreadTest : public ::testing::Test {
 protected:
  // Every test takes seconds (under TSan too): a hang is a lost wake-up.
  Watchdog dog_{std::chrono::seconds(120),
                std::string("MultiThreadTest.") +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name()};
};

// ------------------------------------------------------------ 1. cross-thread wakes

// What a foreign thread wakes: the task publishes its waker once; each
// wake follows a store of `sent`, and every poll records what it saw.
struct WakeTarget {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> seen{0};
  std::atomic<uint64_t> polls{0};
  std::mutex mu;
  Waker waker;
  std::atomic<bool> has_waker{false};
};

// Pending until it sees `target`; its output is its poll count.
class CountWakes {
 public:
  using Output = uint64_t;
  CountWakes(std::shared_ptr<WakeTarget> t, uint64_t target) : t_(std::move(t)), target_(target) {}
  Poll<uint64_t> poll(Context& cx) {
    const uint64_t polls = t_->polls.fetch_add(1, std::memory_order_relaxed) + 1;
    if (!t_->has_waker.load(std::memory_order_relaxed)) {
      std::lock_guard lock(t_->mu);
      t_->waker = cx.waker();
      t_->has_waker.store(true, std::memory_order_release);
    }
    const uint64_t v = t_->sent.load(std::memory_order_acquire);
    t_->seen.store(v, std::memory_order_release);
    if (v >= target_) return Ready<uint64_t>{polls};
    return Pending{};
  }

 private:
  std::shared_ptr<WakeTarget> t_;
  uint64_t target_;
};

// The foreign side: `n` stores and wakes (alternately by reference and by
// value), and every 1..128 wakes (at random) a wait until the task saw the
// last one, so that the task goes idle and its worker parks between them.
// Returns the number of such round trips, or -1 (and the index) on a lost wake.
int64_t wake_n_times(WakeTarget& t, uint64_t n, uint32_t seed, uint64_t* lost_at,
                     uint64_t max_gap = 128, int max_jitter_ns = 30000,
                     std::chrono::milliseconds patience = std::chrono::seconds(20)) {
  if (!wait_until([&] { return t.has_waker.load(std::memory_order_acquire); })) return -1;
  Waker w;
  {
    std::lock_guard lock(t.mu);
    w = t.waker;
  }
  std::mt19937 rng(seed);
  std::uniform_int_distribution<uint64_t> gap(1, max_gap);
  std::uniform_int_distribution<int> jitter_ns(0, max_jitter_ns);
  uint64_t next_sync = gap(rng);
  int64_t syncs = 0;
  bool after_sync = false;
  for (uint64_t i = 1; i <= n; ++i) {
    if (after_sync) {
      // The worker is on its way to sleep: land this wake at a random point
      // of that path (going idle, searching, parking), where a lost wake-up
      // hides.
      const auto until = Clock::now() + std::chrono::nanoseconds(jitter_ns(rng));
      while (Clock::now() < until) {
      }
      after_sync = false;
    }
    t.sent.store(i, std::memory_order_release);
    if (i % 2 == 0) {
      w.wake_by_ref();
    } else {
      Waker c = w;
      std::move(c).wake();
    }
    if (i == next_sync || i == n) {
      if (!wait_until([&] { return t.seen.load(std::memory_order_acquire) >= i; }, patience)) {
        *lost_at = i;
        return -1;
      }
      ++syncs;
      after_sync = true;
      next_sync = i + gap(rng);
    }
  }
  return syncs;
}

TEST_F(MultiThreadTest, AMillionCrossThreadWakesNoneLost) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  // 2 x 400,000 wakes from foreign threads, and 100,000 round trips (200,000
  // wakes) between tasks pinned to the two workers.
  constexpr uint64_t kForeignWakes = 400'000 / kScale;
  constexpr int kRoundTrips = 100'000 / kScale;
  {
    Runtime rt = make_mt();
    std::array<std::shared_ptr<WakeTarget>, 2> targets;
    std::vector<JoinHandle<uint64_t>> hs;
    for (auto& t : targets) {
      t = std::make_shared<WakeTarget>();
      hs.push_back(rt.spawn(CountWakes(t, kForeignWakes)));
    }
    std::array<int64_t, 2> syncs{};
    std::array<uint64_t, 2> lost_at{};
    std::vector<std::thread> wakers;
    for (int k = 0; k < 2; ++k) {
      wakers.emplace_back([&, k] {
        syncs[k] = wake_n_times(*targets[k], kForeignWakes, 17 + k, &lost_at[k]);
      });
    }

    // The ping-pong: each side waits for the other's notify_one, so every
    // round trip is two wakes across workers (each task's wake goes to its
    // home worker's remote queue and unparks it).
    auto ping = std::make_shared<sync::Notify>();
    auto pong = std::make_shared<sync::Notify>();
    JoinHandle<int> a = rt.spawn_on(0, [ping, pong, c = Counted(1)]() -> Task<int> {
      int bad = 0;
      for (int i = 0; i < kRoundTrips; ++i) {
        pong->notify_one();
        co_await ping->notified();
        if (this_core() != 0u) ++bad;
      }
      co_return bad;
    });
    JoinHandle<int> b = rt.spawn_on(1, [ping, pong, c = Counted(2)]() -> Task<int> {
      int bad = 0;
      for (int i = 0; i < kRoundTrips; ++i) {
        co_await pong->notified();
        if (this_core() != 1u) ++bad;
        ping->notify_one();
      }
      co_return bad;
    });

    for (auto& th : wakers) th.join();
    for (int k = 0; k < 2; ++k) {
      ASSERT_GE(syncs[k], 0) << "waker " << k << ": a wake was lost at " << lost_at[k];
    }
    for (int k = 0; k < 2; ++k) {
      JoinResult<uint64_t> polls = join_here(std::move(hs[k]));
      ASSERT_TRUE(polls.ok());
      // At least one poll per round trip (the task went idle each time),
      // at most one per wake plus the first.
      EXPECT_GE(polls.value(), static_cast<uint64_t>(syncs[k]));
      EXPECT_LE(polls.value(), kForeignWakes + 1);
      EXPECT_EQ(targets[k]->seen.load(), kForeignWakes);
    }
    JoinResult<int> ra = join_here(std::move(a));
    JoinResult<int> rb = join_here(std::move(b));
    ASSERT_TRUE(ra.ok());
    ASSERT_TRUE(rb.ok());
    EXPECT_EQ(ra.value(), 0) << "a spawn_on(0) task ran off worker 0";
    EXPECT_EQ(rb.value(), 0) << "a spawn_on(1) task ran off worker 1";
    for (auto& t : targets) {
      std::lock_guard lock(t->mu);
      t->waker.reset();
    }
  }
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(settled_task_cells(cells_before), cells_before);
}

// The same with nothing else running: after every wake the foreign thread
// waits until the task saw it, then (after a random 0-50 us) wakes it again,
// so each wake lands somewhere on the path of both workers to sleep (the
// task going idle, the worker's last empty tick, searching, parking). A wake
// lost there leaves both workers asleep for good.
TEST_F(MultiThreadTest, ForeignWakesWhileBothWorkersFallAsleepAreNeverLost) {
  constexpr uint64_t kWakes = 20'000 / kScale;
  Runtime rt = make_mt();
  auto t = std::make_shared<WakeTarget>();
  JoinHandle<uint64_t> h = rt.spawn(CountWakes(t, kWakes));
  uint64_t lost_at = 0;
  const int64_t syncs = wake_n_times(*t, kWakes, 99, &lost_at, /*max_gap=*/1,
                                     /*max_jitter_ns=*/50'000, std::chrono::seconds(2));
  ASSERT_EQ(syncs, static_cast<int64_t>(kWakes)) << "a wake was lost at " << lost_at;
  ASSERT_TRUE(join_here(std::move(h)).ok());
  std::lock_guard lock(t->mu);
  t->waker.reset();
}

// A foreign wake racing the park of the last searcher, when no other
// worker is awake to catch it: each round a task pinned to worker 0 has a
// pipe read complete (worker 0 wakes by its own event: not as a searcher,
// and wakes nobody else), then reads again; worker 0 then looks for work
// (a searcher), finds none and parks. A foreign thread wakes a free task
// at a random point of that path: its push to the inject queue sees a
// searcher and wakes nobody, so the searcher must look once more before it
// sleeps (idle.h), else the task waits for good.
TEST_F(MultiThreadTest, AForeignWakeRacingTheLastSearchersParkIsNeverLost) {
  // A lost wake-up needs the wake to land in a window of some tens of
  // nanoseconds: without the searcher's last look (park()'s
  // notify_if_work_pending), one run in three to eight loses one.
  constexpr int kRounds = 20'000 / kScale;
  Runtime rt = make_mt();
  Pipe pipe;
  auto t = std::make_shared<WakeTarget>();
  JoinHandle<uint64_t> free_task = rt.spawn(CountWakes(t, kRounds));
  ASSERT_TRUE(wait_until([&] { return t->has_waker.load(); }));
  Waker w;
  {
    std::lock_guard lock(t->mu);
    w = t->waker;
  }
  auto ticked = std::make_shared<std::atomic<int>>(0);
  JoinHandle<void> ticker = rt.spawn_on(0, [r = pipe.r, ticked]() -> Task<void> {
    for (int n = 1; n <= kRounds; ++n) {
      reactor::IoResult res = co_await reactor::read(r->get(), std::vector<char>(1));
      if (!res.n.ok() || *res.n != 1) co_return;
      ticked->store(n, std::memory_order_release);
    }
  });
  std::mt19937 rng(7);
  // The path from the ticker's store to the park takes a microsecond or two.
  std::uniform_int_distribution<int> jitter_ns(0, 2'000);
  int lost_at = 0;
  for (int r = 1; r <= kRounds && lost_at == 0; ++r) {
    char c = 't';
    ASSERT_EQ(::write(pipe.w->get(), &c, 1), 1);
    // Spin (not yield): the wake below must land at a chosen point of the
    // worker's way to sleep.
    if (!spin_until([&] { return ticked->load(std::memory_order_acquire) == r; },
                    std::chrono::seconds(5))) {
      lost_at = -r;  // the ticker itself stalled
      break;
    }
    const auto until = Clock::now() + std::chrono::nanoseconds(jitter_ns(rng));
    while (Clock::now() < until) {
    }
    t->sent.store(static_cast<uint64_t>(r), std::memory_order_release);
    w.wake_by_ref();
    if (!wait_until([&] { return t->seen.load() >= static_cast<uint64_t>(r); },
                    std::chrono::seconds(2))) {
      lost_at = r;
    }
  }
  EXPECT_EQ(lost_at, 0) << "round " << lost_at << ": the wake was lost (negative: the ticker stalled)";
  if (lost_at != 0) {
    // Let both tasks finish, so the runtime can be dropped cleanly.
    t->sent.store(kRounds);
    w.wake_by_ref();
    ticker.abort();
  }
  (void)join_here(std::move(free_task));
  (void)join_here(std::move(ticker));
  w.reset();
  std::lock_guard lock(t->mu);
  t->waker.reset();
}

// ------------------------------------------------------------ 2. a million spawns

// Counts its own destruction in a per-index slot (a moved-from one counts
// nothing), and holds a Counted so the total shows in Counted::live().
class Tracked {
 public:
  Tracked(std::atomic<uint8_t>* slot, int v) : slot_(slot), c_(v) {}
  Tracked(Tracked&& o) noexcept : slot_(std::exchange(o.slot_, nullptr)), c_(std::move(o.c_)) {}
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() {
    if (slot_ != nullptr) slot_->fetch_add(1, std::memory_order_relaxed);
  }
  int value() const { return c_.value; }

 private:
  std::atomic<uint8_t>* slot_;
  Counted c_;
};

TEST_F(MultiThreadTest, AMillionSpawnsAcrossBothWorkersEachDestroyedExactlyOnce) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  constexpr int kPerParent = 500'000 / kScale;
  constexpr int kTotal = 2 * kPerParent;
  constexpr int kBatch = 1024;
  auto ran = std::make_unique<std::atomic<uint8_t>[]>(kTotal);
  auto dropped = std::make_unique<std::atomic<uint8_t>[]>(kTotal);
  std::atomic<int64_t> ran_total{0};
  std::array<std::atomic<int64_t>, 2> ran_on{};
  {
    Runtime rt = make_mt();
    // A child records that it ran (and where) exactly once.
    auto note = [&](int i) {
      ran[i].fetch_add(1, std::memory_order_relaxed);
      ran_total.fetch_add(1, std::memory_order_relaxed);
      if (std::optional<size_t> c = this_core(); c.has_value() && *c < 2) {
        ran_on[*c].fetch_add(1, std::memory_order_relaxed);
      }
    };
    auto parent = [&](int first) -> Task<int64_t> {
      int64_t bad = 0;
      std::vector<JoinHandle<int>> hs;
      hs.reserve(kBatch);
      for (int base = first; base < first + kPerParent; base += kBatch) {
        const int end = std::min(base + kBatch, first + kPerParent);
        for (int i = base; i < end; ++i) {
          Tracked t(&dropped[i], i);
          switch (i % 3) {
            case 0:  // ready on its first poll
              hs.push_back(pollux::spawn([&note, t = std::move(t)] {
                note(t.value());
                return ready(t.value());
              }));
              break;
            case 1:  // yields once: requeued, maybe stolen
              hs.push_back(pollux::spawn([&note, t = std::move(t)]() -> Task<int> {
                co_await yield_now();
                note(t.value());
                co_return t.value();
              }));
              break;
            default:  // detached: nobody reads its result
              pollux::spawn([&note, t = std::move(t)]() -> Task<void> {
                co_await yield_now();
                note(t.value());
              }).detach();
              break;
          }
        }
        for (size_t k = 0; k < hs.size(); ++k) {
          JoinResult<int> r = co_await hs[k];
          if (!r.ok()) ++bad;
        }
        hs.clear();
      }
      co_return bad;
    };
    JoinHandle<int64_t> p0 = rt.spawn_on(0, [&] { return parent(0); });
    JoinHandle<int64_t> p1 = rt.spawn_on(1, [&] { return parent(kPerParent); });
    JoinResult<int64_t> r0 = join_here(std::move(p0));
    JoinResult<int64_t> r1 = join_here(std::move(p1));
    ASSERT_TRUE(r0.ok());
    ASSERT_TRUE(r1.ok());
    EXPECT_EQ(r0.value(), 0);
    EXPECT_EQ(r1.value(), 0);
    // The detached third may still be running: wait for it (bounded).
    EXPECT_TRUE(wait_until([&] { return ran_total.load() == kTotal; }))
        << ran_total.load() << " of " << kTotal << " children ran";
  }
  int ran_wrong = 0;
  int dropped_wrong = 0;
  for (int i = 0; i < kTotal; ++i) {
    if (ran[i].load() != 1 && ran_wrong++ < 5) ADD_FAILURE() << "child " << i << " ran " << int(ran[i].load()) << " times";
    if (dropped[i].load() != 1 && dropped_wrong++ < 5) {
      ADD_FAILURE() << "child " << i << " destroyed " << int(dropped[i].load()) << " times";
    }
  }
  EXPECT_EQ(ran_wrong, 0);
  EXPECT_EQ(dropped_wrong, 0);
  EXPECT_GT(ran_on[0].load(), 0);
  EXPECT_GT(ran_on[1].load(), 0);
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(settled_task_cells(cells_before), cells_before);
}


// ------------------------------------------------------------ 3. abort from a foreign thread


TEST_F(MultiThreadTest, AbortFromAForeignThreadCancelsParkedAndBusyTasksOnEveryWorker) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  const int fds_before = open_fd_count();
  constexpr int kRounds = 20;
  {
    Runtime rt = make_mt();
    std::vector<Pipe> pipes(8);
    for (int round = 0; round < kRounds; ++round) {
      std::atomic<int> started{0};
      std::atomic<int> finished{0};
      std::vector<JoinHandle<void>> hs;
      int pipe_i = 0;
      // Per kind: pinned to worker 0, pinned to worker 1, and free to move.
      for (int where = 0; where < 3; ++where) {
        auto place = [&](auto body) {
          hs.push_back(where < 2 ? rt.spawn_on(where, std::move(body)) : rt.spawn(std::move(body)));
        };
        for (int k = 0; k < 2; ++k) {
          place([&, c = Counted(k)]() -> Task<void> {  // parked on a timer
            started.fetch_add(1);
            co_await sleep(absl::Hours(1));
            finished.fetch_add(1);
          });
          place([&, c = Counted(k), r = pipes[pipe_i++ % pipes.size()].r]() -> Task<void> {
            started.fetch_add(1);  // parked on a read of an empty pipe
            (void)co_await reactor::read(r->get(), std::vector<char>(8));
            finished.fetch_add(1);
          });
          place([&, c = Counted(k)]() -> Task<void> {  // busy: always queued or running
            started.fetch_add(1);
            for (int64_t i = 0; i < 100'000'000; ++i) co_await yield_now();
            finished.fetch_add(1);
          });
          place([&, c = Counted(k)]() -> Task<void> {  // parked on a sleep inside a select
            started.fetch_add(1);
            sync::Notify never;
            (void)co_await select(never.notified(), sleep(absl::Hours(1)));
            finished.fetch_add(1);
          });
        }
      }
      const int total = static_cast<int>(hs.size());
      ASSERT_TRUE(wait_until([&] { return started.load() == total; }));
      if (round % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // reads reach the kernel
      // Two foreign threads abort half each, at the same time.
      std::thread t1([&] {
        for (int i = 0; i < total; i += 2) hs[i].abort();
      });
      std::thread t2([&] {
        for (int i = total - 1 - (total % 2 == 0 ? 0 : 1); i >= 0; i -= 2) hs[i].abort();
      });
      t1.join();
      t2.join();
      for (int i = 0; i < total; ++i) {
        JoinResult<Unit> r = join_here(std::move(hs[i]));
        EXPECT_TRUE(r.is_cancelled()) << "round " << round << " task " << i;
      }
      EXPECT_EQ(finished.load(), 0);
      // Every future was dropped before its handle said Cancelled.
      EXPECT_EQ(Counted::live(), 0) << "round " << round;
      hs.clear();
      EXPECT_EQ(settled_task_cells(cells_before), cells_before) << "round " << round;
      // The runtime still works, on both workers.
      EXPECT_EQ(join_here(rt.spawn_on(0, [] { return ready(this_core()); })).value(), 0u);
      EXPECT_EQ(join_here(rt.spawn_on(1, [] { return ready(this_core()); })).value(), 1u);
    }
    // The cancelled reads consumed nothing and hold no fd: a byte written
    // now is read back here.
    for (Pipe& p : pipes) {
      char c = 'x';
      ASSERT_EQ(::write(p.w->get(), &c, 1), 1);
      ASSERT_EQ(::read(p.r->get(), &c, 1), 1);
    }
  }
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(settled_task_cells(cells_before), cells_before);
  EXPECT_EQ(open_fd_count(), fds_before) << "a ring, an eventfd or a pipe leaked";
}

// ------------------------------------------------------------ 4. woken before Pending

// The helper thread: wakes each waker handed to it (by value or by reference).
struct WakeHelper {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Waker> job;
  bool by_value = false;
  bool stop = false;
  std::atomic<uint64_t> woken{0};
  std::thread thread{[this] { run(); }};

  ~WakeHelper() {
    {
      std::lock_guard lock(mu);
      stop = true;
    }
    cv.notify_all();
    thread.join();
  }
  void hand(const Waker& w, bool value) {
    {
      std::lock_guard lock(mu);
      job = w;  // a clone; a job not yet taken is replaced (its clone dropped)
      by_value = value;
    }
    cv.notify_one();
  }
  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stop || job.has_value(); });
      if (stop) return;
      Waker w = std::move(*job);
      job.reset();
      const bool value = by_value;
      lock.unlock();
      if (value) {
        std::move(w).wake();
      } else {
        w.wake_by_ref();
        w.reset();
      }
      woken.fetch_add(1, std::memory_order_release);
      lock.lock();
    }
  }
};

struct HandoffStats {
  std::atomic<bool> in_poll{false};
  std::atomic<bool> finished{false};
  std::atomic<int> overlaps{0};
  std::atomic<int> after_ready{0};
  std::atomic<int> helper_stalls{0};
  std::atomic<bool> destroyed{false};
};

// Hands its waker to the helper on every poll and (three polls in four)
// waits until the helper has woken it before returning Pending, then
// lingers, so a second poll started by that wake would overlap this one.
class WokenBeforePending {
 public:
  using Output = uint64_t;
  WokenBeforePending(std::shared_ptr<HandoffStats> st, WakeHelper* helper, uint64_t target)
      : st_(std::move(st)), helper_(helper), target_(target) {}
  WokenBeforePending(WokenBeforePending&& o) noexcept = default;
  ~WokenBeforePending() {
    if (st_) st_->destroyed.store(true);
  }
  Poll<uint64_t> poll(Context& cx) {
    if (st_->in_poll.exchange(true, std::memory_order_acq_rel)) st_->overlaps.fetch_add(1);
    if (st_->finished.load(std::memory_order_acquire)) st_->after_ready.fetch_add(1);
    ++polls_;
    if (polls_ == target_) {
      st_->finished.store(true, std::memory_order_release);
      st_->in_poll.store(false, std::memory_order_release);
      return Ready<uint64_t>{polls_};
    }
    const uint64_t before = helper_->woken.load(std::memory_order_acquire);
    helper_->hand(cx.waker(), polls_ % 2 == 0);
    if (polls_ % 4 != 0) {
      if (!spin_until([&] { return helper_->woken.load(std::memory_order_acquire) != before; },
                      std::chrono::seconds(10))) {
        st_->helper_stalls.fetch_add(1);
      }
      // Linger: a wrongly scheduled second poll would start meanwhile.
      for (int i = 0; i < 64; ++i) {
        if (st_->in_poll.load(std::memory_order_relaxed) == false) st_->overlaps.fetch_add(1);
      }
    }
    st_->in_poll.store(false, std::memory_order_release);
    return Pending{};
  }

 private:
  std::shared_ptr<HandoffStats> st_;
  WakeHelper* helper_;
  uint64_t target_;
  uint64_t polls_ = 0;
};

TEST_F(MultiThreadTest, AWakerWokenBeforeItsPollReturnsPendingIsNeverLostNorPolledTwiceAtOnce) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  constexpr uint64_t kPolls = 50'000 / kScale;  // per task; two tasks: 100,000
  {
    Runtime rt = make_mt();
    WakeHelper helper_free;
    WakeHelper helper_pinned;
    auto free_st = std::make_shared<HandoffStats>();
    auto pinned_st = std::make_shared<HandoffStats>();
    // Free to be stolen (its wakes go to the inject queue, or the local
    // queue when the helper's wake lands while it runs), and pinned to
    // worker 1 (its wakes go to worker 1's remote queue).
    JoinHandle<uint64_t> free = rt.spawn(WokenBeforePending(free_st, &helper_free, kPolls));
    JoinHandle<uint64_t> pinned =
        rt.spawn_on(1, WokenBeforePending(pinned_st, &helper_pinned, kPolls));
    JoinResult<uint64_t> rf = join_here(std::move(free));
    JoinResult<uint64_t> rp = join_here(std::move(pinned));
    ASSERT_TRUE(rf.ok());
    ASSERT_TRUE(rp.ok());
    EXPECT_EQ(rf.value(), kPolls);
    EXPECT_EQ(rp.value(), kPolls);
    for (HandoffStats* st : {free_st.get(), pinned_st.get()}) {
      EXPECT_EQ(st->overlaps.load(), 0) << "polled concurrently";
      EXPECT_EQ(st->after_ready.load(), 0) << "polled after Ready";
      EXPECT_EQ(st->helper_stalls.load(), 0);
      EXPECT_TRUE(st->destroyed.load());
    }
  }
  EXPECT_EQ(settled_task_cells(cells_before), cells_before);
}


// ------------------------------------------------------------ 5. stealing

#ifdef POLLUX_TESTS_TSAN
constexpr auto kLongPoll = std::chrono::milliseconds(4000);
#else
constexpr auto kLongPoll = std::chrono::milliseconds(1000);
#endif

// What a long poll (a task that blocks its worker) reports.
struct SpinFlags {
  std::atomic<bool> running{false};
  std::atomic<bool> done{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> timed_out{false};
};

// One poll that blocks its worker until `stop` or `limit`.
auto long_poll(std::shared_ptr<SpinFlags> f, std::chrono::milliseconds limit) {
  return [f = std::move(f), limit] {
    return poll_fn([f, limit](Context&) -> Poll<void> {
      f->running.store(true);
      if (!spin_until([&] { return f->stop.load(); }, limit)) f->timed_out.store(true);
      f->running.store(false);
      f->done.store(true);
      return Ready{};
    });
  };
}

TEST_F(MultiThreadTest, TasksSpawnedBehindALongPollAreStolenAndFinishOnTheOtherWorker) {
  Runtime rt = make_mt();
  constexpr int kChildren = 16;
  auto flags = std::make_shared<SpinFlags>();
  std::atomic<int> done{0};
  std::atomic<int> done_on_other{0};
  std::atomic<int> done_while_spinning{0};
  // The root, on worker 0, spawns children onto its own stealable queue and
  // then blocks worker 0 in one long poll until they are all done.
  JoinHandle<void> root = rt.spawn_on(0, [&]() -> Task<void> {
    for (int i = 0; i < kChildren; ++i) {
      pollux::spawn([&]() -> Task<void> {
        co_await yield_now();
        if (this_core() == 1u) done_on_other.fetch_add(1);
        // Worker 0 is busy in the root's poll from the spawns on: done
        // before the long poll ended means done without waiting for it.
        if (!flags->done.load()) done_while_spinning.fetch_add(1);
        if (done.fetch_add(1) + 1 == kChildren) flags->stop.store(true);
      }).detach();
    }
    co_await long_poll(flags, kLongPoll)();
  });
  ASSERT_TRUE(join_here(std::move(root)).ok());
  EXPECT_FALSE(flags->timed_out.load()) << "the children waited for the long poll: "
                                        << done.load() << " done while it ran";
  EXPECT_EQ(done_on_other.load(), kChildren);
  EXPECT_EQ(done_while_spinning.load(), kChildren);
}

// A task that yielded (a self-wake: to the back of its worker's stealable
// queue) while its worker then blocks in a long poll, the other worker
// asleep with nothing to do: for the task to be stolen, the yield must wake
// the sleeper. The long poll is spawn_local (pinned: queued without waking
// anyone), so only the yield could.
//
// DISABLED: the scheduler queues a self-wake "waking nobody"
// (MultiThreadScheduler::schedule, kSelfWake: push_local(notify=false)), a
// documented choice, so today the task waits out the whole long poll (5 runs
// in 5 fail). push_local(..., /*notify=*/true) there makes it pass (40 in
// 40) but costs every yield on multi_thread a fenced Idle check (measured,
// -c opt, 2 workers: 39 -> 64 ns per yield for one yielding task, 48 -> 62
// for eight). tokio's yield_now defers its wake to the worker's next park
// or maintenance, which strands such a task too. Enable it with that
// decision.
TEST_F(MultiThreadTest, DISABLED_ATaskThatYieldedBehindALongPollIsStolenBySleepingWorker) {
  Runtime rt = make_mt();
  for (int i = 0; i < 5; ++i) {
    struct Report {
      int64_t home = -1;
      bool stolen = false;
      bool blocker_timed_out = false;
    };
    JoinResult<Report> r = join_here(rt.spawn([]() -> Task<Report> {
      Report rep;
      // Let the other worker go back to sleep (the spawn woke one).
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      rep.home = static_cast<int64_t>(this_core().value_or(99));
      auto f = std::make_shared<SpinFlags>();
      JoinHandle<void> blocker = spawn_local(long_poll(f, kLongPoll));
      for (int n = 0; n < 10'000'000 && !f->done.load(); ++n) {
        co_await yield_now();
        if (static_cast<int64_t>(this_core().value_or(99)) != rep.home) {
          rep.stolen = true;  // at once, or once the long poll began
          break;
        }
      }
      f->stop.store(true);
      (void)co_await blocker;
      rep.blocker_timed_out = f->timed_out.load();
      co_return rep;
    }));
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.value().stolen) << "round " << i << ": home " << r.value().home;
    EXPECT_FALSE(r.value().blocker_timed_out)
        << "round " << i << ": the yielded task waited out its home's long poll";
  }
}

// A task pinned to a worker only while it holds worker-owned state: a task
// on each worker sleeps in a loop, so that an idle worker keeps looking for
// work to steal (a pinned task must never be among it).
struct Tickers {
  explicit Tickers(Runtime& rt) {
    for (size_t i = 0; i < 2; ++i) {
      hs.push_back(rt.spawn_on(i, [s = stop]() -> Task<void> {
        for (int n = 0; n < 1'000'000 && !s->load(); ++n) co_await sleep(absl::Microseconds(300));
      }));
    }
  }
  ~Tickers() {
    stop->store(true);
    for (auto& h : hs) (void)join_here(std::move(h));
  }
  std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);
  std::vector<JoinHandle<void>> hs;
};

struct PinReport {
  int64_t home = -1;
  int64_t polls = 0;
  int64_t polls_off_home = 0;
  int64_t polls_unpinned = 0;
  int64_t polls_while_home_blocked = 0;
  bool phase1_timed_out = false;
  // Phase 2: holding nothing.
  int64_t pins_after = -1;
  bool stolen = false;
  bool stolen_while_home_blocked = false;
  int64_t finished_on = -1;
};

enum class PinnedOp { kSleep, kRead };

// Phase 1: with `op` in flight (a sleep, or a read of an empty pipe) the
// task yields in a loop while its home worker blocks in a long poll behind
// it: it must not run meanwhile (not stolen), and every poll must be on its
// home with a pin held. Phase 2: holding nothing, it yields while its home
// blocks again: it is stolen, and finishes on the other worker.
Task<PinReport> pinned_then_free(PinnedOp op, std::shared_ptr<OwnedFd> r) {
  PinReport rep;
  rep.home = static_cast<int64_t>(this_core().value_or(99));
  auto f1 = std::make_shared<SpinFlags>();
  JoinHandle<void> blocker1 = spawn_local(long_poll(f1, std::chrono::milliseconds(150)));
  auto body = [&](Context& cx) -> Poll<int> {
    ++rep.polls;
    if (static_cast<int64_t>(this_core().value_or(99)) != rep.home) ++rep.polls_off_home;
    if (current_pins() <= 0) ++rep.polls_unpinned;
    if (f1->running.load()) ++rep.polls_while_home_blocked;
    if (f1->done.load()) return Ready<int>{0};
    if (rep.polls > 10'000'000) {
      rep.phase1_timed_out = true;
      return Ready<int>{1};
    }
    cx.waker().wake_by_ref();
    return Pending{};
  };
  if (op == PinnedOp::kSleep) {
    (void)co_await select(sleep(absl::Hours(1)), poll_fn(body));
  } else {
    (void)co_await select(reactor::read(r->get(), std::vector<char>(8)), poll_fn(body));
  }
  (void)co_await blocker1;
  // Phase 2.
  auto f2 = std::make_shared<SpinFlags>();
  JoinHandle<void> blocker2 = spawn_local(long_poll(f2, kLongPoll));
  rep.pins_after = co_await poll_fn([](Context&) -> Poll<int64_t> { return Ready<int64_t>{current_pins()}; });
  for (int n = 0; n < 10'000'000 && !f2->done.load(); ++n) {
    co_await yield_now();
    if (static_cast<int64_t>(this_core().value_or(99)) != rep.home) {
      rep.stolen = true;
      rep.stolen_while_home_blocked = f2->running.load();
      break;
    }
  }
  f2->stop.store(true);
  rep.finished_on = static_cast<int64_t>(this_core().value_or(99));
  (void)co_await blocker2;
  co_return rep;
}

void check_pinned_then_free(const PinReport& rep) {
  EXPECT_TRUE(rep.home == 0 || rep.home == 1) << rep.home;
  EXPECT_FALSE(rep.phase1_timed_out);
  EXPECT_GT(rep.polls, 0);
  EXPECT_EQ(rep.polls_off_home, 0) << "polled off its home while its op was in flight";
  EXPECT_EQ(rep.polls_unpinned, 0) << "its op in flight, the task held no pin";
  EXPECT_EQ(rep.polls_while_home_blocked, 0) << "stolen while its op was in flight";
  EXPECT_EQ(rep.pins_after, 0) << "a pin outlived the op";
  EXPECT_TRUE(rep.stolen) << "holding nothing, it was not stolen from its blocked home";
  EXPECT_TRUE(rep.stolen_while_home_blocked);
  EXPECT_EQ(rep.finished_on, 1 - rep.home) << "it did not finish on the other worker";
}

TEST_F(MultiThreadTest, ATaskWithASleepInFlightIsNeverStolenAndIsOnceItHoldsNothing) {
  Runtime rt = make_mt();
  Tickers tickers(rt);
  for (int i = 0; i < 3; ++i) {
    JoinResult<PinReport> r =
        join_here(rt.spawn([] { return pinned_then_free(PinnedOp::kSleep, nullptr); }));
    ASSERT_TRUE(r.ok());
    check_pinned_then_free(r.value());
  }
}

TEST_F(MultiThreadTest, ATaskWithAReadInFlightIsNeverStolenAndIsOnceItHoldsNothing) {
  const int fds_before = open_fd_count();
  {
    Runtime rt = make_mt();
    Tickers tickers(rt);
    Pipe pipe;
    for (int i = 0; i < 3; ++i) {
      JoinResult<PinReport> r =
          join_here(rt.spawn([r = pipe.r] { return pinned_then_free(PinnedOp::kRead, r); }));
      ASSERT_TRUE(r.ok());
      check_pinned_then_free(r.value());
    }
    // The cancelled reads took nothing.
    char c = 'x';
    ASSERT_EQ(::write(pipe.w->get(), &c, 1), 1);
    ASSERT_EQ(::read(pipe.r->get(), &c, 1), 1);
  }
  EXPECT_EQ(open_fd_count(), fds_before);
}

// A task free to move, with a Sleep armed in a select, is woken by a task on
// the other worker (a Notify, or a oneshot send): it runs on the worker its
// Sleep lives on, every time.
TEST_F(MultiThreadTest, APinnedTaskWokenFromTheOtherWorkerRunsOnItsHome) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  constexpr int kRounds = 20000 / kScale;
  {
    Runtime rt = make_mt();
    struct Shared {
      std::array<sync::Notify, 2> go;
      sync::Notify wake;
      std::mutex mu;
      std::optional<sync::oneshot::Sender<int>> tx;
      std::atomic<bool> stop{false};
      std::array<std::atomic<int>, 2> sent_from{};
    };
    auto sh = std::make_shared<Shared>();
    std::vector<JoinHandle<void>> wakers;
    for (size_t i = 0; i < 2; ++i) {
      // The waker on worker i: on its go signal, wakes the task (which waits
      // on the other worker) through the Notify or the oneshot.
      wakers.push_back(rt.spawn_on(i, [sh, i]() -> Task<void> {
        for (int n = 0; n < 1'000'000; ++n) {
          co_await sh->go[i].notified();
          if (sh->stop.load()) break;
          std::optional<sync::oneshot::Sender<int>> tx;
          {
            std::lock_guard lock(sh->mu);
            if (sh->tx.has_value()) {
              tx.emplace(std::move(*sh->tx));
              sh->tx.reset();
            }
          }
          if (tx.has_value()) {
            (void)std::move(*tx).send(n);
          } else {
            sh->wake.notify_one();
          }
          sh->sent_from[i].fetch_add(1);
        }
      }));
    }
    struct Report {
      int off_home = 0;
      int unpinned = 0;
      int wrong_winner = 0;
      int moved = 0;
      std::array<int, 2> armed_on{};
    };
    JoinResult<Report> r = join_here(rt.spawn([sh, c = Counted(1)]() -> Task<Report> {
      Report rep;
      for (int round = 0; round < kRounds; ++round) {
        const size_t home = this_core().value_or(99);
        if (home > 1) co_return rep;
        ++rep.armed_on[home];
        bool asked = false;
        int64_t pins = -1;
        // Third branch: once the Sleep and the wait are registered (the
        // branches before it), ask the other worker's waker to wake us.
        auto ask = poll_fn([&](Context&) -> Poll<void> {
          if (!asked) {
            asked = true;
            pins = current_pins();
            sh->go[1 - home].notify_one();
          }
          return Pending{};
        });
        size_t winner;
        if (round % 8 == 7) {
          // No Sleep: free to move, the wake (from a task running on the
          // other worker) puts it in that worker's LIFO slot. It moves.
          winner = 1 + (co_await select(sh->wake.notified(), std::move(ask))).index;
          if (this_core() != home) ++rep.moved;
          if (pins != 0) ++rep.unpinned;  // here: nothing held, so no pin
          co_await yield_now();
          continue;
        }
        if (round % 2 == 0) {
          winner = (co_await select(sleep(absl::Hours(1)), sh->wake.notified(), std::move(ask))).index;
        } else {
          auto [tx, rx] = sync::oneshot::channel<int>();
          {
            std::lock_guard lock(sh->mu);
            sh->tx.emplace(std::move(tx));
          }
          winner = (co_await select(sleep(absl::Hours(1)), std::move(rx), std::move(ask))).index;
        }
        if (this_core() != home) ++rep.off_home;  // the poll the wake led to
        if (pins <= 0) ++rep.unpinned;
        if (winner != 1) ++rep.wrong_winner;
        co_await yield_now();  // free to move before the next round
      }
      co_return rep;
    }));
    sh->stop.store(true);
    for (auto& n : sh->go) n.notify_one();
    for (auto& h : wakers) EXPECT_TRUE(join_here(std::move(h)).ok());
    ASSERT_TRUE(r.ok());
    const Report& rep = r.value();
    EXPECT_EQ(rep.armed_on[0] + rep.armed_on[1], kRounds);
    EXPECT_EQ(rep.off_home, 0) << "a wake from the other worker ran the pinned task there";
    EXPECT_EQ(rep.unpinned, 0);
    EXPECT_EQ(rep.wrong_winner, 0);
    // Holding nothing it moved (unless the wake came while its own poll was
    // still running: it is then queued again where it ran), so both
    // workers were its home.
    EXPECT_GT(rep.moved, 0);
    EXPECT_GT(rep.armed_on[0], 0);
    EXPECT_GT(rep.armed_on[1], 0);
    EXPECT_EQ(sh->sent_from[0].load() + sh->sent_from[1].load(), kRounds);
  }
  EXPECT_EQ(Counted::live(), 0);
  EXPECT_EQ(settled_task_cells(cells_before), cells_before);
}


// ------------------------------------------------------------ 6. starvation

// A leaf future that is always ready but keeps the coop protocol: it takes
// a budget unit, and yields (wakes itself, Pending) once the budget is spent.
class BudgetedReady {
 public:
  using Output = int64_t;
  Poll<int64_t> poll(Context& cx) {
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready<int64_t>{1};
  }
};

#ifdef POLLUX_TESTS_TSAN
constexpr auto kStarveLimit = std::chrono::seconds(20);
#else
constexpr auto kStarveLimit = std::chrono::seconds(5);
#endif

struct Starvation {
  std::atomic<bool> looper_started{false};
  std::atomic<bool> read_started{false};
  std::atomic<bool> done{false};
  std::atomic<int64_t> loops{0};
};

// Loops on always-ready futures until `done`: its output is the number of
// loops, negative when it ran out of time (something starved).
Task<int64_t> looper(Starvation& st) {
  st.looper_started.store(true);
  const auto deadline = Clock::now() + kStarveLimit;
  int64_t n = 0;
  while (!st.done.load(std::memory_order_relaxed)) {
    n += co_await BudgetedReady{};
    if (n % 1024 == 0) {
      st.loops.store(n, std::memory_order_relaxed);
      if (Clock::now() > deadline) co_return -n;
    }
  }
  co_return n;
}

Task<int64_t> sleep_5ms_took_ms(Starvation& st) {
  const auto start = Clock::now();
  const int64_t loops_before = st.loops.load();
  co_await sleep(absl::Milliseconds(5));
  // The looper must have run meanwhile: it shares this worker.
  if (st.loops.load() == loops_before) co_return -1;
  co_return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

Task<absl::StatusOr<size_t>> read_one(Starvation& st, int fd) {
  st.read_started.store(true);
  reactor::IoResult r = co_await reactor::read(fd, std::vector<char>(8));
  co_return r.n;
}

void write_byte_when_read_started(Starvation& st, int fd) {
  ASSERT_TRUE(wait_until([&] { return st.read_started.load(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the read reaches the kernel
  char c = 'x';
  ASSERT_EQ(::write(fd, &c, 1), 1);
}

void check_starvation(int64_t slept_ms, const absl::StatusOr<size_t>& read, int64_t loops) {
  EXPECT_GE(slept_ms, 5) << "-1: the looper did not run while the sleep waited";
  EXPECT_LT(slept_ms, 1000) << "the always-ready looper starved the timer";
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 1u);
  EXPECT_GT(loops, 0) << "the looper ran out of time: a timer or the read starved";
}

TEST_F(MultiThreadTest, AnAlwaysReadyTaskDoesNotStarveATimerOrAReadOnItsWorker) {
  Runtime rt = make_mt();
  Pipe pipe;
  for (size_t w = 0; w < 2; ++w) {
    Starvation st;
    JoinHandle<int64_t> loop = rt.spawn_on(w, [&] { return looper(st); });
    ASSERT_TRUE(wait_until([&] { return st.looper_started.load(); }));
    JoinHandle<int64_t> slept = rt.spawn_on(w, [&] { return sleep_5ms_took_ms(st); });
    JoinHandle<absl::StatusOr<size_t>> read =
        rt.spawn_on(w, [&, fd = pipe.r->get()] { return read_one(st, fd); });
    write_byte_when_read_started(st, pipe.w->get());
    JoinResult<int64_t> s = join_here(std::move(slept));
    JoinResult<absl::StatusOr<size_t>> r = join_here(std::move(read));
    st.done.store(true);
    JoinResult<int64_t> l = join_here(std::move(loop));
    ASSERT_TRUE(s.ok() && r.ok() && l.ok());
    check_starvation(s.value(), r.value(), l.value());
  }
}

// The same on current_thread, for comparison.
TEST_F(MultiThreadTest, AnAlwaysReadyTaskDoesNotStarveATimerOrAReadOnCurrentThread) {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  ASSERT_TRUE(rt.ok()) << rt.status();
  Pipe pipe;
  Starvation st;
  std::thread writer([&] { write_byte_when_read_started(st, pipe.w->get()); });
  struct Out {
    JoinResult<int64_t> s, l;
    JoinResult<absl::StatusOr<size_t>> r;
  };
  Out out = rt->block_on([&]() -> Task<Out> {
    JoinHandle<int64_t> loop = pollux::spawn([&] { return looper(st); });
    while (!st.looper_started.load()) co_await yield_now();
    JoinHandle<int64_t> slept = pollux::spawn([&] { return sleep_5ms_took_ms(st); });
    JoinHandle<absl::StatusOr<size_t>> read =
        pollux::spawn([&, fd = pipe.r->get()] { return read_one(st, fd); });
    JoinResult<int64_t> s = co_await slept;
    JoinResult<absl::StatusOr<size_t>> r = co_await read;
    st.done.store(true);
    JoinResult<int64_t> l = co_await loop;
    co_return Out{std::move(s), std::move(l), std::move(r)};
  }());
  writer.join();
  ASSERT_TRUE(out.s.ok() && out.r.ok() && out.l.ok());
  check_starvation(out.s.value(), out.r.value(), out.l.value());
}

// ------------------------------------------------------------ 8. shutdown

TEST_F(MultiThreadTest, ShutdownFromAForeignThreadWithWorkQueuedRunningStolenAndInFlight) {
  Counted::reset();
  const int64_t cells_before = live_task_cells();
  const int fds_before = open_fd_count();
  constexpr int kRounds = 48;  // on every build: shutdown races are what TSan is for
  std::mt19937 rng(20240612);
  int values = 0;
  int cancelled = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Pipe> quiet(2);   // never written: reads stay in flight
    std::vector<Pipe> noisy(2);   // written by a foreign thread all along
    std::vector<JoinHandle<int>> hs;
    std::vector<JoinHandle<int>> foreign_hs;
    std::atomic<bool> stop_threads{false};
    std::atomic<int> started{0};
    std::atomic<int64_t> tiny_spawned{0};
    std::thread spawner;
    std::thread writer([&] {
      for (int n = 0; n < 1'000'000 && !stop_threads.load(); ++n) {
        for (Pipe& p : noisy) {
          char c = 'n';
          (void)!::write(p.w->get(), &c, 1);  // EAGAIN when full: fine
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    });
    const int mode = round % 4;
    {
      std::optional<Runtime> rt(make_mt());
      Handle handle = rt->handle();
      int expected_started = 0;
      for (size_t w = 0; w < 2; ++w) {
        // Pinned, busy: always in worker w's pinned FIFO or running.
        hs.push_back(rt->spawn_on(w, [&, c = Counted(1)]() -> Task<int> {
          started.fetch_add(1);
          for (int n = 0; n < 100'000'000; ++n) co_await yield_now();
          co_return 1;
        }));
        // Parked on a timer and on a read that never completes.
        hs.push_back(rt->spawn_on(w, [&, c = Counted(2)]() -> Task<int> {
          started.fetch_add(1);
          co_await sleep(absl::Hours(1));
          co_return 2;
        }));
        hs.push_back(rt->spawn_on(w, [&, c = Counted(3), r = quiet[w].r]() -> Task<int> {
          started.fetch_add(1);
          (void)co_await reactor::read(r->get(), std::vector<char>(8));
          co_return 3;
        }));
        // Reads completing all the time (I/O in flight and completing).
        hs.push_back(rt->spawn([&, c = Counted(4), r = noisy[w].r]() -> Task<int> {
          started.fetch_add(1);
          for (int n = 0; n < 1'000'000; ++n) {
            reactor::IoResult res = co_await reactor::read(r->get(), std::vector<char>(64));
            if (!res.n.ok() || *res.n == 0) co_return -1;
          }
          co_return 4;
        }));
        // Floods its worker's stealable queue with tiny tasks: the other
        // worker steals them while the runtime goes down.
        hs.push_back(rt->spawn_on(w, [&, c = Counted(5)]() -> Task<int> {
          started.fetch_add(1);
          for (int n = 0; n < 256; ++n) {
            for (int k = 0; k < 16; ++k) {
              tiny_spawned.fetch_add(1, std::memory_order_relaxed);
              pollux::spawn([c = Counted(6)]() -> Task<void> { co_await yield_now(); }).detach();
            }
            co_await yield_now();
          }
          co_return 5;
        }));
        // Two free tasks waking each other from inside their polls: the one
        // woken sits in the waker's LIFO slot.
        auto pair = std::make_shared<std::pair<sync::Notify, sync::Notify>>();
        hs.push_back(rt->spawn([&, pair, c = Counted(7)]() -> Task<int> {
          started.fetch_add(1);
          for (int n = 0; n < 10'000'000; ++n) {
            pair->second.notify_one();
            co_await pair->first.notified();
          }
          co_return 7;
        }));
        hs.push_back(rt->spawn([&, pair, c = Counted(8)]() -> Task<int> {
          started.fetch_add(1);
          for (int n = 0; n < 10'000'000; ++n) {
            co_await pair->second.notified();
            pair->first.notify_one();
          }
          co_return 8;
        }));
        // Finite work: some finish before the shutdown, with a value.
        hs.push_back(rt->spawn([&, c = Counted(9), w]() -> Task<int> {
          started.fetch_add(1);
          for (int n = 0; n < 20 * static_cast<int>(w + 1); ++n) co_await yield_now();
          co_return 9;
        }));
        expected_started += 8;
      }
      // Spawns from a foreign thread all through the shutdown.
      spawner = std::thread([&, handle] {
        for (int n = 0; n < 4'000 && !stop_threads.load(); ++n) {
          foreign_hs.push_back(handle.spawn([c = Counted(10)]() -> Task<int> {
            co_await yield_now();
            co_return 10;
          }));
          if (n % 16 == 0) std::this_thread::yield();
        }
      });
      if (mode != 0) {
        ASSERT_TRUE(wait_until([&] { return started.load() == expected_started; }));
      }
      if (mode == 2) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
      } else if (mode == 3) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // reads reach the kernel
      }
      if (round % 2 == 0) {
        rt.reset();  // on the test's thread
      } else {
        std::thread destroyer([&] { rt.reset(); });  // on another foreign thread
        destroyer.join();
      }
    }
    stop_threads.store(true);
    spawner.join();
    writer.join();
    LocalExecutor joiner;
    for (auto* v : {&hs, &foreign_hs}) {
      for (size_t i = 0; i < v->size(); ++i) {
        JoinHandle<int>& h = (*v)[i];
        // The runtime is gone: every task has finished or was cancelled.
        if (!h.is_finished()) {
          ADD_FAILURE() << "round " << round << " (mode " << mode << "): "
                        << (v == &hs ? "task " : "foreign spawn ") << i << " of " << v->size()
                        << " neither finished nor was cancelled by the shutdown";
          // Leaked on purpose: dropping it could free a live future here, on
          // a thread that is not its worker (a check failure, not a report).
          new JoinHandle<int>(std::move(h));
          continue;
        }
        JoinResult<int> r = joiner.block_on(std::move(h));
        EXPECT_TRUE(r.ok() || r.is_cancelled()) << "round " << round << ": a task panicked";
        if (r.ok()) {
          ++values;
        } else {
          ++cancelled;
        }
      }
      v->clear();
    }
    EXPECT_EQ(Counted::live(), 0) << "round " << round << " (mode " << mode
                                  << "): a task's future outlived the runtime";
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(values, 0);
  EXPECT_GT(cancelled, 0);
  EXPECT_EQ(settled_task_cells(cells_before), cells_before);
  EXPECT_EQ(open_fd_count(), fds_before) << "a ring, an eventfd or a pipe leaked";
}

}  // namespace
}  // namespace pollux
