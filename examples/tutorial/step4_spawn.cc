// Tutorial step 4 (docs/tutorial.md): spawning tasks on a Runtime.
//
// pollux::spawn(f) runs f as a task of its own on the executor running on
// this thread and returns a JoinHandle<T>: a future whose output is
// JoinResult<T> (the value, or why there is none). Three tasks wait on their
// DelayedValues at the same time, so the whole run takes about as long as
// the longest (120 ms), not the sum. Prints exactly step4_spawn.out.
//
//   ./bazelw run //examples/tutorial:step4_spawn
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/tutorial/delayed_value.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "future/task.h"
#include "runtime/runtime.h"

namespace {

using pollux::JoinHandle;
using pollux::Task;
using std::chrono::milliseconds;

Task<void> fan_out() {
  std::vector<JoinHandle<std::string>> handles;
  for (int i = 1; i <= 3; ++i) {
    std::string name = absl::StrCat("worker ", i);
    // The safe way to spawn a coroutine lambda: pass the lambda itself.
    // spawn stores it in the task and calls it there, so its captures live
    // as long as the coroutine. Writing `spawn([...]() -> Task<...> {...}())`
    // (called here) would leave the coroutine reading the captures of a
    // destroyed temporary.
    handles.push_back(pollux::spawn([name, i]() -> Task<std::string> {
      int v = co_await tutorial::DelayedValue(i * 10, milliseconds(40 * i));
      co_return absl::StrCat(name, " got ", v);
    }));
  }
  // Awaiting a handle waits for that task; the others run meanwhile.
  for (JoinHandle<std::string>& h : handles) {
    pollux::JoinResult<std::string> r = co_await std::move(h);
    if (r.ok()) std::printf("%s\n", r.value().c_str());
  }
}

}  // namespace

int main() {
  // current_thread: one thread runs every task. enable_all: I/O and timers
  // (this step needs neither; the next ones do).
  absl::StatusOr<pollux::Runtime> rt =
      pollux::Runtime::Builder().current_thread().enable_all().build();
  if (!rt.ok()) {
    std::fprintf(stderr, "no runtime: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  rt->block_on(fan_out());
  std::printf("all workers joined\n");
  return 0;
}
