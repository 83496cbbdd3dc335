// Tests for sync::Notify (notify.h): the stored permit, notify_waiters only
// for futures created before it, FIFO wake order, passing on a notification
// whose future was dropped, and cross-thread use (TSan in CI).
#include "sync/notify.h"

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/poll_fn.h"
#include "future/task.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"
#include "runtime/runtime.h"
#include "tests/watchdog.h"

namespace pollux::sync {
namespace {

using pollux::testing::Harness;

TEST(NotifyTest, NotifyOneWithNobodyWaitingStoresOnePermit) {
  Notify n;
  Harness h;
  n.notify_one();
  n.notify_one();  // coalesced: still one permit
  Notified a = n.notified();
  EXPECT_TRUE(a.poll(h.cx).is_ready());
  Notified b = n.notified();
  EXPECT_TRUE(b.poll(h.cx).is_pending()) << "only one permit was stored";
  EXPECT_EQ(h.cw.wakes(), 0);
  n.notify_one();
  EXPECT_EQ(h.cw.wakes(), 1);
  EXPECT_TRUE(b.poll(h.cx).is_ready());
}

TEST(NotifyTest, NotifyOneWakesWaitersInTheOrderTheyWaited) {
  Notify n;
  Harness ha, hb, hc;
  Notified a = n.notified(), b = n.notified(), c = n.notified();
  ASSERT_TRUE(b.poll(hb.cx).is_pending());
  ASSERT_TRUE(a.poll(ha.cx).is_pending());
  ASSERT_TRUE(c.poll(hc.cx).is_pending());
  n.notify_one();
  EXPECT_EQ(hb.cw.wakes(), 1);
  EXPECT_EQ(ha.cw.wakes() + hc.cw.wakes(), 0);
  n.notify_one();
  EXPECT_EQ(ha.cw.wakes(), 1);
  EXPECT_TRUE(b.poll(hb.cx).is_ready());
  EXPECT_TRUE(a.poll(ha.cx).is_ready());
  EXPECT_TRUE(c.poll(hc.cx).is_pending());
}

TEST(NotifyTest, NotifyWaitersWakesOnlyFuturesCreatedBeforeItAndStoresNothing) {
  Notify n;
  Harness h1, h2, h3;
  Notified polled = n.notified();
  Notified unpolled = n.notified();  // created before, never polled yet
  ASSERT_TRUE(polled.poll(h1.cx).is_pending());
  n.notify_waiters();
  Notified later = n.notified();
  EXPECT_EQ(h1.cw.wakes(), 1);
  EXPECT_TRUE(polled.poll(h1.cx).is_ready());
  EXPECT_TRUE(unpolled.poll(h2.cx).is_ready()) << "created before notify_waiters";
  EXPECT_TRUE(later.poll(h3.cx).is_pending()) << "created after: waits for the next one";
  n.notify_one();
  EXPECT_TRUE(later.poll(h3.cx).is_ready());
}

TEST(NotifyTest, ADroppedChosenWaiterPassesTheNotificationOn) {
  Notify n;
  Harness ha, hb;
  auto a = std::make_unique<Notified>(n.notified());
  Notified b = n.notified();
  ASSERT_TRUE(a->poll(ha.cx).is_pending());
  ASSERT_TRUE(b.poll(hb.cx).is_pending());
  n.notify_one();  // chooses a
  EXPECT_EQ(ha.cw.wakes(), 1);
  a.reset();  // dropped before it saw the notification
  EXPECT_EQ(hb.cw.wakes(), 1) << "the notification passed to the next waiter";
  EXPECT_TRUE(b.poll(hb.cx).is_ready());
  // And with nobody else waiting it becomes the stored permit.
  auto c = std::make_unique<Notified>(n.notified());
  Harness hc;
  ASSERT_TRUE(c->poll(hc.cx).is_pending());
  n.notify_one();
  c.reset();
  Harness hd;
  Notified d = n.notified();
  EXPECT_TRUE(d.poll(hd.cx).is_ready());
}

TEST(NotifyTest, DroppedWaitersLeaveNoTraceAndReleaseTheirWakers) {
  Notify n;
  Harness h;
  for (int i = 0; i < 100; ++i) {
    Notified w = n.notified();
    ASSERT_TRUE(w.poll(h.cx).is_pending());
  }
  EXPECT_EQ(h.cw.live(), 1) << "every dropped waiter dropped its waker clone";
  n.notify_one();  // nobody waits: a permit
  Notified w = n.notified();
  EXPECT_TRUE(w.poll(h.cx).is_ready());
}

TEST(NotifyTest, NotifyWaitersWakesMoreThanOneBatch) {
  Notify n;
  std::vector<std::unique_ptr<Notified>> ws;
  Harness h;
  for (int i = 0; i < 100; ++i) {
    ws.push_back(std::make_unique<Notified>(n.notified()));
    ASSERT_TRUE(ws.back()->poll(h.cx).is_pending());
  }
  n.notify_waiters();
  EXPECT_EQ(h.cw.wakes(), 100);
  for (auto& w : ws) EXPECT_TRUE(w->poll(h.cx).is_ready());
}

TEST(NotifyTest, MovingAWaitingNotifiedIsACheckedError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Notify n;
        Harness h;
        Notified a = n.notified();
        (void)a.poll(h.cx);
        Notified b(std::move(a));
      },
      "moved after it started waiting");
}

