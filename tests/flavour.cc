#include "tests/flavour.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "executor/join_handle.h"
#include "executor/join_result.h"
#include "future/assert.h"
#include "future/task.h"
#include "reactor/backend.h"

namespace pollux::testing {

// Two threads: enough for stealing, cross-thread wakes and shutdown on
// several workers, and no more than the machines CI runs on have cores.
constexpr size_t kTestThreads = 2;

TestFlavour test_flavour() {
  const char* env = std::getenv("POLLUX_TEST_FLAVOUR");
  if (env == nullptr || std::strcmp(env, "current_thread") == 0) return TestFlavour::kCurrentThread;
  if (std::strcmp(env, "multi_thread") == 0) return TestFlavour::kMultiThread;
  if (std::strcmp(env, "thread_per_core") == 0) return TestFlavour::kThreadPerCore;
  std::fprintf(stderr,
               "POLLUX_TEST_FLAVOUR=%s: expected current_thread, multi_thread or thread_per_core\n",
               env);
  std::abort();
}

Runtime::Builder runtime_builder() {
  Runtime::Builder b;
  switch (test_flavour()) {
    case TestFlavour::kCurrentThread:
      b.current_thread();
      break;
    case TestFlavour::kMultiThread:
      b.multi_thread(kTestThreads);
      break;
    case TestFlavour::kThreadPerCore:
      b.thread_per_core(kTestThreads);
      break;
  }
  return b;
}

size_t live_ops(Runtime& rt) {
  if (on_current_thread()) {
    reactor::Backend* backend = rt.io_backend();
    return backend == nullptr ? 0 : backend->live_ops();
  }
  size_t total = 0;
  for (size_t i = 0; i < rt.worker_count(); ++i) {
    reactor::Backend* backend = rt.io_backend(i);
    if (backend == nullptr) continue;
    // Read on worker i: its backend's slots are that thread's (DESIGN §4),
    // and the JoinHandle's hand-off orders the read before ours.
    JoinResult<size_t> n = rt.block_on(rt.spawn_on(i, [backend]() -> Task<size_t> {
      co_return backend->live_ops();
    }));
    POLLUX_CHECK(n.ok(), "reading a worker's live ops: the runtime is shutting down");
    total += n.value();
  }
  return total;
}

}  // namespace pollux::testing
