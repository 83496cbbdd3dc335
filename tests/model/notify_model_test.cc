// Models of sync::Notify (sync/notify.{h,cc}) on the real code, each with
// three actors, in the spirit of tokio's loom tests of its Notify:
// - a chain of notify_one: the body notifies once, two waiters each wait
//   and then notify once, the body waits last; notify_one races every
//   waiter's first poll (the stored permit vs a wake of a queued waiter);
// - notify_waiters racing two waiters' registration (both futures made
//   before the call, so both must complete or see it), one of which is
//   dropped after its first poll, perhaps while it sits in notify_waiters'
//   batch;
// - a waiter dropped after one poll while a notify_one runs: if it was
//   chosen, its destructor must pass the notification on, to the other
//   waiter or as the stored permit.
// Checked every time: nobody sleeps forever (a lost wake-up is the
// checker's deadlock), the node's links and state are touched only under
// the Notify's lock (RaceCells under --config=model, sync/internal/waiters.h),
// each waker clone is used only while alive and is freed once (Parker's
// wakers), nothing leaks, and no notification is delivered twice (no permit
// is left over at the end: a fresh future's first poll is Pending).
// block_on re-polls a waiting future with the waker it stored, so each model
// also races the lock-free re-poll (Notified::chosen_) against the
// notifiers: a re-poll that returned Pending without reading chosen_
// deadlocks the first one.
// The planted copies (tests/model/planted/buggy_notify.h): the one whose
// destructor swallows a notify_one notification must deadlock the third
// model, and the one whose notify_waiters forgets chosen_, so that its
// waiter's re-poll never looks, the second; the same copy with no bug
// planted passes all three.
#include <utility>

#include "future/internal/thread.h"
#include "sync/notify.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/buggy_notify.h"
#include "tests/model/sync_model.h"

namespace pollux::model {
namespace {

class NotifyModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// No permit is stored: a future made now does not complete at once. It
// queues and its destructor unlinks it.
template <class N>
void assert_no_permit_left(N& notify, Parker& p) {
  auto n = notify.notified();
  MODEL_ASSERT(poll_once(n, p).is_pending());
}

// ---- notify_one racing first polls: a chain of three waits ----

template <class N>
void notify_one_chain() {
  Parker p0, p1, p2;
  N notify;
  auto waiter = [&notify](Parker& p) {
    auto n = notify.notified();
    block_on(n, p);
    notify.notify_one();  // the next link of the chain
  };
  detail::Thread t1([&] { waiter(p1); });
  detail::Thread t2([&] { waiter(p2); });
  notify.notify_one();
  t1.join();
  t2.join();
  auto last = notify.notified();
  block_on(last, p0);
  // Three notifications, never two outstanding (each but the first comes
  // from a completed wait), three waits: nothing is left.
  assert_no_permit_left(notify, p0);
}

TEST_F(NotifyModelTest, NotifyOneRacingFirstPollsIsNeverLost) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(notify_one_chain<sync::Notify>, {.name = "Notify notify_one chain"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

// ---- notify_waiters racing registration, and a drop in its batch ----

template <class N>
void notify_waiters_racing_registration() {
  Parker p0, p1, p2;
  N notify;
  // Made before notify_waiters() is called: it is for both of them.
  auto a = notify.notified();
  auto b = notify.notified();
  detail::Thread t1([&p1, a = std::move(a)]() mutable { block_on(a, p1); });
  detail::Thread t2([&p2, b = std::move(b)]() mutable {
    (void)poll_once(b, p2);  // Ready, or queued: then dropped, maybe from the batch
  });
  notify.notify_waiters();
  t1.join();
  t2.join();
  assert_no_permit_left(notify, p0);  // notify_waiters stores nothing
}

TEST_F(NotifyModelTest, NotifyWaitersRacingRegistrationWakesEveryEarlierFuture) {
  POLLUX_MODEL_ONLY();
  const Stats s = check(notify_waiters_racing_registration<sync::Notify>,
                        {.name = "Notify notify_waiters vs registration + drop"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

// ---- a waiter dropped while a notify_one runs ----

template <class N>
void dropped_waiter_passes_on() {
  Parker p0, p1, p2;
  N notify;
  detail::Thread t1([&] {
    auto n = notify.notified();
    // Consumed at once: give it back ourselves (the model's own pass-on).
    // Pending: dropped now, perhaps chosen already; the destructor must pass
    // the notification on.
    if (poll_once(n, p1).is_ready()) notify.notify_one();
  });
  detail::Thread t2([&] {
    auto n = notify.notified();
    block_on(n, p2);  // must complete: one notification is always for it
  });
  notify.notify_one();
  t1.join();
  t2.join();
  assert_no_permit_left(notify, p0);  // passed on once, not twice
}

TEST_F(NotifyModelTest, ADroppedChosenWaiterPassesTheNotificationOn) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check(dropped_waiter_passes_on<sync::Notify>, {.name = "Notify dropped waiter pass-on"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(NotifyModelTest, PlantedNotifiedThatSwallowsANotificationDeadlocks) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check(dropped_waiter_passes_on<planted::LossyNotify>), ExitsWithFailure(),
              "pollux model checker: deadlock");
}

TEST_F(NotifyModelTest, PlantedRepollThatMissesNotifyWaitersDeadlocks) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check(notify_waiters_racing_registration<planted::RepollNotify>),
              ExitsWithFailure(), "pollux model checker: deadlock");
}

// The planted copy without its bug is the real protocol: every model passes
// on it, so the two tests above fail for the planted line alone.
TEST_F(NotifyModelTest, ThePlantedCopyWithNoBugPassesEveryModel) {
  POLLUX_MODEL_ONLY();
  for (const Stats& s :
       {check(notify_one_chain<planted::FaithfulNotify>, {.name = "faithful notify_one chain"}),
        check(notify_waiters_racing_registration<planted::FaithfulNotify>,
              {.name = "faithful notify_waiters"}),
        check(dropped_waiter_passes_on<planted::FaithfulNotify>,
              {.name = "faithful dropped waiter pass-on"})}) {
    EXPECT_TRUE(s.complete);
    EXPECT_GT(s.executions, 1u);
  }
}

}  // namespace
}  // namespace pollux::model
