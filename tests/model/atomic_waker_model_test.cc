// A model of sync::AtomicWaker (sync/atomic_waker.{h,cc}) on the real code,
// used as its header says (check, register, check again; the producer makes
// the condition true, then wakes): a future polled first with one waker and
// then with others while two producers each add one unit of work and wake.
// It must see both units (a lost wake is the checker's deadlock); the
// slot's waker is never touched by a take() while a registration replaces
// it (a RaceCell in AtomicWaker); every waker clone is freed once.
//
// What it found: register_waker handed the slot back with a store after a
// take() had come in during the registration; a second take() in that
// window woke nobody, and the store did not acquire its fetch_or, so the
// re-check could miss the second producer's unit for good. It is an
// exchange now. And a registration that meets a take() in progress wakes
// its task to be polled again: a spin across polls, which yields under the
// checker (detail::spin_loop_hint), or the model would never let the taker
// finish.
//
// The planted AtomicWaker that forgets the wake which raced its
// registration (tests/model/planted/racy_atomic_waker.h) must deadlock.
#include "future/context.h"
#include "future/internal/atomic.h"
#include "future/internal/thread.h"
#include "future/poll.h"
#include "future/poll_fn.h"
#include "sync/atomic_waker.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/racy_atomic_waker.h"
#include "tests/model/sync_model.h"

namespace pollux::model {
namespace {

class AtomicWakerModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// ---- AtomicWaker: register racing wake ----

template <class W>
void register_racing_wakes() {
  Parker first, p0;  // `first`: the waker of the first poll, which nobody parks on
  detail::Atomic<int> units{0};
  W slot;
  auto producer = [&] {
    // release: pairs with the future's acquire loads (the unit is visible
    // to whoever sees the count).
    units.fetch_add(1, std::memory_order_release);
    slot.wake();
  };
  detail::Thread a(producer);
  detail::Thread b(producer);
  auto fut = poll_fn([&](Context& cx) -> Poll<void> {
    // acquire: pairs with the producers' release.
    if (units.load(std::memory_order_acquire) == 2) return Ready{};
    slot.register_waker(cx.waker());
    // The re-check of the protocol: a wake between the first check and the
    // registration woke the old waker (or none).
    if (units.load(std::memory_order_acquire) == 2) return Ready{};
    return Pending{};
  });
  if (poll_once(fut, first).is_pending()) block_on(fut, p0);  // a new waker each poll
  a.join();
  b.join();
}

TEST_F(AtomicWakerModelTest, RegisterRacingWakesIsNeverLost) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check(register_racing_wakes<sync::AtomicWaker>, {.name = "AtomicWaker register vs wakes"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(AtomicWakerModelTest, PlantedTakeThatIgnoresARegistrationRaces) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check(register_racing_wakes<planted::RacyAtomicWaker>), ExitsWithFailure(),
              "pollux model checker: data race");
}

}  // namespace
}  // namespace pollux::model
