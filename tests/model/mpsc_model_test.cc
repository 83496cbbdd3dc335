// Models of sync::mpsc's bounded channel (sync/mpsc.h, on sync::Semaphore)
// on the real code, each with three actors: two senders (one a copy of the
// other) each send one value into a channel of capacity 1, so one of them
// may wait for room, while the receiver
// - receives both and then drops the receiver: the waiting send races the
//   recv that frees its room (the permit a recv releases goes to the queued
//   send; a recv that frees none leaves the second recv waiting forever);
// - polls one recv and then drops the receiver: the waiting send races the
//   drop, which closes the channel (the semaphore's close fails the queued
//   send, which hands its value back; without it the sender waits forever).
// Checked every time: values are conserved (each is received, handed back
// to its sender, or destroyed with the channel, exactly once: Tracked, and
// never both received and handed back); nobody waits forever; the channel,
// its buffer and every waker are freed once, never leaked; the waiter
// nodes only under the semaphore's lock (RaceCells), the wakers' clones only
// while alive.
#include <optional>
#include <utility>

#include "future/internal/thread.h"
#include "future/poll.h"
#include "sync/mpsc.h"
#include "tests/model/model_test.h"
#include "tests/model/sync_model.h"

namespace pollux::model {
namespace {

enum class RxAction { kReceiveBoth, kPollOnceThenDrop };

void senders_racing_receiver(RxAction action) {
  Tracked::reset();
  Parker p0, p1, p2;
  auto [tx_, rx_] = sync::mpsc::channel<Tracked>(1);
  sync::mpsc::Receiver<Tracked> rx = std::move(rx_);
  sync::mpsc::Sender<Tracked> tx2 = tx_;  // the second sender (a copy)
  bool back[Tracked::kIds] = {};  // written by each sender thread for its own id
  auto sender = [&back](sync::mpsc::Sender<Tracked> tx, int id, Parker& p) {
    auto send = tx.send(Tracked(id));
    std::optional<Tracked> unsent = block_on(send, p);
    back[id] = unsent.has_value();
    if (unsent) MODEL_ASSERT(unsent->id() == id);
  };  // the value handed back, then this sender, are dropped here
  detail::Thread first([&, tx = std::move(tx_)]() mutable { sender(std::move(tx), 1, p1); });
  detail::Thread second([&, tx = std::move(tx2)]() mutable { sender(std::move(tx), 2, p2); });
  bool received[Tracked::kIds] = {};
  if (action == RxAction::kReceiveBoth) {
    for (int i = 0; i < 2; ++i) {
      auto recv = rx.recv();
      std::optional<Tracked> v = block_on(recv, p0);
      MODEL_ASSERT(v.has_value());  // the senders live until their sends end
      received[v->id()] = true;
    }
    MODEL_ASSERT(received[1] && received[2]);
  } else {
    auto recv = rx.recv();
    Poll<std::optional<Tracked>> r = poll_once(recv, p0);
    if (r.is_ready()) {
      MODEL_ASSERT(r.value().has_value());
      received[r.value()->id()] = true;
    }
  }  // a pending recv is dropped here: it loses no message
  { auto gone = std::move(rx); }  // closes: a waiting send gets its value back
  first.join();
  second.join();
  for (int id = 1; id <= 2; ++id) {
    MODEL_ASSERT(!(received[id] && back[id]));  // never both
    MODEL_ASSERT(Tracked::destroyed(id) == 1);  // received, handed back or dropped: once
  }
}

TEST(MpscModelTest, BoundedSendRacingTheRecvThatFreesItsRoom) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { senders_racing_receiver(RxAction::kReceiveBoth); },
                        {.name = "mpsc bounded sends vs recvs"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

TEST(MpscModelTest, BoundedSendRacingTheReceiversDropGetsItsValueBack) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { senders_racing_receiver(RxAction::kPollOnceThenDrop); },
                        {.name = "mpsc bounded sends vs recv poll + receiver drop"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

}  // namespace
}  // namespace pollux::model
