// Micro-benchmarks of timers (issue 7): insert+cancel on the wheel, on the
// TimerQueue and through Sleep futures, and a sleep(0) round trip.
//
//   ./bazelw run -c opt //bench:timer_bench
//
// Target (reported, not asserted): timer insert+cancel < 25 ns.
//
// BM_WheelInsertCancel/T: one TimerEntry inserted T ticks ahead, then
//   cancelled (T = 1: level 0; 100000: level 2; 2^35: level 5).
// BM_WheelInsertCancelBatch: kBatch entries at spread deadlines, all
//   inserted then all cancelled; per entry (the wheel's lists get long and
//   cache misses show).
// BM_TimerQueueInsertCancel: the same through TimerQueue (Instant -> tick).
// BM_SleepUntilPollDrop_Runtime: on a runtime, sleep_until(t) created,
//   polled once (registers with the driver's queue) and dropped (cancels).
// BM_SleepPollDrop_Runtime: the same with sleep(1 s), which reads the clock.
// BM_SleepZero_Runtime: `co_await sleep(0)` in a Task (Ready at the first
//   poll, never registers); enters_per_item shows no syscall per op.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "future/assert.h"
#include "future/context.h"
#include "future/future.h"
#include "future/task.h"
#include "runtime/runtime.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timer_queue.h"
#include "timer/timer_wheel.h"

namespace {

using pollux::Context;
using pollux::Poll;
using pollux::Task;
using pollux::timer::TimerEntry;
using pollux::timer::TimerWheel;

constexpr int kBatch = 1000;

void BM_WheelInsertCancel(benchmark::State& state) {
  const uint64_t ahead = static_cast<uint64_t>(state.range(0));
  TimerWheel wheel(1000);
  TimerEntry entry;
  for (auto _ : state) {
    wheel.insert(&entry, wheel.now() + ahead);
    benchmark::DoNotOptimize(entry);
    wheel.cancel(&entry);
  }
  if (!wheel.empty()) state.SkipWithError("wheel not empty");
}
BENCHMARK(BM_WheelInsertCancel)->Arg(1)->Arg(100000)->Arg(int64_t{1} << 35);

void BM_WheelInsertCancelBatch(benchmark::State& state) {
  TimerWheel wheel(1000);
  std::vector<TimerEntry> entries(kBatch);
  for (auto _ : state) {
    // Deadlines 1..~30 s ahead spread over levels 0-2, with neighbours in
    // different slots.
    uint64_t ahead = 1;
    for (TimerEntry& e : entries) {
      wheel.insert(&e, wheel.now() + ahead);
      ahead = (ahead * 37 + 11) % 30000 + 1;
    }
    for (TimerEntry& e : entries) wheel.cancel(&e);
  }
  if (!wheel.empty()) state.SkipWithError("wheel not empty");
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_WheelInsertCancelBatch);

void BM_TimerQueueInsertCancel(benchmark::State& state) {
  pollux::timer::TimerQueue queue;
  pollux::timer::TimerQueue::Entry entry;
  const pollux::Instant deadline = queue.now() + absl::Seconds(1);
  for (auto _ : state) {
    queue.insert(&entry, deadline);
    benchmark::DoNotOptimize(entry);
    queue.cancel(&entry);
  }
  if (queue.active_timers() != 0) state.SkipWithError("queue not empty");
}
BENCHMARK(BM_TimerQueueInsertCancel);

pollux::Runtime make_runtime() {
  absl::StatusOr<pollux::Runtime> rt = pollux::Runtime::Builder().current_thread().enable_all().build();
  POLLUX_CHECK(rt.ok(), "io_uring runtime could not be built");
  return std::move(*rt);
}

// A root future that runs the benchmark loop inside one poll, so each Sleep
// is polled with a real task Context on the runtime thread.
template <class MakeSleep>
struct PollOnceAndDropLoop {
  using Output = void;
  benchmark::State* state;
  MakeSleep make_sleep;
  Poll<void> poll(Context& cx) {
    for (auto _ : *state) {
      pollux::Sleep s = make_sleep();
      Poll<void> p = s.poll(cx);
      POLLUX_CHECK(p.is_pending(), "a far sleep completed");
    }  // ~Sleep cancels the registered timer
    return pollux::Ready{};
  }
};

template <class MakeSleep>
void run_poll_drop(benchmark::State& state, MakeSleep make_sleep) {
  pollux::Runtime rt = make_runtime();
  rt.block_on(PollOnceAndDropLoop<MakeSleep>{&state, std::move(make_sleep)});
  if (rt.timer_queue()->active_timers() != 0) state.SkipWithError("a timer leaked");
}

void BM_SleepUntilPollDrop_Runtime(benchmark::State& state) {
  const pollux::Instant deadline = pollux::Instant::now() + absl::Hours(1);
  run_poll_drop(state, [deadline] { return pollux::sleep_until(deadline); });
}
BENCHMARK(BM_SleepUntilPollDrop_Runtime);

void BM_SleepPollDrop_Runtime(benchmark::State& state) {
  run_poll_drop(state, [] { return pollux::sleep(absl::Seconds(1)); });
}
BENCHMARK(BM_SleepPollDrop_Runtime);

Task<void> sleep_zero_loop(benchmark::State& state) {
  for (auto _ : state) co_await pollux::sleep(absl::ZeroDuration());
}

void BM_SleepZero_Runtime(benchmark::State& state) {
  pollux::Runtime rt = make_runtime();
  const uint64_t enters_before = rt.io_backend()->stats().kernel_entries;
  rt.block_on(sleep_zero_loop(state));
  const uint64_t enters = rt.io_backend()->stats().kernel_entries - enters_before;
  state.counters["enters_per_item"] =
      static_cast<double>(enters) / static_cast<double>(state.iterations() > 0 ? state.iterations() : 1);
}
BENCHMARK(BM_SleepZero_Runtime);

}  // namespace
