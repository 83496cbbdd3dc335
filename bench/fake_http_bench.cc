// The runtime's own cost per HTTP request (issue 17, "for echo and for
// HTTP"): pollux's http_hello loop over an in-memory backend
// (bench/fake_http.h, on bench/fake_sockets.h) against the same work
// written by hand over the same fake sockets. No syscall on either side, and
// the same parsing (answer_requests) and bytes, so the difference is only
// what pollux adds: op futures and slots, wakers, task polls, ticks.
//
//   ./bazelw build -c opt //bench:fake_http_bench
//   taskset -c 1 bazel-bin/bench/fake_http_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true                   (ns per request)
//   valgrind --tool=callgrind --toggle-collect='pollux::bench::pollux_http*'
//       bazel-bin/bench/fake_http_bench --benchmark_filter=/pollux$
//       --benchmark_min_time=0.001
//   (instructions per request: callgrind's "Collected" over one call's
//   50,000; likewise hand_written_http* with /hand_written$)
//
// 50 connections, 1,000 hello requests each per iteration, depth 1
// (bench/compare.sh's HTTP load: loadgen --mode=http, 50 connections).
// Reports ns per request (ns_per_msg) and kernel entries (loop turns) per
// request (entries_per_msg), as BM_FakeEcho does per message; a lost or
// wrong response fails the benchmark.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string_view>

#include "bench/fake_http.h"
#include "examples/http_wire.h"

namespace {

constexpr int kConnections = 50;
constexpr int64_t kRequestsPerConnection = 1000;

template <pollux::bench::HttpRun (*Serve)(int, int64_t, std::string_view)>
void BM_FakeHttp(benchmark::State& state) {
  int64_t requests = 0;
  uint64_t entries = 0;
  for (auto _ : state) {
    const pollux::bench::HttpRun run =
        Serve(kConnections, kRequestsPerConnection, pollux::examples::http::kHelloResponse);
    if (run.requests != kConnections * kRequestsPerConnection) {
      state.SkipWithError("lost responses");
    }
    if (run.mismatches != 0) state.SkipWithError("wrong responses");
    requests += run.requests;
    entries += run.kernel_entries;
  }
  state.SetItemsProcessed(requests);
  state.counters["entries_per_msg"] =
      static_cast<double>(entries) / static_cast<double>(requests > 0 ? requests : 1);
  state.counters["ns_per_msg"] = benchmark::Counter(
      static_cast<double>(requests), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FakeHttp<pollux::bench::pollux_http>)
    ->Name("BM_FakeHttp/pollux")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FakeHttp<pollux::bench::hand_written_http>)
    ->Name("BM_FakeHttp/hand_written")
    ->Unit(benchmark::kMillisecond);

}  // namespace
