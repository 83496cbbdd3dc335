// Tutorial step 2 (docs/tutorial.md): a future woken from another thread.
//
// block_on polls DelayedValue once (Pending, waker stored), parks the
// thread (no busy loop), and polls again only when the helper thread wakes
// the stored waker. Prints exactly step2_waker.out.
//
//   ./bazelw run //examples/tutorial:step2_waker
#include <chrono>
#include <cstdio>

#include "examples/tutorial/delayed_value.h"
#include "executor/local_executor.h"

int main() {
  pollux::LocalExecutor executor;
  std::printf("waiting for a value from another thread\n");
  int v = executor.block_on(
      tutorial::DelayedValue(7, std::chrono::milliseconds(50), "delayed"));
  std::printf("block_on returned %d after two polls\n", v);
  return 0;
}
