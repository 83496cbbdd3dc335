// What one locked read-modify-write costs on this machine, uncontended (one
// thread, its own cache line), against the relaxed load and store that a
// single-writer counter uses instead (examples/event_counts.h). The figure
// behind counting locked instructions per message (issue 17,
// bench/locked_instructions.py): callgrind counts each as one instruction.
//
//   ./bazelw run -c opt //bench:locked_op_bench
#include <atomic>
#include <cstdint>

#include "benchmark/benchmark.h"

namespace {

struct alignas(64) Line {
  std::atomic<uint64_t> v{0};
};

void BM_RelaxedLoadStore(benchmark::State& state) {
  Line line;
  for (auto _ : state) {
    line.v.store(line.v.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(line.v.load(std::memory_order_relaxed));
}
BENCHMARK(BM_RelaxedLoadStore);

void BM_RelaxedFetchAdd(benchmark::State& state) {
  Line line;
  for (auto _ : state) line.v.fetch_add(1, std::memory_order_relaxed);
  benchmark::DoNotOptimize(line.v.load(std::memory_order_relaxed));
}
BENCHMARK(BM_RelaxedFetchAdd);

// As the task-state transitions: a load, then a compare-exchange loop.
void BM_CasLoop(benchmark::State& state) {
  Line line;
  for (auto _ : state) {
    uint64_t cur = line.v.load(std::memory_order_acquire);
    while (!line.v.compare_exchange_weak(cur, cur + 2, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
    }
  }
  benchmark::DoNotOptimize(line.v.load(std::memory_order_relaxed));
}
BENCHMARK(BM_CasLoop);

}  // namespace
