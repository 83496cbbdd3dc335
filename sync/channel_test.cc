// Tests for the channels: oneshot, mpsc (bounded and unbounded), broadcast
// and watch. Every value is a Counted, so each test also proves that nothing
// leaked and nothing was destroyed twice (closing and dropping at every
// point either hands a value back or destroys it exactly once).
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "executor/local_executor.h"
#include "future/poll_fn.h"
#include "future/select.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"
#include "sync/broadcast.h"
#include "sync/mpsc.h"
#include "sync/oneshot.h"
#include "sync/watch.h"
#include "tests/watchdog.h"

namespace pollux::sync {
namespace {

using pollux::testing::Counted;
using pollux::testing::Harness;

#if defined(POLLUX_SANITIZER)
constexpr int kScale = 10;  // sanitizers are ~10x slower: smaller stress runs
#else
constexpr int kScale = 1;
#endif

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override { Counted::reset(); }
  void TearDown() override {
    EXPECT_EQ(Counted::live(), 0) << "a value leaked or was destroyed twice";
  }
};

// ---- oneshot ----

TEST_F(ChannelTest, OneshotSendThenReceive) {
  auto [tx, rx] = oneshot::channel<Counted>();
  EXPECT_FALSE(std::move(tx).send(Counted(7)).has_value());
  Harness h;
  Poll<std::optional<Counted>> p = rx.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::move(p).value()->value, 7);
}

TEST_F(ChannelTest, OneshotReceiverWokenBySendFromAnotherThread) {
  auto [tx, rx] = oneshot::channel<Counted>();
  Harness h;
  ASSERT_TRUE(rx.poll(h.cx).is_pending());
  std::thread([tx = std::move(tx)]() mutable { (void)std::move(tx).send(Counted(3)); }).join();
  EXPECT_EQ(h.cw.wakes(), 1);
  auto p = rx.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::move(p).value()->value, 3);
}

TEST_F(ChannelTest, OneshotSenderDroppedUnsentEndsTheReceiverWithNothing) {
  auto [tx, rx] = oneshot::channel<Counted>();
  Harness h;
  ASSERT_TRUE(rx.poll(h.cx).is_pending());
  { auto gone = std::move(tx); }
  EXPECT_EQ(h.cw.wakes(), 1);
  auto p = rx.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_FALSE(std::move(p).value().has_value());
}

TEST_F(ChannelTest, OneshotSendToADroppedReceiverHandsTheValueBack) {
  auto [tx, rx] = oneshot::channel<Counted>();
  { auto gone = std::move(rx); }
  EXPECT_TRUE(tx.is_closed());
  std::optional<Counted> back = std::move(tx).send(Counted(9));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->value, 9);
}

TEST_F(ChannelTest, OneshotValueSentThenReceiverDroppedIsDestroyedOnce) {
  auto [tx, rx] = oneshot::channel<Counted>();
  EXPECT_FALSE(std::move(tx).send(Counted(1)).has_value());
  EXPECT_EQ(Counted::live(), 1);
  { auto gone = std::move(rx); }
  EXPECT_EQ(Counted::live(), 0);
}

TEST_F(ChannelTest, OneshotCloseRefusesLaterSendsButKeepsAnEarlierValue) {
  auto [tx, rx] = oneshot::channel<Counted>();
  rx.close();
  std::optional<Counted> back = std::move(tx).send(Counted(2));
  EXPECT_TRUE(back.has_value());
  EXPECT_FALSE(rx.try_recv().has_value());

  auto [tx2, rx2] = oneshot::channel<Counted>();
  EXPECT_FALSE(std::move(tx2).send(Counted(4)).has_value());
  rx2.close();
  std::optional<Counted> kept = rx2.try_recv();
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(kept->value, 4);
}

TEST_F(ChannelTest, OneshotSenderClosedCompletesWhenTheReceiverGoes) {
  auto [tx, rx] = oneshot::channel<Counted>();
  Harness h;
  auto closed = tx.closed();
  ASSERT_TRUE(closed.poll(h.cx).is_pending());
  { auto gone = std::move(rx); }
  EXPECT_EQ(h.cw.wakes(), 1);
  EXPECT_TRUE(closed.poll(h.cx).is_ready());
}

