// Micro-benchmarks of the io_uring path (issue 7): a nop end to end.
//
//   ./bazelw run -c opt //bench:io_bench
//
// BM_NopRoundTrip: a Task on a current_thread runtime co_awaits
//   reactor::nop() in a loop: SQE + op slot, park (one io_uring_enter that
//   submits and waits), CQE reaped, task woken and polled. One enter per nop.
// BM_NopBatch/N: N tasks each await one nop, then the root joins them: the N
//   SQEs go out in one enter, so the syscall is amortised; per nop.
// BM_NopJoin/N: one task awaits N nops at once through the `join`
//   combinator (future/join.h: no spawn, no JoinHandle, one waker): the
//   per-operation floor of the runtime.
// BM_NopJoinAll/N: the same through sync::join_all, the run-time-sized join
//   (FuturesUnordered: a node and a waker per future).
// BM_RawNop*: the same work written by hand against liburing, for the
//   side-by-side ratio (issue 17): RoundTrip preps one NOP and waits for it;
//   Batch/N preps N, enters once and reaps them all. The ring is set up as
//   pollux's is (bench/raw_server_common.h's init_ring: SINGLE_ISSUER |
//   DEFER_TASKRUN, the ring fd registered), so the kernel side is the same.
// All report io_uring_enter calls per nop (enters_per_item).
#include <benchmark/benchmark.h>
#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "bench/raw_server_common.h"
#include "executor/join_handle.h"
#include "future/assert.h"
#include "future/join.h"
#include "future/task.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "sync/join_all.h"

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
BENCHMARK(BM_NopBatch)->Arg(1)->Arg(32)->Arg(128);

using NopFuture = decltype(pollux::reactor::nop());

template <size_t... I>
auto join_nops(std::index_sequence<I...>) {
  return pollux::join(((void)I, pollux::reactor::nop())...);
}

template <size_t N>
Task<void> nop_joins(benchmark::State& state) {
  for (auto _ : state) {
    auto done = co_await join_nops(std::make_index_sequence<N>());
    std::apply([&](const auto&... s) { if (!(s.ok() && ...)) state.SkipWithError("nop failed"); },
               done);
  }
}

template <size_t N>
void BM_NopJoin(benchmark::State& state) {
  pollux::Runtime rt = make_runtime();
  const uint64_t enters_before = rt.io_backend()->stats().kernel_entries;
  rt.block_on(nop_joins<N>(state));
  report_enters(state, rt, enters_before, state.iterations() * static_cast<int64_t>(N));
}
BENCHMARK(BM_NopJoin<1>);
BENCHMARK(BM_NopJoin<32>);
BENCHMARK(BM_NopJoin<128>);

Task<void> nop_join_alls(benchmark::State& state, int batch) {
  for (auto _ : state) {
    std::vector<NopFuture> nops;
    nops.reserve(batch);
    for (int i = 0; i < batch; ++i) nops.push_back(pollux::reactor::nop());
    std::vector<absl::Status> done = co_await pollux::sync::join_all(std::move(nops));
    for (const absl::Status& s : done) {
      if (!s.ok()) state.SkipWithError("nop failed");
    }
  }
}

void BM_NopJoinAll(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  pollux::Runtime rt = make_runtime();
  const uint64_t enters_before = rt.io_backend()->stats().kernel_entries;
  rt.block_on(nop_join_alls(state, batch));
  report_enters(state, rt, enters_before, state.iterations() * batch);
}
BENCHMARK(BM_NopJoinAll)->Arg(1)->Arg(32)->Arg(128);

// A ring as pollux sets one up (bench/raw_server_common.h's init_ring: the
// same flags and fallbacks, the ring fd registered).
struct RawRing {
  io_uring ring{};
  RawRing() { pollux::bench::init_ring(&ring, 256); }
  ~RawRing() { io_uring_queue_exit(&ring); }
  RawRing(const RawRing&) = delete;
  RawRing& operator=(const RawRing&) = delete;
};

// Preps `n` NOPs, enters once to submit them and wait for all, reaps them.
// Returns the number of failed CQEs.
int raw_nops(io_uring& ring, int n) {
  for (int i = 0; i < n; ++i) io_uring_prep_nop(io_uring_get_sqe(&ring));
  POLLUX_CHECK(io_uring_submit_and_wait(&ring, static_cast<unsigned>(n)) == n,
               "io_uring_submit_and_wait failed");
  int failed = 0;
  int seen = 0;
  unsigned head;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring, head, cqe) {
    failed += cqe->res < 0;
    ++seen;
  }
  io_uring_cq_advance(&ring, static_cast<unsigned>(seen));
  POLLUX_CHECK(seen == n, "fewer CQEs than NOPs after waiting for all");
  return failed;
}

void BM_RawNopRoundTrip(benchmark::State& state) {
  RawRing r;
  for (auto _ : state) {
    if (raw_nops(r.ring, 1) != 0) state.SkipWithError("nop failed");
  }
  state.counters["enters_per_item"] = 1.0;
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawNopRoundTrip);

void BM_RawNopBatch(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  RawRing r;
  for (auto _ : state) {
    if (raw_nops(r.ring, batch) != 0) state.SkipWithError("nop failed");
  }
  state.counters["enters_per_item"] = 1.0 / batch;
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_RawNopBatch)->Arg(1)->Arg(32)->Arg(128);

}  // namespace