// Two threads, each running its own current-thread runtime, hand a token
// back and forth through two Notify objects (a ping-pong): no wake-up is
// ever lost.
TEST(NotifyTest, PingPongBetweenTwoRuntimesThreads) {
  constexpr int kRounds = 20'000;
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "notify ping-pong");
  Notify ping, pong;
  std::thread other([&] {
    absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt->block_on([&]() -> Task<void> {
      for (int i = 0; i < kRounds; ++i) {
        co_await ping.notified();
        pong.notify_one();
      }
    }());
  });
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().build();
  ASSERT_TRUE(rt.ok()) << rt.status();
  rt->block_on([&]() -> Task<void> {
    for (int i = 0; i < kRounds; ++i) {
      ping.notify_one();
      co_await pong.notified();
    }
  }());
  other.join();
}

// A notifier thread publishes a sequence number and notifies, in lockstep
// with the consumer's acknowledgements; the consumer learns of each number
// only by being notified, and drops a quarter of its Notified futures after
// one poll (sometimes just as they were chosen). A notification lost with a
// dropped waiter would leave both waiting forever (the watchdog fails it).
TEST(NotifyTest, WaitersDroppedWhileAnotherThreadNotifiesLoseNoWakeUp) {
  constexpr int kRounds = 20'000;
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "notify drop race");
  Notify n;
  std::atomic<int> seq{0};
  std::atomic<int> acked{0};
  std::thread notifier([&] {
    for (int i = 1; i <= kRounds; ++i) {
      while (acked.load() < i - 1) std::this_thread::yield();
      seq.store(i);
      n.notify_one();
    }
  });
  LocalExecutor ex;
  int dropped = 0;
  ex.block_on([&]() -> Task<void> {
    int round = 0;
    while (acked.load() < kRounds) {
      Notified w = n.notified();
      if (++round % 4 == 0) {
        bool ready = false;
        co_await poll_fn([&](Context& cx) -> Poll<Unit> {
          ready = w.poll(cx).is_ready();
          return Ready(Unit{});
        });
        if (!ready) {
          ++dropped;  // dropped while queued (or chosen but not yet told)
          continue;
        }
      } else {
        co_await std::move(w);
      }
      acked.store(seq.load());
    }
  }());
  notifier.join();
  EXPECT_GT(dropped, 0);
}

// A waiter polled again and again with the waker it stored (as a select
// re-polls it while another branch runs), while another thread notifies at
// any moment: the lock-free re-poll (it reads no `waker`, which the
// notifier moves out) must see every notification by the time the wake it
// causes has arrived. Under TSan, the re-poll and the notifier must not race.
TEST(NotifyTest, ARepolledWaiterSeesANotifyFromAnotherThread) {
  constexpr int kRounds = 2'000;
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "notify re-poll race");
  for (int round = 0; round < kRounds; ++round) {
    Notify n;
    Harness h;
    Notified w = n.notified();
    ASSERT_TRUE(w.poll(h.cx).is_pending());  // queued, with h's waker stored
    std::atomic<bool> started{false};
    std::thread notifier([&] {
      started.store(true);
      n.notify_one();
    });
    while (!started.load()) std::this_thread::yield();
    // Re-polls race the notify; once its wake has arrived, the next poll
    // must be Ready.
    bool ready = false;
    for (int polls = 0; !ready; ++polls) {
      const bool woken = h.cw.wakes() > 0;
      ready = w.poll(h.cx).is_ready();
      ASSERT_TRUE(ready || !woken) << "woken, yet Pending: the notification was lost";
      ASSERT_LT(polls, 100'000'000);
    }
    notifier.join();
    EXPECT_EQ(h.cw.wakes(), 1);
  }
}

}  // namespace
}  // namespace pollux::sync
