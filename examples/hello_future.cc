// hello_future: a hand-written future, woken from another thread.
//
// Countdown (examples/countdown.h) counts from 5 to 0. Each poll that finds
// no new tick stores the task's waker and returns Pending; a plain
// std::thread plays the role of a timer and wakes the stored waker every
// 200 ms. block_on drives the future and sleeps in between (no busy loop).
//
//   ./bazelw run //examples:hello_future
#include <chrono>
#include <cstdio>

#include "examples/countdown.h"
#include "executor/local_executor.h"

int main() {
  examples::TickSource ticks(std::chrono::milliseconds(200));
  std::printf("hello_future: counting down from 5, one step per wake-up\n");
  pollux::LocalExecutor executor;
  int polls = executor.block_on(examples::Countdown("countdown", 5, ticks));
  std::printf("done after %d polls (one per wake-up, plus the first)\n", polls);
  return 0;
}
