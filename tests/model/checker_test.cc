// Tests of the model checker itself (checker.h) on tiny programs whose
// verdict is known: each class of bug it claims to find is found (the
// process exits with a report naming it), and correct synchronisation
// passes after exploring more than one execution.
#include <atomic>
#include <cstdint>
#include <thread>

#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/internal/race_cell.h"
#include "future/internal/thread.h"
#include "tests/model/model_test.h"

namespace pollux::model {
namespace {

using detail::Atomic;
using detail::CondVar;
using detail::Mutex;
using detail::MutexLock;
using detail::RaceCell;
using detail::Thread;

constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelease = std::memory_order_release;
constexpr auto kSeqCst = std::memory_order_seq_cst;

class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void expect_explored(const Stats& s) {
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u) << "the model never branched: it checks nothing";
}

// ---- Message passing: a plain write published through a flag ----

void message_passing(std::memory_order store_order, std::memory_order load_order) {
  RaceCell<int> data(0);
  Atomic<bool> ready{false};
  Thread producer([&] {
    data.get_mut() = 42;
    ready.store(true, store_order);
  });
  if (ready.load(load_order)) MODEL_ASSERT(data.get() == 42);
  producer.join();
}

TEST_F(CheckerTest, MessagePassingWithReleaseAndAcquirePasses) {
  POLLUX_MODEL_ONLY();
  expect_explored(check([] { message_passing(kRelease, kAcquire); }, {.name = "mp rel/acq"}));
}

TEST_F(CheckerTest, MessagePassingWithARelaxedStoreIsADataRace) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { message_passing(kRelaxed, kAcquire); }), ExitsWithFailure(),
              "data race on RaceCell");
}

TEST_F(CheckerTest, MessagePassingWithARelaxedLoadIsADataRace) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { message_passing(kRelease, kRelaxed); }), ExitsWithFailure(),
              "data race on RaceCell");
}

// A relaxed load followed by an acquire fence synchronises like an acquire load.
TEST_F(CheckerTest, AcquireFenceAfterARelaxedLoadPasses) {
  POLLUX_MODEL_ONLY();
  expect_explored(check(
      [] {
        RaceCell<int> data(0);
        Atomic<bool> ready{false};
        Thread producer([&] {
          data.get_mut() = 1;
          ready.store(true, kRelease);
        });
        if (ready.load(kRelaxed)) {
          detail::atomic_fence(kAcquire);
          MODEL_ASSERT(data.get() == 1);
        }
        producer.join();
      },
      {.name = "acquire fence"}));
}

// A release fence before a relaxed store publishes like a release store.
TEST_F(CheckerTest, ReleaseFenceBeforeARelaxedStorePasses) {
  POLLUX_MODEL_ONLY();
  expect_explored(check(
      [] {
        RaceCell<int> data(0);
        Atomic<bool> ready{false};
        Thread producer([&] {
          data.get_mut() = 1;
          detail::atomic_fence(kRelease);
          ready.store(true, kRelaxed);
        });
        if (ready.load(kAcquire)) MODEL_ASSERT(data.get() == 1);
        producer.join();
      },
      {.name = "release fence"}));
}

// ---- Release sequences: an RMW continues one, a plain store does not ----

void release_sequence(bool middle_is_rmw) {
  RaceCell<int> data(0);
  Atomic<int> x{0};
  Thread publisher([&] {
    data.get_mut() = 7;
    x.store(1, kRelease);
  });
  Thread middle([&] {
    if (middle_is_rmw) {
      x.fetch_add(1, kRelaxed);
    } else if (x.load(kRelaxed) == 1) {
      x.store(2, kRelaxed);
    }
  });
  if (x.load(kAcquire) == 2) MODEL_ASSERT(data.get() == 7);
  publisher.join();
  middle.join();
}

TEST_F(CheckerTest, AnRmwContinuesAReleaseSequence) {
  POLLUX_MODEL_ONLY();
  expect_explored(check([] { release_sequence(true); }, {.name = "release sequence"}));
}

TEST_F(CheckerTest, APlainStoreEndsAReleaseSequence) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { release_sequence(false); }), ExitsWithFailure(),
              "data race on RaceCell");
}

// ---- Store buffering (Dekker): only seq_cst forbids both loads missing ----

void store_buffering(std::memory_order store_order, std::memory_order load_order, bool fences) {
  Atomic<int> x{0};
  Atomic<int> y{0};
  int seen_y = -1;  // each written by one thread, read after the joins
  int seen_x = -1;
  Thread a([&] {
    x.store(1, store_order);
    if (fences) detail::atomic_fence(kSeqCst);
    seen_y = y.load(load_order);
  });
  Thread b([&] {
    y.store(1, store_order);
    if (fences) detail::atomic_fence(kSeqCst);
    seen_x = x.load(load_order);
  });
  a.join();
  b.join();
  MODEL_ASSERT(seen_x == 1 || seen_y == 1);
}

