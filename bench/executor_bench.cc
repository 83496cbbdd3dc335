// Micro-benchmarks of the executor (issue 7): spawn+join, yield_now, a wake
// from another thread until the task is polled, and select of two ready
// futures.
//
//   ./bazelw run -c opt //bench:executor_bench
//
// Targets (reported, not asserted): spawn+join on a LocalExecutor < 60 ns,
// yield_now < 20 ns. The "Batch" benchmarks amortise the harness: each
// iteration spawns (or yields) kBatch times and the time is reported per item
// (see items_per_second; ns per item = 1e9 / items_per_second).
//
// BM_SpawnJoinBatch_LocalExecutor: spawn kBatch ready tasks, run_until_idle,
//   then poll every JoinHandle once (each is ready): per spawned task.
// BM_SpawnJoinBlockOn_LocalExecutor: spawn one task and block_on its handle.
// BM_SpawnJoin_Runtime: inside a current_thread io_uring runtime, a Task
//   spawns one task and co_awaits its handle (one executor tick per task,
//   plus the driver's non-blocking check).
// BM_SpawnJoinBatch_Runtime: the same, kBatch spawns then kBatch awaits.
// BM_YieldNow_HandWritten / BM_YieldNow_Task: one task yields kBatch times
//   (hand-written future / coroutine loop of co_await yield_now()).
// BM_CrossThreadWakePingPong_{LocalExecutor,Runtime}: two executors on two
//   threads wake each other in turn; one iteration is one round trip, i.e.
//   two cross-thread wakes, each including the unpark of a parked executor
//   (condition variable for LocalExecutor, eventfd write + io_uring_enter
//   for the runtime; the runtime variant reports the driver's counters per
//   round trip).
// BM_SelectTwoReady: build and poll select(ready(a), ready(b)); the left wins.
//
// The multi-thread flavours (2 workers; issue 12):
// BM_SpawnJoin_{MultiThread,ThreadPerCore}: a task on a worker spawns one
//   task and awaits it (multi_thread: the idle worker may steal it, so this
//   includes a cross-worker wake when it does).
// BM_Spawn10kJoinAll_{MultiThread,ThreadPerCore}: spawn 10,000 ready tasks,
//   then await them all; per task.
// BM_CrossWorkerPingPong_{MultiThread,ThreadPerCore}: a task on worker 0 and
//   one on worker 1 (spawn_on) wake each other in turn; per round trip.
// BM_SpawnBlockingRoundTrip_{CurrentThread,MultiThread}: a task calls
//   spawn_blocking(trivial) and awaits it (a pool thread kept warm): the hand-
//   off to the pool and the wake back.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "executor/blocking/spawn_blocking.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/yield_now.h"
#include "future/context.h"
#include "future/future.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "future/waker.h"
#include "runtime/runtime.h"

namespace {

using pollux::Context;
using pollux::JoinHandle;
using pollux::LocalExecutor;
using pollux::Poll;
using pollux::Task;

constexpr int kBatch = 1000;

// Ready at its first poll with a value: the smallest spawnable work.
struct ReadyInt {
  using Output = int;
  int value;
  Poll<int> poll(Context&) { return pollux::Ready(value); }
};

pollux::Runtime make_runtime() {
  absl::StatusOr<pollux::Runtime> rt = pollux::Runtime::Builder().current_thread().enable_all().build();
  POLLUX_CHECK(rt.ok(), "io_uring runtime could not be built");
  return std::move(*rt);
}

// Polls a handle of a task that already completed; checks it really was.
int take_ready(JoinHandle<int>& h) {
  pollux::Budget budget = pollux::Budget::unlimited();
  Context cx(pollux::noop_waker(), budget);
  Poll<pollux::JoinResult<int>> p = h.poll(cx);
  POLLUX_CHECK(p.is_ready() && std::move(p).value().ok(), "task not finished after run_until_idle");
  return 1;
}

void BM_SpawnJoinBatch_LocalExecutor(benchmark::State& state) {
  LocalExecutor ex;
  std::vector<JoinHandle<int>> handles;
  handles.reserve(kBatch);
  int64_t joined = 0;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) handles.push_back(ex.spawn_local(ReadyInt{i}));
    ex.run_until_idle();
    for (JoinHandle<int>& h : handles) joined += take_ready(h);
    handles.clear();
  }
  if (joined != state.iterations() * kBatch) state.SkipWithError("lost a task");
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SpawnJoinBatch_LocalExecutor);

