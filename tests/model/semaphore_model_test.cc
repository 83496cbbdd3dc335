// Models of sync::Semaphore (sync/semaphore.{h,cc}) on the real code, each
// with three actors:
// - acquire vs release on the lock-free fast paths: one acquire(2) and two
//   acquire(1) on a semaphore of 2, each holding its permits while it
//   writes the cells they stand for, then releasing them. This is the
//   QUEUED protocol: a release that sees no QUEUED adds lock-free; an
//   acquire that queues sets QUEUED in the same CAS that takes what is
//   free, so a release between its look and its CAS fails the CAS instead
//   of adding permits nobody hands to it;
// - a waiter dropped while releases hand it permits (an acquire(2) polled
//   once, then dropped, perhaps set aside one permit, perhaps granted both):
//   what it was given goes to the next waiter or back to the count;
// - close() racing two waiters (one of them an acquire(2) that may have one
//   permit set aside), between two releases of permits held before.
// Checked every time: nobody waits forever (the checker's deadlock), the
// permits exclude each other and order their holders (a RaceCell per
// permit: two holders at once, or a hand-off without happens-before, is a
// reported race), the node's links and state only under the lock, wakers
// used while alive and freed once, nothing leaks; at the end the count is
// back where it started (available_permits()) and no waiter is left (the
// semaphore's destructor checks its list; try_acquire of every permit
// succeeds, so QUEUED is clear and nothing is set aside).
// The planted copy whose release adds lock-free without looking at QUEUED
// (tests/model/planted/lossy_semaphore.h) must deadlock the first model.
#include <cstddef>
#include <utility>

#include "absl/status/statusor.h"
#include "future/internal/race_cell.h"
#include "future/internal/thread.h"
#include "sync/semaphore.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/lossy_semaphore.h"
#include "tests/model/sync_model.h"

namespace pollux::model {
namespace {

class SemaphoreModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Every permit is free and nobody is queued: all of them can be taken now
// (try_acquire fails while QUEUED is set or when permits are missing).
template <class S>
void assert_all_permits_back(S& sem, size_t permits) {
  MODEL_ASSERT(sem.available_permits() == permits);
  auto all = sem.try_acquire(permits);
  MODEL_ASSERT(all.ok());
}

// ---- acquire vs release on the fast paths ----

template <class S>
void fast_paths() {
  Parker p0, p1, p2;
  S sem(2);
  // What the two permits stand for; only their holders write them.
  detail::RaceCell<int> first{0}, second{0};
  detail::Thread both([&] {
    auto a = sem.acquire(2);
    auto permit = block_on(a, p1);
    MODEL_ASSERT(permit.ok());
    ++first.get_mut();
    ++second.get_mut();
  });  // released as `permit` goes
  detail::Thread one([&] {
    auto a = sem.acquire(1);
    auto permit = block_on(a, p2);
    MODEL_ASSERT(permit.ok());
    ++first.get_mut();
  });
  {
    auto a = sem.acquire(1);
    auto permit = block_on(a, p0);
    MODEL_ASSERT(permit.ok());
    ++second.get_mut();
  }
  both.join();
  one.join();
  MODEL_ASSERT(first.get() == 2 && second.get() == 2);
  assert_all_permits_back(sem, 2);
}

TEST_F(SemaphoreModelTest, AcquireAndReleaseOnTheFastPathsHandOverEveryPermit) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(fast_paths<sync::Semaphore>, {.name = "Semaphore fast paths"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(SemaphoreModelTest, PlantedReleaseThatIgnoresQueuedDeadlocks) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check(fast_paths<planted::LossySemaphore>), ExitsWithFailure(),
              "pollux model checker: deadlock");
}

// ---- a waiter dropped while releases hand it permits ----

void dropped_waiter_gives_back() {
  Parker p1, p2;
  sync::Semaphore sem(2);
  MODEL_ASSERT(sem.try_take(2));  // both held by the body, released below one by one
  detail::Thread dropped([&] {
    auto a = sem.acquire(2);
    // Ready: the permit goes back as the result is dropped. Pending: the
    // future is dropped queued, with 0, 1 or 2 permits set aside or granted.
    (void)poll_once(a, p1);
  });
  detail::Thread waiter([&] {
    auto a = sem.acquire(1);
    auto permit = block_on(a, p2);  // the permits come back: it must get one
    MODEL_ASSERT(permit.ok());
  });
  sem.release(1);
  sem.release(1);
  dropped.join();
  waiter.join();
  assert_all_permits_back(sem, 2);
}

TEST_F(SemaphoreModelTest, ADroppedWaiterGivesItsPermitsToTheNextOrBack) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(dropped_waiter_gives_back, {.name = "Semaphore dropped waiter"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

// ---- close racing waiters ----

void close_racing_waiters() {
  Parker p1, p2;
  sync::Semaphore sem(2);
  MODEL_ASSERT(sem.try_take(2));
  // Each gets its permits (and gives them back) or the closed status.
  auto waiter = [&sem](size_t n, Parker& p) {
    auto a = sem.acquire(n);
    auto permit = block_on(a, p);
    MODEL_ASSERT(permit.ok() || sync::is_closed_status(permit.status()));
  };
  detail::Thread one([&] { waiter(1, p1); });
  detail::Thread both([&] { waiter(2, p2); });
  sem.release(1);  // may be set aside for `both`, then given back by close()
  sem.close();
  sem.release(1);  // permits held across close() stay valid
  one.join();
  both.join();
  MODEL_ASSERT(sem.is_closed());
  MODEL_ASSERT(sem.available_permits() == 2);
  auto after = sem.try_acquire(1);
  MODEL_ASSERT(!after.ok() && sync::is_closed_status(after.status()));
}

TEST_F(SemaphoreModelTest, CloseRacingWaitersFailsOrFillsEachAndKeepsEveryPermit) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(close_racing_waiters, {.name = "Semaphore close vs waiters"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

}  // namespace
}  // namespace pollux::model
