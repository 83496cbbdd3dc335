// Micro-benchmarks of Task<T> chains (issue 4): the cost of re-polling a
// suspended chain must not grow with its depth, because the root remembers
// the innermost waiting leaf and polls only that.
//
//   ./bazelw run -c opt //bench:task_bench
//
// BM_RepollSuspendedChain/D: a chain of D nested co_awaits whose innermost
// frame waits on a leaf that stays Pending; each iteration is one poll of the
// root (a spurious wake-up). Compare D=1 with D=1000.
// BM_CompleteChain/D: build, run to completion and destroy a chain of depth D
// (frame allocation included), reported per frame.
#include <benchmark/benchmark.h>

#include "future/context.h"
#include "future/future.h"
#include "future/task.h"
#include "future/waker.h"

namespace {

using pollux::Context;
using pollux::Poll;
using pollux::Task;

// Pending until `*open`; registers nothing (the benchmark polls by hand).
struct Gate {
  using Output = int;
  const bool* open;
  Poll<int> poll(Context&) {
    if (*open) return pollux::Ready(1);
    return pollux::Pending{};
  }
};

Task<int> chain(int depth, const bool* open) {
  if (depth == 0) co_return co_await Gate{open};
  co_return 1 + co_await chain(depth - 1, open);
}

void BM_RepollSuspendedChain(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  bool open = false;
  Task<int> root = chain(depth - 1, &open);
  pollux::Budget budget = pollux::Budget::unlimited();
  Context cx(pollux::noop_waker(), budget);
  if (root.poll(cx).is_ready()) state.SkipWithError("chain finished early");
  for (auto _ : state) {
    Poll<int> p = root.poll(cx);
    benchmark::DoNotOptimize(p);
  }
  open = true;
  if (!root.poll(cx).is_ready()) state.SkipWithError("chain did not finish");
}
BENCHMARK(BM_RepollSuspendedChain)->Arg(1)->Arg(10)->Arg(1000);

void BM_CompleteChain(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  bool open = true;
  pollux::Budget budget = pollux::Budget::unlimited();
  Context cx(pollux::noop_waker(), budget);
  for (auto _ : state) {
    Task<int> root = chain(depth - 1, &open);
    Poll<int> p = root.poll(cx);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations() * depth);
}
BENCHMARK(BM_CompleteChain)->Arg(1)->Arg(1000);

}  // namespace
