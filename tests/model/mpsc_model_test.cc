// A model of sync::mpsc's bounded channel (sync/mpsc.h, on sync::Semaphore)
// on the real code, with three actors: two senders (one a copy of the
// other) each send one value into a channel of capacity 1, so one of them
// waits for room, while the receiver receives once and then drops the
// receiver: the waiting send races the recv that frees the room (a permit
// released to the queued send) and the drop that closes the channel (the
// semaphore's close fails the queued send, which hands its value back).
// Checked every time: values are conserved (each is received, handed back
// to its sender, or destroyed with the channel, exactly once: Tracked, and
// never both received and handed back); the receiver gets a value (a send
// cannot fail while it lives); nobody waits forever; the channel, its
// buffer and every waker are freed once; the queue, the rx waker and the
// waiter nodes only under their locks (RaceCells in the waiter nodes,
// tracked wakers).
#include <optional>
#include <utility>

#include "future/internal/thread.h"
#include "sync/mpsc.h"
#include "tests/model/model_test.h"
#include "tests/model/sync_model.h"

namespace pollux::model {
namespace {

void send_racing_recv_and_drop() {
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
  int received = -1;
  {
    auto recv = rx.recv();
    std::optional<Tracked> v = block_on(recv, p0);
    MODEL_ASSERT(v.has_value());  // the senders live until their sends end
    received = v->id();
  }
  { auto gone = std::move(rx); }  // closes: a waiting send gets its value back
  first.join();
  second.join();
  MODEL_ASSERT(received == 1 || received == 2);
  MODEL_ASSERT(!back[received]);  // received, so not handed back
  for (int id = 1; id <= 2; ++id) MODEL_ASSERT(Tracked::destroyed(id) == 1);
}

TEST(MpscModelTest, BoundedSendRacingRecvAndTheReceiversDropConservesValues) {
  POLLUX_MODEL_ONLY();
  const Stats s =
      check(send_racing_recv_and_drop, {.name = "mpsc bounded send vs recv + receiver drop"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

}  // namespace
}  // namespace pollux::model