TEST_F(CheckerTest, StoreBufferingWithSeqCstSeesAtLeastOneStore) {
  POLLUX_MODEL_ONLY();
  expect_explored(
      check([] { store_buffering(kSeqCst, kSeqCst, false); }, {.name = "sb seq_cst"}));
}

TEST_F(CheckerTest, StoreBufferingWithSeqCstFencesSeesAtLeastOneStore) {
  POLLUX_MODEL_ONLY();
  expect_explored(
      check([] { store_buffering(kRelaxed, kRelaxed, true); }, {.name = "sb seq_cst fences"}));
}

TEST_F(CheckerTest, StoreBufferingWithRelaxedCanMissBoth) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { store_buffering(kRelaxed, kRelaxed, false); }), ExitsWithFailure(),
              "assertion failed.*MODEL_ASSERT\\(seen_x == 1 \\|\\| seen_y == 1\\)");
}

TEST_F(CheckerTest, StoreBufferingWithReleaseAcquireCanMissBoth) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { store_buffering(kRelease, kAcquire, false); }), ExitsWithFailure(),
              "assertion failed");
}

// ---- Coherence: a thread never reads a value older than one it read ----

std::atomic<int> g_first_reads_seen{0};  // bit v: some execution's first read returned v

TEST_F(CheckerTest, LoadsReadEveryCoherentStoreAndNeverGoBack) {
  POLLUX_MODEL_ONLY();
  g_first_reads_seen = 0;
  expect_explored(check(
      [] {
        Atomic<int> x{0};
        Thread writer([&] {
          x.store(1, kRelaxed);
          x.store(2, kRelaxed);
        });
        Thread reader([&] {
          const int first = x.load(kRelaxed);
          const int second = x.load(kRelaxed);
          MODEL_ASSERT(second >= first);
          g_first_reads_seen.fetch_or(1 << first);
        });
        writer.join();
        reader.join();
        // After the join the writer's stores happen before this load.
        MODEL_ASSERT(x.load(kRelaxed) == 2);
      },
      {.name = "coherence"}));
  EXPECT_EQ(g_first_reads_seen.load(), 0b111) << "a relaxed load must be able to read 0, 1 and 2";
}

// ---- Interleavings: a lost update through load-then-store ----

TEST_F(CheckerTest, LoadThenStoreLosesAnUpdate) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] {
                Atomic<int> counter{0};
                auto increment = [&] { counter.store(counter.load(kSeqCst) + 1, kSeqCst); };
                Thread a(increment);
                Thread b(increment);
                a.join();
                b.join();
                MODEL_ASSERT(counter.load(kSeqCst) == 2);
              }),
              ExitsWithFailure(), "assertion failed");
}

TEST_F(CheckerTest, FetchAddLosesNoUpdate) {
  POLLUX_MODEL_ONLY();
  expect_explored(check(
      [] {
        Atomic<int> counter{0};
        auto increment = [&] { counter.fetch_add(1, kRelaxed); };
        Thread a(increment);
        Thread b(increment);
        a.join();
        b.join();
        MODEL_ASSERT(counter.load(kRelaxed) == 2);
      },
      {.name = "fetch_add"}));
}

// ---- Mutexes ----

void counter_of_two(bool locked) {
  Mutex mu;
  RaceCell<int> counter(0);
  auto increment = [&] {
    if (locked) {
      MutexLock lock(mu);
      ++counter.get_mut();
    } else {
      ++counter.get_mut();
    }
  };
  Thread a(increment);
  Thread b(increment);
  a.join();
  b.join();
  MODEL_ASSERT(counter.get() == 2);
}

TEST_F(CheckerTest, AMutexProtectedCounterPasses) {
  POLLUX_MODEL_ONLY();
  expect_explored(check([] { counter_of_two(true); }, {.name = "mutex counter"}));
}

TEST_F(CheckerTest, AnUnprotectedCounterIsADataRace) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { counter_of_two(false); }), ExitsWithFailure(),
              "data race on RaceCell.*write by T. .* and (read|write) by T.");
}

TEST_F(CheckerTest, LockingTwoMutexesInOppositeOrdersDeadlocks) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] {
                Mutex a;
                Mutex b;
                Thread t([&] {
                  MutexLock la(a);
                  MutexLock lb(b);
                });
                {
                  MutexLock lb(b);
                  MutexLock la(a);
                }
                t.join();
              }),
              ExitsWithFailure(), "deadlock.*blocked locking mutex#");
}

