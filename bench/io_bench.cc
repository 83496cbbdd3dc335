// Micro-benchmarks of the io_uring path (issue 7): a nop end to end.
//
//   ./bazelw run -c opt //bench:io_bench
//
// BM_NopRoundTrip: a Task on a current_thread runtime co_awaits
//   reactor::nop() in a loop: SQE + op slot, park (one io_uring_enter that
//   submits and waits), CQE reaped, task woken and polled. One enter per nop.
// BM_NopBatch/N: N tasks each await one nop, then the root joins them: the N
//   SQEs go out in one enter, so the syscall is amortised; per nop.
// Both report the driver's io_uring_enter calls per nop (enters_per_item).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "executor/join_handle.h"
#include "future/assert.h"
#include "future/task.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"

namespace {

using pollux::JoinHandle;
using pollux::Task;

pollux::Runtime make_runtime() {
  absl::StatusOr<pollux::Runtime> rt = pollux::Runtime::Builder().current_thread().enable_all().build();
  POLLUX_CHECK(rt.ok(), "io_uring runtime could not be built");
  return std::move(*rt);
}

void report_enters(benchmark::State& state, pollux::Runtime& rt, uint64_t enters_before,
                   int64_t items) {
  const uint64_t enters = rt.io_backend()->stats().kernel_entries - enters_before;
  state.counters["enters_per_item"] =
      static_cast<double>(enters) / static_cast<double>(items > 0 ? items : 1);
  state.SetItemsProcessed(items);
}

Task<void> nop_loop(benchmark::State& state) {
  for (auto _ : state) {
    absl::Status s = co_await pollux::reactor::nop();
    if (!s.ok()) state.SkipWithError("nop failed");
  }
}

void BM_NopRoundTrip(benchmark::State& state) {
  pollux::Runtime rt = make_runtime();
  const uint64_t enters_before = rt.io_backend()->stats().kernel_entries;
  rt.block_on(nop_loop(state));
  report_enters(state, rt, enters_before, state.iterations());
}
BENCHMARK(BM_NopRoundTrip);

Task<void> nop_batches(benchmark::State& state, int batch) {
  std::vector<JoinHandle<absl::Status>> handles;
  handles.reserve(batch);
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) handles.push_back(pollux::spawn(pollux::reactor::nop()));
    for (JoinHandle<absl::Status>& h : handles) {
      pollux::JoinResult<absl::Status> r = co_await h;
      if (!r.ok() || !r.value().ok()) state.SkipWithError("nop failed");
    }
    handles.clear();
  }
}

void BM_NopBatch(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  pollux::Runtime rt = make_runtime();
  const uint64_t enters_before = rt.io_backend()->stats().kernel_entries;
  rt.block_on(nop_batches(state, batch));
  report_enters(state, rt, enters_before, state.iterations() * batch);
}
BENCHMARK(BM_NopBatch)->Arg(32)->Arg(128);

}  // namespace
