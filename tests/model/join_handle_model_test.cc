// Model of the JoinHandle waker hand-off across threads, on the real
// executor (public APIs: LocalExecutor, spawn_local, JoinHandle, Waker):
// a task completes on its executor's thread while another thread, in
// block_on on its own LocalExecutor, polls the task's JoinHandle with one
// waker and then re-registers a different one (join_poll_ready's
// unset_join_waker / set_join_waker path, racing transition_to_complete).
// The result must arrive (a lost join wake-up is a deadlock: the joiner
// parks forever), with no race on the task's stage or join waker
// RaceCells, every future and result destroyed once, every cell freed.
#include <optional>
#include <utility>

#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "future/context.h"
#include "future/internal/atomic.h"
#include "future/internal/thread.h"
#include "future/poll.h"
#include "future/testing/counted.h"
#include "future/waker.h"
#include "tests/model/model_test.h"

namespace pollux::model {
namespace {

using testing::Counted;

// A waker that is not the one it forwards to (will_wake is false against
// it), so that polling with it and then with the target re-registers.
// Reference-counted: the task's trailer may hold a clone after the poller
// moved on, and wake it from the task's thread.
class RelayWaker {
 public:
  static Waker make(const Waker& target) {
    return Waker::from_raw(new RelayWaker(target), &kVTable);
  }

 private:
  explicit RelayWaker(const Waker& target) : target_(target) {}

  static RelayWaker* self(void* p) { return static_cast<RelayWaker*>(p); }
  static Waker clone(void* p) noexcept {
    // relaxed: a reference is only made from a reference.
    self(p)->refs_.fetch_add(1, std::memory_order_relaxed);
    return Waker::from_raw(p, &kVTable);
  }
  static void wake(void* p) noexcept {
    wake_by_ref(p);
    drop(p);
  }
  static void wake_by_ref(void* p) noexcept { self(p)->target_.wake_by_ref(); }
  static void drop(void* p) noexcept {
    // acq_rel: the last holder's delete comes after every holder's use.
    if (self(p)->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete self(p);
  }
  static constexpr WakerVTable kVTable = {&clone, &wake, &wake_by_ref, &drop};

  detail::Atomic<int> refs_{1};
  Waker target_;
};

// Returns Pending once, waking itself (it is queued again at once, on its
// own thread), then Ready(Counted(7)).
class YieldOnce {
 public:
  using Output = Counted;
  Poll<Counted> poll(Context& cx) {
    if (!yielded_) {
      yielded_ = true;
      cx.waker().wake_by_ref();
      return Pending{};
    }
    return Ready(Counted(7));
  }

 private:
  bool yielded_ = false;
  Counted token_;
};

// The joiner's block_on root: polls the JoinHandle with a relay waker
// first, then (polled again at once) with its own waker.
class ReRegisteringJoin {
 public:
  using Output = JoinResult<Counted>;
  explicit ReRegisteringJoin(JoinHandle<Counted> h) : handle_(std::move(h)) {}

  Poll<Output> poll(Context& cx) {
    if (polls_++ > 0) return handle_.poll(cx);
    Waker relay = RelayWaker::make(cx.waker());
    Context relayed(relay, cx.budget());
    Poll<Output> p = handle_.poll(relayed);
    if (p.is_ready()) return p;
    cx.waker().wake_by_ref();
    return Pending{};
  }

 private:
  JoinHandle<Counted> handle_;
  int polls_ = 0;
};

void joined_from_another_executor() {
  Counted::reset();
  const int64_t cells = live_task_cells();
  std::optional<detail::Thread> joiner;
  {
    LocalExecutor ex;
    JoinHandle<Counted> handle = ex.spawn_local(YieldOnce());
    joiner.emplace([h = std::move(handle)]() mutable {
      LocalExecutor own;
      JoinResult<Counted> r = own.block_on(ReRegisteringJoin(std::move(h)));
      MODEL_ASSERT(r.ok() && r.value().value == 7);
    });
    ex.run_until_idle();  // the task completes here, on this thread
  }  // and its executor goes, while the joiner may still hold the handle
  joiner->join();
  MODEL_ASSERT(Counted::live() == 0);
  MODEL_ASSERT(live_task_cells() == cells);
}

TEST(JoinHandleModelTest, TheResultReachesAJoinerThatReRegistersItsWaker) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(joined_from_another_executor, {.name = "JoinHandle waker hand-off"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

}  // namespace
}  // namespace pollux::model
