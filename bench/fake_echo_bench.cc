// The runtime's own cost per echo message (issue 17, DESIGN §7): pollux's
// echo loop over an in-memory backend (bench/fake_sockets.h) against the same
// loop written by hand over the same fake sockets. No syscall on either side,
// so the difference is only what pollux adds: op futures and slots, wakers,
// task polls, ticks.
//
//   ./bazelw run -c opt //bench:fake_echo_bench
//   valgrind --tool=callgrind bazel-bin/bench/fake_echo_bench ...  (instructions)
//
// 50 connections, 64-byte messages, 1,000 round trips each per iteration
// (bench/compare.sh's load: 50 connections, 64 B, depth 1). Reports ns per
// message and kernel entries (loop turns) per message.
#include <benchmark/benchmark.h>

#include <cstdint>

#include "bench/fake_echo.h"

namespace {

constexpr int kConnections = 50;
constexpr int64_t kMessagesPerConnection = 1000;
constexpr size_t kMessageSize = 64;

template <pollux::bench::EchoRun (*Echo)(int, int64_t, size_t)>
void BM_FakeEcho(benchmark::State& state) {
  int64_t messages = 0;
  uint64_t entries = 0;
  for (auto _ : state) {
    const pollux::bench::EchoRun run = Echo(kConnections, kMessagesPerConnection, kMessageSize);
    if (run.messages != kConnections * kMessagesPerConnection) state.SkipWithError("lost messages");
    messages += run.messages;
    entries += run.kernel_entries;
  }
  state.SetItemsProcessed(messages);
  state.counters["entries_per_msg"] =
      static_cast<double>(entries) / static_cast<double>(messages > 0 ? messages : 1);
  state.counters["ns_per_msg"] = benchmark::Counter(
      static_cast<double>(messages), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_FakeEcho<pollux::bench::pollux_echo>)->Name("BM_FakeEcho/pollux")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FakeEcho<pollux::bench::hand_written_echo>)
    ->Name("BM_FakeEcho/hand_written")
    ->Unit(benchmark::kMillisecond);

}  // namespace
