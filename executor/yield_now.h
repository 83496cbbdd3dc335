// yield_now(): gives the executor a chance to run other tasks.
//
// The first poll wakes the task and returns Pending, which puts it at the
// back of the run queue; the second poll is Ready. No syscall, no allocation.
//
// Cancellation: dropping it loses nothing.
#ifndef POLLUX_EXECUTOR_YIELD_NOW_H_
#define POLLUX_EXECUTOR_YIELD_NOW_H_

#include "future/future.h"

namespace pollux {

// The future yield_now() returns: Pending once (waking itself), then Ready.
class [[nodiscard]] YieldNow {
 public:
  using Output = void;
  Poll<void> poll(Context& cx) {
    if (yielded_) return Ready{};
    yielded_ = true;
    cx.waker().wake_by_ref();
    return Pending{};
  }

 private:
  bool yielded_ = false;
};

[[nodiscard]] inline YieldNow yield_now() { return {}; }

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_YIELD_NOW_H_
