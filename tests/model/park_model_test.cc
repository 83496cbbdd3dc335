// Models of the unpark protocol (DESIGN §10), on the real code:
// - detail::ParkState (executor/internal/park_state.h) driven directly by
//   an owner that parks until it has seen all the work, and wakers that
//   publish work and then unpark;
// - ThreadParker (executor/thread_parker.h): park() racing a remote unpark.
// The same scenarios on the planted copies (tests/model/planted/), whose
// try_park drops the check for a pending NOTIFIED, must deadlock.
#include <optional>
#include <atomic>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "executor/internal/park_state.h"
#include "executor/thread_parker.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "future/internal/thread.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/lossy_park_state.h"
#include "tests/model/planted/lossy_thread_parker.h"

namespace pollux::model {
namespace {

class ParkModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// ---- ParkState, as park_state.h says to use it ----

// The owner sleeps on a token a waker hands over only when unpark()
// returned true (it saw PARKED).
struct Sleeper {
  detail::Mutex mu;
  detail::CondVar cv;
  bool token ABSL_GUARDED_BY(mu) = false;

  void sleep() {
    detail::MutexLock lock(mu);
    while (!token) cv.wait(mu);
    token = false;
  }
  void wake() {
    detail::MutexLock lock(mu);
    token = true;
    cv.notify_one();
  }
};

// `wakers` threads each add one unit of work and unpark; the owner must
// see all of it and never sleep through the last unpark.
template <class State>
void park_state_scenario(int wakers) {
  State state;
  Sleeper sleeper;
  detail::Atomic<int> work{0};
  auto waker = [&] {
    // release: pairs with the owner's acquire loads of `work`.
    work.fetch_add(1, std::memory_order_release);
    if (state.unpark()) sleeper.wake();
  };
  detail::Thread first(waker);
  detail::Thread second([&] {
    if (wakers > 1) waker();
  });
  for (;;) {
    if (work.load(std::memory_order_acquire) == wakers) break;
    if (!state.try_park()) continue;  // an unpark was pending, and is consumed: look again
    // PARKED is published: re-check the work (park_state.h's protocol).
    if (work.load(std::memory_order_seq_cst) == wakers) {
      state.unparked();
      break;
    }
    sleeper.sleep();
    state.unparked();
  }
  first.join();
  second.join();
  MODEL_ASSERT(work.load(std::memory_order_relaxed) == wakers);
}

TEST_F(ParkModelTest, ParkStateNeverLosesAnUnpark) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { park_state_scenario<detail::ParkState>(1); },
                        {.name = "ParkState, one waker"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(ParkModelTest, ParkStateNeverLosesAnUnparkOfTwoWakers) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { park_state_scenario<detail::ParkState>(2); },
                        {.name = "ParkState, two wakers"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(ParkModelTest, PlantedParkStateWithoutTheNotifiedCheckDeadlocks) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { park_state_scenario<planted::LossyParkState>(1); }), ExitsWithFailure(),
              "pollux model checker: deadlock");
}

// ---- ThreadParker: park() racing a remote unpark ----

// `wakers` threads each add one unit of work and unpark; the owner parks
// until it has seen all of it.
template <class Parker>
void parker_scenario(int wakers) {
  Parker parker;
  std::shared_ptr<Unparker> unparker = parker.unparker();
  detail::Atomic<int> work{0};
  auto waker = [&] {
    // release: pairs with the acquire load below.
    work.fetch_add(1, std::memory_order_release);
    unparker->unpark();
  };
  detail::Thread first(waker);
  detail::Thread second([&] {
    if (wakers > 1) waker();
  });
  while (work.load(std::memory_order_acquire) != wakers) parker.park(std::nullopt);
  first.join();
  second.join();
}

TEST_F(ParkModelTest, ThreadParkerWakesForARemoteUnpark) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check([] { parker_scenario<ThreadParker>(1); }, {.name = "ThreadParker, one waker"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(ParkModelTest, ThreadParkerWakesForTwoRemoteUnparks) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check([] { parker_scenario<ThreadParker>(2); }, {.name = "ThreadParker, two wakers"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(ParkModelTest, PlantedThreadParkerOnTheLossyParkStateDeadlocks) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { parker_scenario<planted::LossyThreadParker>(1); }), ExitsWithFailure(),
              "pollux model checker: deadlock.*waiting on condvar#.*never notified");
}

}  // namespace
}  // namespace pollux::model
