// Micro-benchmarks of sync/ (issue 14): the uncontended operations of one
// task, polled directly (as an await of a ready future is), side by side
// with tokio's (bench/tokio_sync, run by bench/sync_compare.sh).
//
//   ./bazelw run -c opt //bench:sync_bench
//
// No benchmark here makes a syscall or takes the slow (locked) path: each
// op finds what it needs at once, which is the case that matters most.
#include <benchmark/benchmark.h>

#include <optional>

#include "future/context.h"
#include "future/waker.h"
#include "sync/mpsc.h"
#include "sync/mutex.h"
#include "sync/notify.h"
#include "sync/oneshot.h"
#include "sync/semaphore.h"

namespace {

using pollux::Budget;
using pollux::Context;

struct Cx {
  Budget budget = Budget::unlimited();
  Context cx{pollux::noop_waker(), budget};
};

void BM_MpscBoundedSendRecv(benchmark::State& state) {
  Cx c;
  auto [tx, rx] = pollux::sync::mpsc::channel<uint64_t>(1024);
  uint64_t i = 0;
  for (auto _ : state) {
    auto s = tx.send(i++);
    auto sp = s.poll(c.cx);
    benchmark::DoNotOptimize(sp);
    auto r = rx.recv();
    auto rp = r.poll(c.cx);
    benchmark::DoNotOptimize(rp);
  }
}
BENCHMARK(BM_MpscBoundedSendRecv);

void BM_MpscUnboundedSendRecv(benchmark::State& state) {
  Cx c;
  auto [tx, rx] = pollux::sync::mpsc::unbounded_channel<uint64_t>();
  uint64_t i = 0;
  for (auto _ : state) {
    std::optional<uint64_t> back = tx.send(i++);
    benchmark::DoNotOptimize(back);
    auto r = rx.recv();
    auto rp = r.poll(c.cx);
    benchmark::DoNotOptimize(rp);
  }
}
BENCHMARK(BM_MpscUnboundedSendRecv);

void BM_OneshotCreateSendRecv(benchmark::State& state) {
  Cx c;
  uint64_t i = 0;
  for (auto _ : state) {
    auto [tx, rx] = pollux::sync::oneshot::channel<uint64_t>();
    std::optional<uint64_t> back = std::move(tx).send(i++);
    benchmark::DoNotOptimize(back);
    auto p = rx.poll(c.cx);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_OneshotCreateSendRecv);

void BM_MutexLockUnlock(benchmark::State& state) {
  Cx c;
  pollux::sync::Mutex<uint64_t> m(0);
  for (auto _ : state) {
    auto l = m.lock();
    auto p = l.poll(c.cx);
    ++*p.value();  // the guard unlocks when `p` goes
  }
  benchmark::DoNotOptimize(m.get_mut());
}
BENCHMARK(BM_MutexLockUnlock);

void BM_SemaphoreAcquireRelease(benchmark::State& state) {
  Cx c;
  pollux::sync::Semaphore s(1);
  for (auto _ : state) {
    auto a = s.acquire();
    auto p = a.poll(c.cx);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_SemaphoreAcquireRelease);

void BM_NotifyOneThenNotified(benchmark::State& state) {
  Cx c;
  pollux::sync::Notify n;
  for (auto _ : state) {
    n.notify_one();
    auto w = n.notified();
    auto p = w.poll(c.cx);
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_NotifyOneThenNotified);

}  // namespace