// A send racing the receiver's drop, many times, on two threads: the value
// is either handed back or destroyed by the receiver side, exactly once.
TEST_F(ChannelTest, OneshotSendRacingTheReceiversDropLosesNothingTwice) {
  pollux::testing::Watchdog dog(std::chrono::seconds(60), "oneshot race");
  int handed_back = 0;
  for (int i = 0; i < 20'000 / kScale; ++i) {
    auto [tx, rx] = oneshot::channel<Counted>();
    std::atomic<bool> go{false};
    std::thread dropper([&go, rx = std::move(rx)]() mutable {
      while (!go.load()) {
      }
      { auto gone = std::move(rx); }
    });
    go.store(true);
    if (std::move(tx).send(Counted(i)).has_value()) ++handed_back;
    dropper.join();
    ASSERT_EQ(Counted::live(), 0) << "iteration " << i;
  }
  std::fprintf(stderr, "oneshot race: %d of %d sends handed back\n", handed_back, 20'000 / kScale);
}

// ---- mpsc ----

TEST_F(ChannelTest, MpscBoundedDeliversInOrderAndWaitsWhenFull) {
  auto [tx, rx] = mpsc::channel<Counted>(2);
  Harness hs, hr;
  auto a = tx.send(Counted(1));
  auto b = tx.send(Counted(2));
  auto c = tx.send(Counted(3));
  EXPECT_TRUE(a.poll(hs.cx).is_ready());
  EXPECT_TRUE(b.poll(hs.cx).is_ready());
  EXPECT_TRUE(c.poll(hs.cx).is_pending()) << "capacity 2: the third waits";
  auto r = rx.recv();
  auto p = r.poll(hr.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::move(p).value()->value, 1);
  EXPECT_EQ(hs.cw.wakes(), 1) << "the receive made room: the sender is woken";
  EXPECT_TRUE(c.poll(hs.cx).is_ready());
  for (int want : {2, 3}) {
    auto r2 = rx.recv();
    auto p2 = r2.poll(hr.cx);
    ASSERT_TRUE(p2.is_ready());
    EXPECT_EQ(std::move(p2).value()->value, want);
  }
}

TEST_F(ChannelTest, MpscReserveKeepsRoomAndTrySendSaysFull) {
  auto [tx, rx] = mpsc::channel<Counted>(1);
  Harness h;
  auto res = tx.reserve();
  auto p = res.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  std::optional<mpsc::Permit<Counted>> permit = std::move(p).value();
  ASSERT_TRUE(permit.has_value());
  std::optional<mpsc::TrySendError<Counted>> full = tx.try_send(Counted(5));
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->reason, mpsc::TrySendError<Counted>::Reason::kFull);
  EXPECT_EQ(full->value.value, 5);
  std::move(*permit).send(Counted(6));
  mpsc::TryRecv<Counted> got = rx.try_recv();
  ASSERT_TRUE(got.value.has_value());
  EXPECT_EQ(got.value->value, 6);
}

TEST_F(ChannelTest, MpscAllSendersDroppedEndsTheStreamAfterTheQueuedMessages) {
  auto [tx, rx] = mpsc::unbounded_channel<Counted>();
  {
    mpsc::UnboundedSender<Counted> tx2 = tx;
    EXPECT_FALSE(tx2.send(Counted(1)).has_value());
  }
  EXPECT_FALSE(tx.send(Counted(2)).has_value());
  { auto gone = std::move(tx); }
  Harness h;
  for (int want : {1, 2}) {
    auto r = rx.recv();
    auto p = r.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_EQ(std::move(p).value()->value, want);
  }
  auto end = rx.recv();
  auto p = end.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_FALSE(std::move(p).value().has_value()) << "end of stream";
  EXPECT_TRUE(rx.try_recv().disconnected);
}

TEST_F(ChannelTest, MpscSendToAClosedChannelHandsTheValueBack) {
  auto [tx, rx] = mpsc::channel<Counted>(4);
  Harness h;
  EXPECT_TRUE(tx.send(Counted(1)).poll(h.cx).is_ready());
  rx.close();
  auto s = tx.send(Counted(2));
  auto p = s.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  std::optional<Counted> back = std::move(p).value();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->value, 2);
  // What was queued before the close can still be received.
  mpsc::TryRecv<Counted> got = rx.try_recv();
  ASSERT_TRUE(got.value.has_value());
  EXPECT_EQ(got.value->value, 1);
}