// ---- Condition variables ----

void signal_flag(bool wait_in_a_loop) {
  Mutex mu;
  CondVar cv;
  bool ready = false;  // guarded by mu
  Thread t([&] {
    MutexLock l(mu);
    ready = true;
    cv.notify_one();
  });
  {
    MutexLock l(mu);
    if (wait_in_a_loop) {
      while (!ready) cv.wait(mu);
    } else {
      cv.wait(mu);  // the notify may have come already: lost
    }
  }
  t.join();
}

TEST_F(CheckerTest, WaitingOnAPredicatePasses) {
  POLLUX_MODEL_ONLY();
  expect_explored(check([] { signal_flag(true); }, {.name = "condvar predicate"}));
}

TEST_F(CheckerTest, WaitingWithoutAPredicateLosesTheWakeUp) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { signal_flag(false); }), ExitsWithFailure(),
              "deadlock.*waiting on condvar#.*never notified");
}

std::atomic<int> g_wait_for_outcomes{0};  // bit 0: notified, bit 1: timed out

TEST_F(CheckerTest, WaitForExploresTheTimeout) {
  POLLUX_MODEL_ONLY();
  g_wait_for_outcomes = 0;
  expect_explored(check(
      [] {
        Mutex mu;
        CondVar cv;
        bool ready = false;
        Thread t([&] {
          MutexLock l(mu);
          ready = true;
          cv.notify_one();
        });
        {
          MutexLock l(mu);
          while (!ready) {
            const bool timed_out = cv.wait_for(mu, absl::Seconds(1));
            g_wait_for_outcomes.fetch_or(timed_out ? 2 : 1);
          }
        }
        t.join();
      },
      {.name = "wait_for"}));
  EXPECT_EQ(g_wait_for_outcomes.load(), 0b11);
}

// ---- Allocations ----

int* volatile g_sink = nullptr;  // so the compiler cannot elide the allocation

TEST_F(CheckerTest, ALeakIsReported) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { g_sink = new int(5); }), ExitsWithFailure(),
              "leak.*leak of 4 bytes in 1 allocation");
}

TEST_F(CheckerTest, AThreadLifetimeAllocationIsNoLeak) {
  POLLUX_MODEL_ONLY();
  static int* per_process = nullptr;
  const Stats s = check(
      [] {
        if (per_process == nullptr) {
          detail::ThreadLifetimeAllocation lifetime;
          per_process = new int(5);
        }
      },
      {.name = "lifetime allocation"});
  EXPECT_TRUE(s.complete);
  delete per_process;
}

TEST_F(CheckerTest, ADoubleFreeIsReported) {
  POLLUX_MODEL_ONLY();
  // Check-then-act: both threads can see `freed` false and free the block.
  EXPECT_EXIT(check([] {
                int* p = new int(1);
                Atomic<bool> freed{false};
                auto release = [&] {
                  if (!freed.load(kAcquire)) {
                    freed.store(true, kRelease);
                    g_sink = p;
                    delete g_sink;
                  }
                };
                Thread a(release);
                Thread b(release);
                a.join();
                b.join();
              }),
              ExitsWithFailure(), "double free.*freed again by T");
}

// ---- Step bound ----

TEST_F(CheckerTest, ASpinLoopExceedsTheStepBound) {
  POLLUX_MODEL_ONLY();
  // The first execution never preempts the spinning thread.
  EXPECT_EXIT(check(
                  [] {
                    Atomic<bool> flag{false};
                    Thread t([&] { flag.store(true, kRelease); });
                    while (!flag.load(kAcquire)) {
                    }
                    t.join();
                  },
                  {.max_steps = 1000}),
              ExitsWithFailure(), "step bound exceeded");
}

TEST_F(CheckerTest, ASpinLoopThatYieldsSeesTheOtherThreadsProgress) {
  POLLUX_MODEL_ONLY();
  // spin_loop_hint() switches to the thread that sets the flag (free, not
  // a preemption), so every execution ends; two spinners, so the yield has
  // a choice of whom to run.
  expect_explored(check(
      [] {
        Atomic<int> flag{0};
        Thread a([&] { flag.fetch_add(1, kRelease); });
        Thread b([&] { flag.fetch_add(1, kRelease); });
        while (flag.load(kAcquire) != 2) detail::spin_loop_hint();
        a.join();
        b.join();
      },
      {.max_steps = 1000, .name = "spin with yield"}));
}

// ---- Exploration order and thread reuse ----

