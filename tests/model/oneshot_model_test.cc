// Models of sync::oneshot (sync/oneshot.h) on the real code: send racing
// the receiver's poll, its drop after one poll, and its close() then
// try_recv(); and a sender dropped unsent racing the receiver's poll. The
// drop and close cases run twice: with a plain sender, and with one that
// first polls closed() once, so its waker is registered for the receiver's
// close to wake (that costs the plain case's interleavings preemptions, so
// both are kept). Checked every time: the
// value is received, handed back to the sender, or destroyed with the
// channel exactly once (Tracked), never two of these; an awaited send is
// always received, and past a close it is received or handed back; the cells of the value and of both wakers are
// RaceCells (an access the state word does not order is a reported race);
// the shared state is freed once and never leaked; nobody waits forever.
//
// What it found, on the oneshot of 6ce9449: Receiver's move constructor
// dropped closed_ and closed_before_value_, so a receiver closed before the
// value came and then moved (the model drops it through a move) took the
// value in its destructor while the sender, having seen CLOSED, was handing
// it back: a data race on the value's cell. Today's protocol never sets
// VALUE_SENT after CLOSED, so that race is gone either way; the move keeps
// both flags now, and the model keeps the move.
#include <optional>
#include <utility>

#include "future/context.h"
#include "future/internal/thread.h"
#include "future/poll.h"
#include "sync/oneshot.h"
#include "tests/model/model_test.h"
#include "tests/model/sync_model.h"

namespace pollux::model {
namespace {

// No death tests here; the fixture keeps the style of the other models.
class OneshotModelTest : public ::testing::Test {};

// ---- send racing the receiver ----

enum class RxAction { kAwait, kPollThenDrop, kPollThenClose };

void send_racing_receiver(RxAction action, bool sender_polls_closed) {
  Tracked::reset();
  Parker p0, p1;  // before the channel: a waker left in it is dropped with it
  auto [tx_, rx_] = sync::oneshot::channel<Tracked>();
  sync::oneshot::Receiver<Tracked> rx = std::move(rx_);
  bool handed_back = false;
  detail::Thread sender([&p1, &handed_back, sender_polls_closed, tx = std::move(tx_)]() mutable {
    if (sender_polls_closed) {
      // Registers the sender's waker (TX_TASK_SET), for a close to wake.
      auto closed = tx.closed();
      (void)poll_once(closed, p1);
    }
    std::optional<Tracked> back = std::move(tx).send(Tracked(1));
    handed_back = back.has_value();
  });  // what came back is destroyed here
  bool received = false;
  switch (action) {
    case RxAction::kAwait: {
      std::optional<Tracked> v = block_on(rx, p0);
      MODEL_ASSERT(v.has_value() && v->id() == 1);  // sent, never lost
      received = true;
      break;
    }
    case RxAction::kPollThenDrop: {
      Poll<std::optional<Tracked>> r = poll_once(rx, p0);
      if (r.is_ready()) {
        MODEL_ASSERT(r.value().has_value());  // Ready only with the value
        received = true;
      }
      // Pending: `rx` is dropped below, with a value sent meanwhile or not.
      break;
    }
    case RxAction::kPollThenClose: {
      Poll<std::optional<Tracked>> r = poll_once(rx, p0);
      if (r.is_ready()) {
        MODEL_ASSERT(r.value().has_value());
        received = true;
        break;
      }
      rx.close();
      // A value sent before the close is still there; after it, it went back.
      received = rx.try_recv().has_value();
      break;
    }
  }
  // Dropped through a move (as a function returning it would), before the
  // join: the move must keep a close made before the value came.
  { auto gone = std::move(rx); }
  sender.join();
  MODEL_ASSERT(!(received && handed_back));  // never both
  if (action == RxAction::kAwait) MODEL_ASSERT(received);
  // A closed receiver that keeps the channel: a value sent before the close
  // is there for try_recv, one sent after it came back. Never neither.
  if (action == RxAction::kPollThenClose) MODEL_ASSERT(received || handed_back);
  MODEL_ASSERT(Tracked::destroyed(1) == 1);  // received, handed back or dropped: once
}

TEST_F(OneshotModelTest, SendRacingTheReceiversPoll) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { send_racing_receiver(RxAction::kAwait, false); },
                        {.name = "oneshot send vs receiver poll"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST_F(OneshotModelTest, SendRacingTheReceiversDrop) {
  POLLUX_MODEL_ONLY();
  for (const bool polls_closed : {false, true}) {
    const Stats s = check([=] { send_racing_receiver(RxAction::kPollThenDrop, polls_closed); },
                          {.name = polls_closed ? "oneshot send (after closed()) vs receiver drop"
                                                : "oneshot send vs receiver drop"});
    EXPECT_TRUE(s.complete);
    EXPECT_GT(s.executions, 1u);
  }
}

TEST_F(OneshotModelTest, SendRacingTheReceiversClose) {
  POLLUX_MODEL_ONLY();
  for (const bool polls_closed : {false, true}) {
    const Stats s = check([=] { send_racing_receiver(RxAction::kPollThenClose, polls_closed); },
                          {.name = polls_closed ? "oneshot send (after closed()) vs receiver close"
                                                : "oneshot send vs receiver close"});
    EXPECT_TRUE(s.complete);
    EXPECT_GT(s.executions, 1u);
  }
}

void sender_dropped_racing_receiver() {
  Parker p0;
  auto [tx_, rx_] = sync::oneshot::channel<Tracked>();
  sync::oneshot::Receiver<Tracked> rx = std::move(rx_);
  detail::Thread sender([tx = std::move(tx_)]() mutable {
    auto gone = std::move(tx);  // dropped unsent
  });
  std::optional<Tracked> v = block_on(rx, p0);
  MODEL_ASSERT(!v.has_value());  // told: nothing will come
  sender.join();
}

TEST_F(OneshotModelTest, SenderDroppedRacingTheReceiversPoll) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check(sender_dropped_racing_receiver, {.name = "oneshot sender drop vs receiver poll"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

}  // namespace
}  // namespace pollux::model
