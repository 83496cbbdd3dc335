// Tutorial step 1 (docs/tutorial.md): the poll contract.
//
// A future is any type with `using Output = T;` and `Poll<T> poll(Context&)`.
// Returning Pending is a promise: the future has arranged for cx.waker() to
// be woken when polling again can make progress. This one keeps the promise
// at once (wake_by_ref before Pending), so the executor polls it again.
// Prints exactly step1_poll.out.
//
//   ./bazelw run //examples/tutorial:step1_poll
#include <cstdio>

#include "executor/local_executor.h"
#include "future/future.h"

namespace {

// Ready(42) on its third poll; Pending (with a wake) on the two before.
class ThirdTimeLucky {
 public:
  using Output = int;

  pollux::Poll<int> poll(pollux::Context& cx) {
    ++polls_;
    if (polls_ < 3) {
      std::printf("poll %d: Pending (woke itself first)\n", polls_);
      // Without this wake, nobody would ever poll us again: block_on would
      // park forever. Pending is only honest with a wake arranged.
      cx.waker().wake_by_ref();
      return pollux::Pending{};
    }
    std::printf("poll %d: Ready(42)\n", polls_);
    return pollux::Ready(42);
  }

 private:
  int polls_ = 0;
};

}  // namespace

int main() {
  pollux::LocalExecutor executor;
  int v = executor.block_on(ThirdTimeLucky());
  std::printf("block_on returned %d\n", v);
  return 0;
}
