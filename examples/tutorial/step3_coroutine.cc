// Tutorial step 3 (docs/tutorial.md): a coroutine awaiting the future.
//
// Task<T> is a coroutine type and itself a future: `co_await f` polls f
// each time the task is polled, with the task's own Context, so the
// DelayedValue's stored waker wakes the whole task. Prints exactly
// step3_coroutine.out.
//
//   ./bazelw run //examples/tutorial:step3_coroutine
#include <chrono>
#include <cstdio>

#include "examples/tutorial/delayed_value.h"
#include "executor/local_executor.h"
#include "future/task.h"

namespace {

using pollux::Task;
using std::chrono::milliseconds;

Task<int> add_delayed() {
  // One await at a time: the second DelayedValue is not even created (no
  // helper thread started) until the first is Ready.
  int a = co_await tutorial::DelayedValue(20, milliseconds(20), "first");
  int b = co_await tutorial::DelayedValue(22, milliseconds(20), "second");
  co_return a + b;
}

Task<void> report() {
  // A Task awaits another Task just like any future.
  int sum = co_await add_delayed();
  std::printf("add_delayed() returned %d\n", sum);
}

}  // namespace

int main() {
  pollux::LocalExecutor executor;
  // Calling a coroutine only creates the Task: nothing runs until polled.
  Task<void> task = report();
  std::printf("task created, nothing polled yet\n");
  executor.block_on(std::move(task));
  return 0;
}