void BM_SpawnJoinBlockOn_LocalExecutor(benchmark::State& state) {
  LocalExecutor ex;
  for (auto _ : state) {
    pollux::JoinResult<int> r = ex.block_on(ex.spawn_local(ReadyInt{1}));
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnJoinBlockOn_LocalExecutor);

Task<void> spawn_join_one_at_a_time(benchmark::State& state) {
  for (auto _ : state) {
    pollux::JoinResult<int> r = co_await pollux::spawn(ReadyInt{1});
    benchmark::DoNotOptimize(r);
  }
}

Task<void> spawn_join_in_batches(benchmark::State& state) {
  std::vector<JoinHandle<int>> handles;
  handles.reserve(kBatch);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) handles.push_back(pollux::spawn(ReadyInt{i}));
    for (JoinHandle<int>& h : handles) {
      pollux::JoinResult<int> r = co_await h;
      benchmark::DoNotOptimize(r);
    }
    handles.clear();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// The driver's io_uring_enter calls per item, as a counter (0 on the local paths).
void report_enters(benchmark::State& state, pollux::Runtime& rt, uint64_t enters_before,
                   int64_t items) {
  const uint64_t enters = rt.io_backend()->stats().kernel_entries - enters_before;
  state.counters["enters_per_item"] =
      static_cast<double>(enters) / static_cast<double>(items > 0 ? items : 1);
}

void BM_SpawnJoin_Runtime(benchmark::State& state) {
  pollux::Runtime rt = make_runtime();
  const uint64_t enters_before = rt.io_backend()->stats().kernel_entries;
  rt.block_on(spawn_join_one_at_a_time(state));
  state.SetItemsProcessed(state.iterations());
  report_enters(state, rt, enters_before, state.iterations());
}
BENCHMARK(BM_SpawnJoin_Runtime);

void BM_SpawnJoinBatch_Runtime(benchmark::State& state) {
  pollux::Runtime rt = make_runtime();
  const uint64_t enters_before = rt.io_backend()->stats().kernel_entries;
  rt.block_on(spawn_join_in_batches(state));
  report_enters(state, rt, enters_before, state.iterations() * kBatch);
}
BENCHMARK(BM_SpawnJoinBatch_Runtime);

// yield_now() inlined: Pending (after waking itself) `remaining` times, then Ready.
struct YieldTimes {
  using Output = int;
  int remaining;
  Poll<int> poll(Context& cx) {
    if (remaining == 0) return pollux::Ready(1);
    --remaining;
    cx.waker().wake_by_ref();
    return pollux::Pending{};
  }
};

void BM_YieldNow_HandWritten(benchmark::State& state) {
  LocalExecutor ex;
  for (auto _ : state) {
    JoinHandle<int> h = ex.spawn_local(YieldTimes{kBatch});
    ex.run_until_idle();
    benchmark::DoNotOptimize(take_ready(h));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_YieldNow_HandWritten);

void BM_YieldNow_Task(benchmark::State& state) {
  LocalExecutor ex;
  for (auto _ : state) {
    JoinHandle<int> h = ex.spawn_local([]() -> Task<int> {
      for (int i = 0; i < kBatch; ++i) co_await pollux::yield_now();
      co_return 1;
    });
    ex.run_until_idle();
    benchmark::DoNotOptimize(take_ready(h));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_YieldNow_Task);

// A counter one thread raises and another awaits: the waiter's waker is
// stored under the mutex and woken (from the raising thread) on each raise.
class Signal {
 public:
  static constexpr uint64_t kStop = UINT64_MAX;

  // Raises the counter to `v` and wakes the waiter, if any.
  void raise(uint64_t v) {
    pollux::Waker w;
    {
      std::lock_guard lock(mu_);
      value_.store(v, std::memory_order_release);
      w = std::move(waker_);
    }
    std::move(w).wake();
  }

  // Ready with the counter once it reaches `at_least`.
  struct Wait {
    using Output = uint64_t;
    Signal* signal;
    uint64_t at_least;
    Poll<uint64_t> poll(Context& cx) {
      uint64_t v = signal->value_.load(std::memory_order_acquire);
      if (v >= at_least) return pollux::Ready(v);
      std::lock_guard lock(signal->mu_);
      v = signal->value_.load(std::memory_order_acquire);
      if (v >= at_least) return pollux::Ready(v);
      if (!signal->waker_.will_wake(cx.waker())) signal->waker_ = cx.waker();
      return pollux::Pending{};
    }
  };
  [[nodiscard]] Wait wait(uint64_t at_least) { return Wait{this, at_least}; }

 private:
  std::mutex mu_;
  std::atomic<uint64_t> value_{0};
  pollux::Waker waker_;  // guarded by mu_
};

// The far side of the ping-pong: answers every ping with a pong, until kStop.
Task<void> pong_side(Signal& ping, Signal& pong) {
  for (uint64_t next = 1;; ++next) {
    const uint64_t v = co_await ping.wait(next);
    if (v == Signal::kStop) co_return;
    pong.raise(v);
  }
}

Task<void> ping_side(benchmark::State& state, Signal& ping, Signal& pong) {
  uint64_t round = 0;
  for (auto _ : state) {
    ++round;
    ping.raise(round);
    co_await pong.wait(round);
  }
  ping.raise(Signal::kStop);
}

void BM_CrossThreadWakePingPong_LocalExecutor(benchmark::State& state) {
  Signal ping, pong;
  std::thread far([&] {
    LocalExecutor ex;
    ex.block_on(pong_side(ping, pong));
  });
  {
    LocalExecutor ex;
    ex.block_on(ping_side(state, ping, pong));
  }
  far.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CrossThreadWakePingPong_LocalExecutor)->UseRealTime();

void BM_CrossThreadWakePingPong_Runtime(benchmark::State& state) {
  Signal ping, pong;
  std::thread far([&] {
    pollux::Runtime rt = make_runtime();
    rt.block_on(pong_side(ping, pong));
  });
  pollux::Runtime rt = make_runtime();
  const pollux::reactor::BackendStats before = rt.io_backend()->stats();
  rt.block_on(ping_side(state, ping, pong));
  const pollux::reactor::BackendStats after = rt.io_backend()->stats();
  far.join();
  const double rounds = static_cast<double>(state.iterations() > 0 ? state.iterations() : 1);
  state.counters["enters_per_round"] = static_cast<double>(after.kernel_entries - before.kernel_entries) / rounds;
  state.counters["eventfd_writes_per_round"] =
      static_cast<double>(after.unpark_writes - before.unpark_writes) / rounds;
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CrossThreadWakePingPong_Runtime)->UseRealTime();

void BM_SelectTwoReady(benchmark::State& state) {
  pollux::Budget budget = pollux::Budget::unlimited();
  Context cx(pollux::noop_waker(), budget);
  int left = 1, right = 2;
  for (auto _ : state) {
    // Opaque values: otherwise the whole select folds to a constant.
    benchmark::DoNotOptimize(left);
    benchmark::DoNotOptimize(right);
    auto sel = pollux::select(pollux::ready(left), pollux::ready(right));
    auto p = sel.poll(cx);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_SelectTwoReady);

pollux::Runtime make_flavour(bool multi_thread) {
  pollux::Runtime::Builder b;
  if (multi_thread) {
    b.multi_thread(2);
  } else {
    b.thread_per_core(2);
  }
  absl::StatusOr<pollux::Runtime> rt = b.enable_all().build();
  if (!rt.ok()) std::abort();
  return std::move(*rt);
}

void BM_SpawnJoin_MultiThread(benchmark::State& state) {
  pollux::Runtime rt = make_flavour(true);
  rt.block_on(spawn_join_one_at_a_time(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnJoin_MultiThread)->UseRealTime();

void BM_SpawnJoin_ThreadPerCore(benchmark::State& state) {
  pollux::Runtime rt = make_flavour(false);
  rt.block_on(spawn_join_one_at_a_time(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnJoin_ThreadPerCore)->UseRealTime();

constexpr int kTenThousand = 10000;

Task<void> spawn_10k_join_all(benchmark::State& state) {
  std::vector<JoinHandle<int>> handles;
  handles.reserve(kTenThousand);
  for (auto _ : state) {
    for (int i = 0; i < kTenThousand; ++i) handles.push_back(pollux::spawn(ReadyInt{i}));
    for (JoinHandle<int>& h : handles) {
      pollux::JoinResult<int> r = co_await h;
      benchmark::DoNotOptimize(r);
    }
    handles.clear();
  }
  state.SetItemsProcessed(state.iterations() * kTenThousand);
}

void BM_Spawn10kJoinAll_MultiThread(benchmark::State& state) {
  pollux::Runtime rt = make_flavour(true);
  rt.block_on(spawn_10k_join_all(state));
}
BENCHMARK(BM_Spawn10kJoinAll_MultiThread)->UseRealTime();

void BM_Spawn10kJoinAll_ThreadPerCore(benchmark::State& state) {
  pollux::Runtime rt = make_flavour(false);
  rt.block_on(spawn_10k_join_all(state));
}
BENCHMARK(BM_Spawn10kJoinAll_ThreadPerCore)->UseRealTime();

void cross_worker_ping_pong(benchmark::State& state, bool multi_thread) {
  pollux::Runtime rt = make_flavour(multi_thread);
  Signal ping, pong;
  JoinHandle<void> far = rt.spawn_on(1, [&] { return pong_side(ping, pong); });
  JoinHandle<void> near = rt.spawn_on(0, [&] { return ping_side(state, ping, pong); });
  (void)rt.block_on(std::move(near));
  (void)rt.block_on(std::move(far));
  state.SetItemsProcessed(state.iterations());
}

void BM_CrossWorkerPingPong_MultiThread(benchmark::State& state) {
  cross_worker_ping_pong(state, true);
}
BENCHMARK(BM_CrossWorkerPingPong_MultiThread)->UseRealTime();

void BM_CrossWorkerPingPong_ThreadPerCore(benchmark::State& state) {
  cross_worker_ping_pong(state, false);
}
BENCHMARK(BM_CrossWorkerPingPong_ThreadPerCore)->UseRealTime();

Task<void> spawn_blocking_one_at_a_time(benchmark::State& state) {
  for (auto _ : state) {
    pollux::JoinResult<int> r = co_await pollux::spawn_blocking([] { return 1; });
    benchmark::DoNotOptimize(r);
  }
}

void BM_SpawnBlockingRoundTrip_CurrentThread(benchmark::State& state) {
  pollux::Runtime rt = make_runtime();
  rt.block_on(spawn_blocking_one_at_a_time(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnBlockingRoundTrip_CurrentThread)->UseRealTime();

void BM_SpawnBlockingRoundTrip_MultiThread(benchmark::State& state) {
  pollux::Runtime rt = make_flavour(true);
  rt.block_on(spawn_blocking_one_at_a_time(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnBlockingRoundTrip_MultiThread)->UseRealTime();

}  // namespace