TEST_F(ChannelTest, MpscReceiverDroppedWakesWaitingSendersWithTheirValues) {
  auto [tx, rx] = mpsc::channel<Counted>(1);
  Harness h;
  EXPECT_TRUE(tx.send(Counted(1)).poll(h.cx).is_ready());
  auto waiting = tx.send(Counted(2));
  ASSERT_TRUE(waiting.poll(h.cx).is_pending());
  { auto gone = std::move(rx); }  // the queued Counted(1) is destroyed with the channel
  EXPECT_EQ(h.cw.wakes(), 1);
  auto p = waiting.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::move(p).value()->value, 2);
}

TEST_F(ChannelTest, MpscDroppedRecvLosesNoMessageAndADroppedSendLosesOnlyItsOwn) {
  auto [tx, rx] = mpsc::channel<Counted>(1);
  Harness h;
  {
    auto r = rx.recv();
    ASSERT_TRUE(r.poll(h.cx).is_pending());
  }  // dropped while waiting
  EXPECT_TRUE(tx.send(Counted(1)).poll(h.cx).is_ready());
  {
    auto blocked = tx.send(Counted(2));
    ASSERT_TRUE(blocked.poll(h.cx).is_pending());
  }  // dropped: Counted(2) is destroyed with it, its place given up
  mpsc::TryRecv<Counted> got = rx.try_recv();
  ASSERT_TRUE(got.value.has_value());
  EXPECT_EQ(got.value->value, 1);
  EXPECT_FALSE(rx.try_recv().value.has_value());
}

// DESIGN/issue: 4 producer threads x 250,000 messages into one channel, all
// received in per-producer order (TSan in CI, at a tenth of the size).
TEST_F(ChannelTest, MpscFourProducerThreadsDeliverEveryMessageInPerProducerOrder) {
  constexpr int kProducers = 4;
  constexpr int per = 250'000 / kScale;
  pollux::testing::Watchdog dog(std::chrono::seconds(120), "mpsc producers");
  auto [tx0, rx0] = mpsc::channel<std::pair<int, int>>(256);
  mpsc::Sender<std::pair<int, int>> tx = std::move(tx0);
  mpsc::Receiver<std::pair<int, int>> rx = std::move(rx0);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([p, tx = tx]() mutable {
      LocalExecutor ex;
      ex.block_on([&]() -> Task<void> {
        for (int i = 0; i < per; ++i) {
          std::optional<std::pair<int, int>> back = co_await tx.send({p, i});
          EXPECT_FALSE(back.has_value());
        }
      }());
    });
  }
  { auto gone = std::move(tx); }
  std::vector<int> next(kProducers, 0);
  LocalExecutor ex;
  const int total = ex.block_on([&]() -> Task<int> {
    int n = 0;
    while (std::optional<std::pair<int, int>> m = co_await rx.recv()) {
      EXPECT_EQ(m->second, next[m->first]) << "producer " << m->first << " out of order";
      next[m->first] = m->second + 1;
      ++n;
    }
    co_return n;
  }());
  for (auto& t : producers) t.join();
  EXPECT_EQ(total, kProducers * per);
}

// Random sends, receives, closes and drops with fixed seeds: every value is
// received, handed back, or destroyed exactly once (Counted in TearDown).
TEST_F(ChannelTest, MpscRandomDropsAndClosesLoseNothingTwice) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
   {
    std::mt19937 rng(seed);
    auto [tx, rx] = mpsc::channel<Counted>(3);
    std::optional<mpsc::Receiver<Counted>> rxo(std::move(rx));
    std::vector<std::unique_ptr<mpsc::Sender<Counted>::Send>> sends;
    Harness h;
    int received = 0, returned = 0;
    for (int step = 0; step < 2'000; ++step) {
      switch (rng() % 6) {
        case 0:
        case 1: {
          auto s = std::make_unique<mpsc::Sender<Counted>::Send>(tx.send(Counted(step)));
          auto p = s->poll(h.cx);
          if (p.is_ready()) {
            if (std::move(p).value()) ++returned;
          } else {
            sends.push_back(std::move(s));
          }
          break;
        }
        case 2:
          if (!sends.empty()) sends.erase(sends.begin() + rng() % sends.size());
          break;
        case 3:
          if (rxo) {
            if (rxo->try_recv().value) ++received;
          }
          break;
        case 4:
          for (size_t i = 0; i < sends.size(); ++i) {
            auto p = sends[i]->poll(h.cx);
            if (p.is_ready()) {
              if (std::move(p).value()) ++returned;
              sends.erase(sends.begin() + i);
              break;
            }
          }
          break;
        case 5:
          if (rxo && rng() % 50 == 0) rxo.reset();  // the receiver goes
          break;
      }
    }
    sends.clear();
    rxo.reset();
    (void)received;
    (void)returned;
   }  // the last sender goes: the channel and what it still queued with it
    EXPECT_EQ(Counted::live(), 0) << "seed " << seed;
  }
}