std::atomic<int> g_runs{0};
std::atomic<int> g_first_execution_saw{-1};

TEST_F(CheckerTest, TheFirstExecutionIsSequential) {
  POLLUX_MODEL_ONLY();
  g_runs = 0;
  expect_explored(check(
      [] {
        Atomic<int> x{0};
        Thread t([&] { x.store(1, kRelaxed); });
        // No preemption in the first execution: t has not run yet.
        const int seen = x.load(kSeqCst);
        if (g_runs.fetch_add(1) == 0) g_first_execution_saw = seen;
        t.join();
      },
      {.name = "sequential first"}));
  EXPECT_EQ(g_first_execution_saw.load(), 0);
}

std::atomic<int> g_most_runs_on_one_thread{0};

TEST_F(CheckerTest, ModelThreadsAreReusedSoThreadLocalsPersist) {
  POLLUX_MODEL_ONLY();
  g_most_runs_on_one_thread = 0;
  const Stats s = check(
      [] {
        Atomic<int> x{0};
        Thread t([&] {
          thread_local int runs_here = 0;
          ++runs_here;
          if (runs_here > g_most_runs_on_one_thread) g_most_runs_on_one_thread = runs_here;
          x.store(1, kRelaxed);
        });
        (void)x.load(kRelaxed);
        t.join();
      },
      {.name = "thread reuse"});
  EXPECT_EQ(g_most_runs_on_one_thread.load(), static_cast<int>(s.executions));
}

TEST_F(CheckerTest, ANondeterministicModelIsReported) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] {
                static int runs = 0;
                Atomic<int> x{0};
                Thread t([&] { x.store(1, kRelaxed); });
                // Depends on state carried over from the previous execution.
                if (++runs % 2 == 0) (void)x.load(kRelaxed);
                (void)x.load(kRelaxed);
                t.join();
              }),
              ExitsWithFailure(), "nondeterministic model");
}

// ---- Value types: whatever is trivially copyable and at most 8 bytes ----

void value_types() {
  Atomic<std::thread::id> owner{std::thread::id()};
  int slots[4] = {};
  Atomic<int*> cursor{slots};
  Atomic<uint64_t> bits{0};
  Thread t([&] {
    std::thread::id none;
    if (owner.compare_exchange_strong(none, std::this_thread::get_id(), std::memory_order_acq_rel,
                                      kAcquire)) {
      MODEL_ASSERT(owner.load(kRelaxed) == std::this_thread::get_id());
    }
    cursor.fetch_add(2, kRelaxed);
    bits.fetch_or(uint64_t{1} << 63, kRelaxed);
  });
  cursor.fetch_sub(1, kRelaxed);
  bits.fetch_xor(1, kRelaxed);
  t.join();
  MODEL_ASSERT(cursor.load(kRelaxed) == slots + 1);
  MODEL_ASSERT(bits.load(kRelaxed) == ((uint64_t{1} << 63) | 1));
  MODEL_ASSERT(owner.load(kRelaxed) != std::thread::id());
}

TEST_F(CheckerTest, ThreadIdsPointersAndWideIntegersAreAtomicValues) {
  POLLUX_MODEL_ONLY();
  expect_explored(check(value_types, {.name = "value types"}));
}

TEST(InstrumentedPassThroughTest, ValueTypesOutsideACheck) { value_types(); }

// ---- Outside an execution every type is the ordinary one ----

TEST(InstrumentedPassThroughTest, TypesWorkOnRealThreadsOutsideACheck) {
  Atomic<int> counter{0};
  Mutex mu;
  CondVar cv;
  int done = 0;  // guarded by mu
  RaceCell<int> cell(3);
  Thread threads[] = {Thread([&] {
                        for (int i = 0; i < 1000; ++i) counter.fetch_add(1, kRelaxed);
                        MutexLock l(mu);
                        ++done;
                        cv.notify_all();
                      }),
                      Thread([&] {
                        for (int i = 0; i < 1000; ++i) counter.fetch_add(1, kRelaxed);
                        MutexLock l(mu);
                        ++done;
                        cv.notify_all();
                      })};
  {
    MutexLock l(mu);
    while (done < 2) cv.wait(mu);
  }
  for (Thread& t : threads) t.join();
  EXPECT_EQ(counter.load(kRelaxed), 2000);
  EXPECT_EQ(cell.get(), 3);
  int expected = 2000;
  EXPECT_TRUE(counter.compare_exchange_strong(expected, 1, kSeqCst));
  EXPECT_EQ(counter.exchange(5, kSeqCst), 1);
}

}  // namespace
}  // namespace pollux::model
