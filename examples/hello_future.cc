// hello_future: a hand-written future, woken from another thread.
//
// Countdown counts from N to 0. Each poll that finds no new tick stores the
// task's waker and returns Pending; a plain std::thread plays the role of a
// timer and wakes the stored waker every 200 ms. block_on drives the future
// and sleeps in between (no busy loop): that is the whole poll contract.
//
//   ./bazelw run //examples:hello_future
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "executor/local_executor.h"
#include "future/future.h"

namespace {

// What the timer thread and the future share: ticks so far and the waker of
// the last poll that found nothing to do.
struct TickSource {
  std::mutex mu;
  int ticks = 0;
  bool stop = false;
  pollux::Waker waker;
};

class Countdown {
 public:
  using Output = int;  // the number of polls it took

  Countdown(int from, TickSource& src) : remaining_(from), src_(src) {}

  pollux::Poll<int> poll(pollux::Context& cx) {
    ++polls_;
    std::lock_guard lock(src_.mu);
    while (seen_ < src_.ticks && remaining_ > 0) {
      ++seen_;
      std::printf("  countdown: %d\n", --remaining_);
    }
    if (remaining_ == 0) return pollux::Ready(polls_);
    // Not done: make sure the timer thread can wake us, then yield.
    if (!src_.waker.will_wake(cx.waker())) src_.waker = cx.waker();
    return pollux::Pending{};
  }

 private:
  int remaining_;
  int seen_ = 0;
  int polls_ = 0;
  TickSource& src_;
};

}  // namespace

int main() {
  TickSource src;
  std::thread timer([&src] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      pollux::Waker w;
      {
        std::lock_guard lock(src.mu);
        if (src.stop) return;
        ++src.ticks;
        w = src.waker;  // wake outside the lock
      }
      w.wake_by_ref();
    }
  });

  std::printf("hello_future: counting down from 5, one step per wake-up\n");
  pollux::LocalExecutor executor;
  int polls = executor.block_on(Countdown(5, src));
  std::printf("done after %d polls (one per wake-up, plus the first)\n", polls);

  {
    std::lock_guard lock(src.mu);
    src.stop = true;
  }
  timer.join();
  return 0;
}
