// Models of a task's life on the real LocalExecutor (executor/local_executor.h),
// through public APIs only (spawn_local, block_on, JoinHandle, Waker), so
// they survive changes to the executor's insides:
// - a task that parks its waker and returns Pending is woken from another
//   thread; the owner, in block_on on the task's JoinHandle, must poll it
//   again and get the result (a lost wake-up shows as a deadlock: the
//   owner parks forever);
// - the same while a third thread aborts the task, or only drops its
//   JoinHandle, and the owner runs until the task's future is gone.
// Checked each time: every future and result is destroyed exactly once
// (Counted), every task cell is freed (live_task_cells(), and the
// checker's leak check), nothing is freed twice, no race on the task's
// stage or join waker (RaceCells in the real task cell).
#include <utility>

#include "absl/base/thread_annotations.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "future/context.h"
#include "future/internal/mutex.h"
#include "future/internal/thread.h"
#include "future/poll.h"
#include "future/poll_fn.h"
#include "future/testing/counted.h"
#include "future/waker.h"
#include "tests/model/model_test.h"

namespace pollux::model {
namespace {

using detail::MutexLock;
using testing::Counted;

// Where the task leaves its waker for the waker thread.
class WakerSlot {
 public:
  void store(const Waker& w) {
    MutexLock lock(mu_);
    waker_ = w;
    stored_ = true;
    cv_.notify_one();
  }
  // The future is gone (completed or dropped): nothing more will be stored.
  void close() {
    MutexLock lock(mu_);
    closed_ = true;
    cv_.notify_one();
  }
  // The stored waker, or an empty one when the future went away first.
  Waker take() {
    MutexLock lock(mu_);
    while (!stored_ && !closed_) cv_.wait(mu_);
    return std::move(waker_);
  }

 private:
  detail::Mutex mu_;
  detail::CondVar cv_;
  Waker waker_ ABSL_GUARDED_BY(mu_);
  bool stored_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// Set when the task's future is destroyed (on the owner thread, where
// futures are always destroyed), waking the owner's block_on root.
struct FutureGone {
  bool gone = false;
  Waker root;

  void set() {
    gone = true;
    root.wake_by_ref();
  }
  // block_on(gone.wait()) returns once the future is gone.
  auto wait() {
    return poll_fn([this](Context& cx) -> Poll<void> {
      if (gone) return Ready{};
      if (!root.will_wake(cx.waker())) root = cx.waker();
      return Pending{};
    });
  }
};

// Stores its waker and returns Pending at its first poll; Ready(Counted(7))
// at the next. Holds a Counted of its own, so a future destroyed twice or
// never shows in Counted::live().
class PendingOnce {
 public:
  using Output = Counted;

  PendingOnce(WakerSlot* slot, FutureGone* gone) : slot_(slot), gone_(gone) {}
  PendingOnce(PendingOnce&& o) noexcept
      : slot_(std::exchange(o.slot_, nullptr)),
        gone_(std::exchange(o.gone_, nullptr)),
        polled_(o.polled_),
        token_(std::move(o.token_)) {}
  PendingOnce& operator=(PendingOnce&&) = delete;
  ~PendingOnce() {
    if (slot_ != nullptr) slot_->close();
    if (gone_ != nullptr) gone_->set();
  }

  Poll<Counted> poll(Context& cx) {
    if (!polled_) {
      polled_ = true;
      slot_->store(cx.waker());
      return Pending{};
    }
    return Ready(Counted(7));
  }

 private:
  WakerSlot* slot_;
  FutureGone* gone_;  // may be null
  bool polled_ = false;
  Counted token_;
};

// Whatever each execution must leave as it found it.
class NothingLeft {
 public:
  NothingLeft() : cells_(live_task_cells()) { Counted::reset(); }
  ~NothingLeft() {
    MODEL_ASSERT(Counted::live() == 0);           // every future and result destroyed once
    MODEL_ASSERT(live_task_cells() == cells_);  // every task cell freed
  }

 private:
  int64_t cells_;
};

void woken_from_another_thread() {
  NothingLeft check;
  WakerSlot slot;
  LocalExecutor ex;
  JoinHandle<Counted> handle = ex.spawn_local(PendingOnce(&slot, nullptr));
  detail::Thread waker([&slot] { slot.take().wake(); });
  JoinResult<Counted> r = ex.block_on(std::move(handle));
  MODEL_ASSERT(r.ok() && r.value().value == 7);
  waker.join();
}

TEST(LocalExecutorModelTest, ATaskWokenFromAnotherThreadCompletes) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(woken_from_another_thread, {.name = "LocalExecutor remote wake"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

enum class HandleAction { kAbort, kDrop };

void woken_while_the_handle_acts(HandleAction action) {
  NothingLeft check;
  WakerSlot slot;
  FutureGone gone;
  LocalExecutor ex;
  JoinHandle<Counted> handle = ex.spawn_local(PendingOnce(&slot, &gone));
  detail::Thread waker([&slot] { slot.take().wake(); });
  detail::Thread joiner([h = std::move(handle), action]() mutable {
    if (action == HandleAction::kAbort) h.abort();
    std::move(h).detach();  // drop it: the task runs on unobserved (or cancelled)
  });
  ex.block_on(gone.wait());
  waker.join();
  joiner.join();
}

TEST(LocalExecutorModelTest, AbortFromAnotherThreadRacingAWake) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { woken_while_the_handle_acts(HandleAction::kAbort); },
                        {.name = "LocalExecutor remote wake + abort"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST(LocalExecutorModelTest, JoinHandleDroppedOnAnotherThreadRacingAWake) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { woken_while_the_handle_acts(HandleAction::kDrop); },
                        {.name = "LocalExecutor remote wake + handle drop"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

}  // namespace
}  // namespace pollux::model