// ---- broadcast ----

TEST_F(ChannelTest, BroadcastEveryReceiverGetsEveryValue) {
  auto [tx, rx1] = broadcast::channel<Counted>(4);
  broadcast::Receiver<Counted> rx2 = tx.subscribe();
  EXPECT_EQ(tx.send(Counted(1)), 2u);
  EXPECT_EQ(tx.send(Counted(2)), 2u);
  Harness h;
  for (broadcast::Receiver<Counted>* rx : {&rx1, &rx2}) {
    for (int want : {1, 2}) {
      auto r = rx->recv();
      auto p = r.poll(h.cx);
      ASSERT_TRUE(p.is_ready());
      broadcast::RecvResult<Counted> res = std::move(p).value();
      ASSERT_TRUE(res.ok());
      EXPECT_EQ(res.value().value, want);
    }
  }
}

TEST_F(ChannelTest, BroadcastALaggingReceiverIsToldHowManyItMissedAndResumesAtTheOldest) {
  auto [tx, rx] = broadcast::channel<Counted>(2);
  for (int i = 0; i < 5; ++i) tx.send(Counted(i));  // keeps 3 and 4
  Harness h;
  auto r = rx.recv();
  auto p = r.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  broadcast::RecvResult<Counted> lag = std::move(p).value();
  ASSERT_TRUE(lag.lagged());
  EXPECT_EQ(lag.missed(), 3u);
  for (int want : {3, 4}) {
    auto r2 = rx.recv();
    auto p2 = r2.poll(h.cx);
    ASSERT_TRUE(p2.is_ready());
    broadcast::RecvResult<Counted> v = std::move(p2).value();
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v.value().value, want);
  }
}

TEST_F(ChannelTest, BroadcastWaitersAreWokenAndClosedAfterTheLastSender) {
  auto [tx, rx] = broadcast::channel<Counted>(4);
  Harness h;
  auto r = rx.recv();
  ASSERT_TRUE(r.poll(h.cx).is_pending());
  tx.send(Counted(8));
  EXPECT_EQ(h.cw.wakes(), 1);
  auto p = r.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::move(p).value().value().value, 8);
  auto r2 = rx.recv();
  ASSERT_TRUE(r2.poll(h.cx).is_pending());
  { auto gone = std::move(tx); }
  EXPECT_EQ(h.cw.wakes(), 2);
  auto p2 = r2.poll(h.cx);
  ASSERT_TRUE(p2.is_ready());
  EXPECT_TRUE(std::move(p2).value().closed());
}

// ---- watch ----

TEST_F(ChannelTest, WatchChangedSeesOnlyTheLatestValue) {
  auto [tx, rx] = watch::channel<Counted>(Counted(0));
  Harness h;
  {
    auto c = rx.changed();
    ASSERT_TRUE(c.poll(h.cx).is_pending());
    tx.send(Counted(1));
    tx.send(Counted(2));
    EXPECT_EQ(h.cw.wakes(), 1);
    auto p = c.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_TRUE(std::move(p).value().ok());
  }
  EXPECT_EQ(rx.borrow_and_update()->value, 2);
  EXPECT_FALSE(rx.has_changed());
  auto c2 = rx.changed();
  EXPECT_TRUE(c2.poll(h.cx).is_pending()) << "nothing newer than what was seen";
}

TEST_F(ChannelTest, WatchChangedFailsOnceTheSenderIsGoneAndNothingIsNew) {
  auto [tx, rx] = watch::channel<Counted>(Counted(0));
  watch::Receiver<Counted> rx2 = rx;
  Harness h;
  tx.send(Counted(1));
  { auto gone = std::move(tx); }
  auto c = rx.changed();
  auto p = c.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_TRUE(std::move(p).value().ok()) << "the newer value is still seen first";
  auto c2 = rx.changed();
  auto p2 = c2.poll(h.cx);
  ASSERT_TRUE(p2.is_ready());
  EXPECT_EQ(std::move(p2).value().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(rx2.borrow()->value, 1);
}

}  // namespace
}  // namespace pollux::sync
