// timers: tasks sleeping and ticking on intervals on the io_uring runtime,
// one of them cut short by `timeout`. Runs in about two seconds.
//
//   ./bazelw run //examples:timers
//
// Every sleep and tick below is an entry in the driver's timer wheel: arming
// one makes no syscall, and the driver parks in io_uring_submit_and_wait_timeout
// until the earliest deadline.
#include <cstdio>
#include <string>

#include "absl/time/time.h"
#include "future/join.h"
#include "future/task.h"
#include "runtime/runtime.h"
#include "timer/instant.h"
#include "timer/interval.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace {

using pollux::Instant;
using pollux::Task;

Instant g_start;

double elapsed_ms() { return absl::ToDoubleMilliseconds(Instant::now() - g_start); }

Task<void> sleeper(std::string name, absl::Duration d) {
  std::printf("[%7.1f ms] %s: sleeping %s\n", elapsed_ms(), name.c_str(),
              absl::FormatDuration(d).c_str());
  co_await pollux::sleep(d);
  std::printf("[%7.1f ms] %s: woke up\n", elapsed_ms(), name.c_str());
}

Task<int> ticker(std::string name, absl::Duration period, int ticks) {
  pollux::Interval iv = pollux::interval(period);
  for (int i = 0; i < ticks; ++i) {
    co_await iv.tick();
    std::printf("[%7.1f ms] %s: tick %d\n", elapsed_ms(), name.c_str(), i);
  }
  co_return ticks;
}

Task<void> too_slow() {
  // The inner task would take 5 s; the timeout drops it after 700 ms.
  absl::Status s = co_await pollux::timeout(sleeper("slow-job", absl::Seconds(5)),
                                            absl::Milliseconds(700));
  std::printf("[%7.1f ms] timeout(slow-job, 700ms): %s\n", elapsed_ms(), s.ToString().c_str());
}

Task<void> demo() {
  auto handle = pollux::spawn(ticker("spawned 400ms", absl::Milliseconds(400), 5));
  co_await pollux::join(sleeper("short", absl::Milliseconds(300)),
                        sleeper("long", absl::Milliseconds(1500)),
                        ticker("250ms", absl::Milliseconds(250), 7), too_slow());
  auto ticks = co_await handle;
  std::printf("[%7.1f ms] spawned ticker finished after %d ticks\n", elapsed_ms(),
              ticks.value());
}

}  // namespace

int main() {
  absl::StatusOr<pollux::Runtime> rt =
      pollux::Runtime::Builder().current_thread().enable_all().build();
  if (!rt.ok()) {
    std::fprintf(stderr, "could not start the runtime: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  g_start = Instant::now();
  rt->block_on(demo());
  const auto stats = rt->io_backend()->stats();
  std::printf("done in %.0f ms; the driver entered the kernel %llu times\n", elapsed_ms(),
              static_cast<unsigned long long>(stats.kernel_entries));
  return 0;
}
