// Memory cost (issue 7): heap bytes and allocations per spawned idle task and
// per idle TCP connection.
//
//   ./bazelw run -c opt //bench:memory_bench
//
// This binary replaces the global operator new/delete (only here, so other
// benchmarks are unaffected) to count allocations. Each benchmark runs one
// measurement (Iterations(1)) on a fresh thread, so the per-thread coroutine
// frame cache (future/internal/frame_allocator.h) starts empty and every frame
// is a real allocation. Counters, per item:
//   live_allocs    allocations still live after setup (net of frees)
//   live_usable    malloc_usable_size of those: what malloc really holds
//                  (plus its 8-byte chunk header each, not counted)
//   new_calls      operator new calls made during setup (gross)
//   new_bytes      bytes those calls requested (gross: the requested size of
//                  a freed block is unknown to an unsized delete)
// Only user-space heap is counted: kernel socket buffers and io_uring memory
// are not.
//
// Target (reported, not asserted): a spawned small task (a hand-written
// future of at most 32 bytes with Output = int) costs at most 128 bytes.
//
// BM_IdleSmallTask: kTasks spawned 32-byte futures that stay Pending, after
//   their first poll; JoinHandles kept (their vector is reserved up front).
// BM_IdleCoroutineTask: the same with a coroutine lambda (Task<int>) awaiting
//   pending<int>(): cell + CallableFuture + coroutine frame.
// BM_IdleTcpConnection/0: kPairs accepted+connected pairs on 127.0.0.1, both
//   streams kept, nothing in flight; per pair.
// BM_IdleTcpConnection/4096: the same with a task per end awaiting a read
//   into a 4 KiB buffer; per pair (subtract 2 x 4096 for the buffers).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/yield_now.h"
#include "future/assert.h"
#include "future/join.h"
#include "future/ready.h"
#include "future/task.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"

