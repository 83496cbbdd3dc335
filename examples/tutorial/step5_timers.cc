// Tutorial step 5 (docs/tutorial.md): timers, sleep and timeout.
//
// pollux::sleep(d) is a future Ready after d, an entry in the runtime's
// timer wheel (no thread, no syscall to arm). timeout(f, d) races f
// against a sleep: f's output (an OK Status for a void f), or
// DeadlineExceeded, with f dropped on the spot. Needs a Runtime with time
// enabled. Prints exactly step5_timers.out.
//
//   ./bazelw run //examples/tutorial:step5_timers
#include <cstdio>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "future/task.h"
#include "runtime/runtime.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace {

using pollux::Task;

Task<void> timers() {
  pollux::Instant start = pollux::Instant::now();
  co_await pollux::sleep(absl::Milliseconds(50));
  // Never early; how late depends on the machine, so only the bound is printed.
  bool waited = pollux::Instant::now() - start >= absl::Milliseconds(50);
  std::printf("slept 50ms: %s\n", waited ? "at least 50ms passed" : "too early!");

  absl::Status fast = co_await pollux::timeout(pollux::sleep(absl::Milliseconds(10)),
                                               absl::Seconds(1));
  std::printf("10ms sleep under a 1s timeout: %s\n", fast.ToString().c_str());

  absl::Status slow = co_await pollux::timeout(pollux::sleep(absl::Seconds(10)),
                                               absl::Milliseconds(30));
  std::printf("10s sleep under a 30ms timeout: %s\n", slow.ToString().c_str());
}

}  // namespace

int main() {
  absl::StatusOr<pollux::Runtime> rt =
      pollux::Runtime::Builder().current_thread().enable_all().build();
  if (!rt.ok()) {
    std::fprintf(stderr, "no runtime: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  rt->block_on(timers());
  return 0;
}