namespace {

// Relaxed: the counters are read only after the measured code ran on a
// thread that was joined (join synchronises).
std::atomic<int64_t> g_live_allocs{0};
std::atomic<int64_t> g_live_usable{0};
std::atomic<int64_t> g_new_calls{0};
std::atomic<int64_t> g_new_bytes{0};

void* counted_alloc(std::size_t size, std::size_t align) {
  if (size == 0) size = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(align, (size + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  g_live_allocs.fetch_add(1, std::memory_order_relaxed);
  g_live_usable.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  g_new_calls.fetch_add(1, std::memory_order_relaxed);
  g_new_bytes.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed);
  return p;
}

void counted_free(void* p) noexcept {
  if (p == nullptr) return;
  g_live_allocs.fetch_sub(1, std::memory_order_relaxed);
  g_live_usable.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

namespace {

using pollux::Context;
using pollux::JoinHandle;
using pollux::Poll;
using pollux::Task;
using pollux::net::TcpListener;
using pollux::net::TcpStream;

constexpr int kTasks = 1000;
constexpr int kPairs = 200;  // 401 fds: within the default RLIMIT_NOFILE of 1024

struct Snapshot {
  int64_t live_allocs = g_live_allocs.load(std::memory_order_relaxed);
  int64_t live_usable = g_live_usable.load(std::memory_order_relaxed);
  int64_t new_calls = g_new_calls.load(std::memory_order_relaxed);
  int64_t new_bytes = g_new_bytes.load(std::memory_order_relaxed);
};

// What a measured region allocated (see the header comment for each field).
struct Usage {
  int64_t live_allocs = 0;
  int64_t live_usable = 0;
  int64_t new_calls = 0;
  int64_t new_bytes = 0;
  static Usage between(const Snapshot& a, const Snapshot& b) {
    return Usage{b.live_allocs - a.live_allocs, b.live_usable - a.live_usable,
                 b.new_calls - a.new_calls, b.new_bytes - a.new_bytes};
  }
};

void report(benchmark::State& state, const Usage& u, int items) {
  const double n = items;
  state.counters["live_allocs"] = static_cast<double>(u.live_allocs) / n;
  state.counters["live_usable"] = static_cast<double>(u.live_usable) / n;
  state.counters["new_calls"] = static_cast<double>(u.new_calls) / n;
  state.counters["new_bytes"] = static_cast<double>(u.new_bytes) / n;
}

// Runs `measure` (returning a Usage) on a fresh thread and reports it.
template <class Measure>
void measure_on_fresh_thread(benchmark::State& state, int items, Measure measure) {
  for (auto _ : state) {
    Usage u;
    std::thread t([&] { u = measure(); });
    t.join();
    report(state, u, items);
  }
}

// A 32-byte hand-written future with Output = int that stays Pending.
struct IdleSmall {
  using Output = int;
  uint64_t a, b, c, d;
  Poll<int> poll(Context&) {
    benchmark::DoNotOptimize(a);
    return pollux::Pending{};
  }
};
static_assert(sizeof(IdleSmall) == 32);

// Spawns kTasks of what `spawn_one(ex)` spawns, polls each once, and returns
// what stayed allocated.
template <class SpawnOne>
Usage spawn_idle_tasks(SpawnOne spawn_one) {
  pollux::LocalExecutor ex;
  std::vector<decltype(spawn_one(ex))> handles;
  handles.reserve(kTasks);
  const Snapshot before;
  for (int i = 0; i < kTasks; ++i) handles.push_back(spawn_one(ex));
  ex.run_until_idle();
  const Snapshot after;
  POLLUX_CHECK(ex.pending_tasks() == static_cast<size_t>(kTasks), "a task finished");
  return Usage::between(before, after);
}

void BM_IdleSmallTask(benchmark::State& state) {
  measure_on_fresh_thread(state, kTasks, [] {
    return spawn_idle_tasks([](pollux::LocalExecutor& ex) { return ex.spawn_local(IdleSmall{}); });
  });
}
BENCHMARK(BM_IdleSmallTask)->Iterations(1);

void BM_IdleCoroutineTask(benchmark::State& state) {
  measure_on_fresh_thread(state, kTasks, [] {
    return spawn_idle_tasks([](pollux::LocalExecutor& ex) {
      return ex.spawn_local([]() -> Task<int> { co_return co_await pollux::pending<int>(); });
    });
  });
}
BENCHMARK(BM_IdleCoroutineTask)->Iterations(1);

Task<std::pair<TcpStream, TcpStream>> connected_pair(TcpListener& l) {
  auto [a, c] = co_await pollux::join(l.accept(), TcpStream::connect(l.local_addr()));
  POLLUX_CHECK(a.ok() && c.ok(), "could not connect a pair on 127.0.0.1");
  co_return std::pair<TcpStream, TcpStream>(std::move(*c), std::move(a->first));
}

// Connects kPairs pairs (and, with read_size > 0, parks a read of that size on
// each end); returns what stayed allocated. The listener and runtime are set
// up before the first snapshot.
Task<Usage> idle_connections(size_t read_size) {
  absl::StatusOr<TcpListener> l =
      TcpListener::bind(*pollux::net::SocketAddr::parse("127.0.0.1:0"));
  POLLUX_CHECK(l.ok(), "bind 127.0.0.1:0");
  // Warm-up pair: first-use allocations (op table, listener state) are not per connection.
  { auto warm = co_await connected_pair(*l); }
  std::vector<std::pair<TcpStream, TcpStream>> pairs;
  pairs.reserve(kPairs);
  std::vector<JoinHandle<pollux::reactor::IoResult>> reads;
  reads.reserve(2 * kPairs);
  const Snapshot before;
  for (int i = 0; i < kPairs; ++i) pairs.push_back(co_await connected_pair(*l));
  if (read_size > 0) {
    for (auto& [client, server] : pairs) {
      reads.push_back(pollux::spawn(client.read(std::vector<char>(read_size))));
      reads.push_back(pollux::spawn(server.read(std::vector<char>(read_size))));
    }
    // Every read task gets its first poll (61 per tick), which submits it.
    for (int i = 0; i < 2 * kPairs / pollux::LocalExecutor::kTickPolls + 2; ++i) {
      co_await pollux::yield_now();
    }
  }
  const Snapshot after;
  for (auto& h : reads) POLLUX_CHECK(!h.is_finished(), "a read on an idle connection finished");
  for (auto& h : reads) h.abort();
  co_return Usage::between(before, after);
}

void BM_IdleTcpConnection(benchmark::State& state) {
  const size_t read_size = static_cast<size_t>(state.range(0));
  measure_on_fresh_thread(state, kPairs, [read_size] {
    absl::StatusOr<pollux::Runtime> rt =
        pollux::Runtime::Builder().current_thread().enable_all().build();
    POLLUX_CHECK(rt.ok(), "io_uring runtime could not be built");
    return rt->block_on(idle_connections(read_size));
  });
}
BENCHMARK(BM_IdleTcpConnection)->Arg(0)->Arg(4096)->Iterations(1);

}  // namespace
