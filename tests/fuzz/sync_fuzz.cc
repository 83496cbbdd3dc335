// Fuzz target: sync::Semaphore, sync::mpsc (bounded) and sync::oneshot
// (sync/) against models, on one thread, every future polled by hand.
//
// The first byte picks the primitive; the rest is a program of operations
// (create, poll, drop futures; release, add, close; send, recv, try_*,
// clone and drop ends). Each future has its own CountingWaker, so the
// harness knows whether it was woken since its last Pending. Properties:
// - no lost wake-up: a future that was not woken polls Pending; and no
//   wake-up in vain for the semaphore's waiters (woken means Ready);
// - Semaphore: FIFO, also across sizes (nobody is granted while an earlier
//   waiter still waits; try_acquire does not jump the queue); the permits
//   are conserved (available <= total - held, and == total once all is
//   dropped); close fails every waiter with the closed status;
// - mpsc: messages arrive in the order the sends completed, each once; the
//   queue plus reserved places never exceed the capacity; a send to a
//   closed channel hands its value back; recv ends (nullopt) exactly when
//   the queue is empty and the receiver closed or every sender is gone;
// - oneshot: the receiver gets the value iff it was sent before the
//   receiver closed; send hands it back otherwise;
// - every value (Counted) is destroyed exactly once and every waker clone
//   is released, once all is dropped.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "future/context.h"
#include "future/poll.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "sync/mpsc.h"
#include "sync/oneshot.h"
#include "sync/semaphore.h"
#include "tests/fuzz/byte_reader.h"

namespace {

using pollux::Budget;
using pollux::Context;
using pollux::Poll;
using pollux::Waker;
using pollux::fuzz::ByteReader;
using pollux::testing::Counted;
using pollux::testing::CountingWaker;

[[noreturn]] void fail(const char* what, int line) {
  std::fprintf(stderr, "sync_fuzz: %s (line %d)\n", what, line);
  std::abort();
}
#define CHECK(cond)                         \
  do {                                      \
    if (!(cond)) fail(#cond, __LINE__);     \
  } while (false)

constexpr int kMaxOps = 400;

// A future's waker and whether it was woken since the last poll.
struct Watch {
  CountingWaker cw;
  int64_t seen = 0;
  bool polled = false;
  bool woken() const { return cw.wakes() > seen; }
  // Polls `f` with this watch's waker.
  template <class F>
  auto poll(F& f) {
    Budget budget = Budget::unlimited();
    Waker w = cw.waker();
    Context cx(w, budget);
    seen = cw.wakes();
    polled = true;
    return f.poll(cx);
  }
  bool released() const { return cw.live() == 0; }
  // The future's own task changed its state (e.g. the receiver closed its
  // channel): it knows to poll again without a wake-up.
  void owner_acted() { seen = -1; }
};

// ---------------------------------------------------------------- Semaphore

void fuzz_semaphore(ByteReader& in) {
  using pollux::sync::Acquire;
  using pollux::sync::Semaphore;
  using pollux::sync::SemaphorePermit;
  constexpr int kSlots = 6;
  const size_t initial = in.below(5);
  size_t total = initial;
  size_t held = 0;
  bool closed = false;
  uint64_t next_order = 0;
  std::vector<std::unique_ptr<SemaphorePermit>> permits;
  struct Slot {
    std::optional<Acquire> fut;
    size_t n = 0;
    uint64_t order = 0;  // when it first polled Pending
    bool queued = false;
  };
  Watch watches[kSlots];
  {
    Semaphore sem(initial);
    Slot slots[kSlots];
    // Waiting: queued and not woken (a woken one was granted or closed).
    auto waits = [&](int k) { return slots[k].fut && slots[k].queued && !watches[k].woken(); };
    auto take_result = [&](int k, absl::StatusOr<SemaphorePermit> r) {
      if (r.ok()) {
        CHECK(r->count() == slots[k].n);
        // No overtaking: nobody queued before k (or at all, for a first
        // poll) still waits.
        for (int j = 0; j < kSlots; ++j) {
          if (j == k || !waits(j)) continue;
          CHECK(slots[k].queued && slots[j].order > slots[k].order);
        }
        held += r->count();
        permits.push_back(std::make_unique<SemaphorePermit>(std::move(*r)));
      } else {
        CHECK(closed);
        CHECK(pollux::sync::is_closed_status(r.status()));
      }
      slots[k].fut.reset();
      slots[k].queued = false;
    };
    for (int ops = 0; !in.empty() && ops < kMaxOps; ++ops) {
      const uint8_t op = in.byte();
      const int k = (op >> 3) % kSlots;
      switch (op % 8) {
        case 0: {  // a new acquire, polled at once
          if (slots[k].fut) break;
          slots[k].n = 1 + in.below(3);
          slots[k].fut.emplace(sem.acquire(slots[k].n));
          Poll<absl::StatusOr<SemaphorePermit>> p = watches[k].poll(*slots[k].fut);
          if (p.is_ready()) {
            take_result(k, std::move(p).value());
          } else {
            CHECK(!closed);
            slots[k].queued = true;
            slots[k].order = next_order++;
          }
          break;
        }
        case 1: {  // poll a queued acquire
          if (!slots[k].fut) break;
          const bool woken = watches[k].woken();
          Poll<absl::StatusOr<SemaphorePermit>> p = watches[k].poll(*slots[k].fut);
          CHECK(p.is_ready() == woken);
          if (p.is_ready()) take_result(k, std::move(p).value());
          break;
        }
        case 2:  // drop an acquire (its set-aside permits go back)
          slots[k].fut.reset();
          slots[k].queued = false;
          break;
        case 3:  // release a held permit
          if (permits.empty()) break;
          {
            const size_t i = in.below(permits.size());
            held -= permits[i]->count();
            permits.erase(permits.begin() + static_cast<ptrdiff_t>(i));
          }
          break;
        case 4: {
          const size_t n = 1 + in.below(3);
          absl::StatusOr<SemaphorePermit> r = sem.try_acquire(n);
          if (r.ok()) {
            for (int j = 0; j < kSlots; ++j) CHECK(!waits(j));  // no queue jumping
            CHECK(r->count() == n);
            held += n;
            permits.push_back(std::make_unique<SemaphorePermit>(std::move(*r)));
          } else if (closed) {
            CHECK(pollux::sync::is_closed_status(r.status()));
          } else {
            CHECK(r.status().code() == absl::StatusCode::kResourceExhausted);
          }
          break;
        }
        case 5: {
          const size_t n = 1 + in.below(3);
          sem.add_permits(n);
          total += n;
          break;
        }
        case 6:
          if (in.below(4) != 0) break;  // close rarely: it ends the interesting part
          sem.close();
          closed = true;
          CHECK(sem.is_closed());
          for (int j = 0; j < kSlots; ++j) {
            if (slots[j].fut && slots[j].queued) CHECK(watches[j].woken());
          }
          break;
        default:  // forget nothing; just look
          break;
      }
      CHECK(sem.available_permits() + held <= total);
    }
    for (Slot& s : slots) s.fut.reset();
    permits.clear();
    held = 0;
    CHECK(sem.available_permits() == total);
  }
  for (const Watch& w : watches) CHECK(w.released());
}

// -------------------------------------------------------------------- mpsc

void fuzz_mpsc(ByteReader& in) {
  namespace mpsc = pollux::sync::mpsc;
  using Tx = mpsc::Sender<Counted>;
  using Rx = mpsc::Receiver<Counted>;
  constexpr int kSenders = 3;
  constexpr int kSends = 4;
  const size_t capacity = 1 + in.below(4);
  auto [tx0, rx0] = mpsc::channel<Counted>(capacity);
  std::optional<Tx> tx[kSenders];
  tx[0].emplace(std::move(tx0));
  std::optional<Rx> rx;
  rx.emplace(std::move(rx0));
  std::optional<Rx::Recv> recv;
  struct SendSlot {
    std::optional<Tx::Send> fut;
    int sender = 0;
    int value = 0;
  };
  SendSlot sends[kSends];
  Watch send_watch[kSends];
  Watch recv_watch;
  std::vector<std::unique_ptr<mpsc::Permit<Counted>>> reserved;
  std::deque<int> model;  // the channel's queue
  bool rx_closed = false;
  int next_value = 1;
  auto live_senders = [&] {
    int n = 0;
    for (auto& t : tx) n += t.has_value();
    return n;
  };
  auto ends = [&] { return rx_closed || live_senders() == 0; };
  auto check_got = [&](const std::optional<Counted>& v) {
    if (v) {
      CHECK(!model.empty());
      CHECK(v->value == model.front());
      model.pop_front();
    } else {
      CHECK(model.empty());
      CHECK(ends());
    }
  };
  auto finish_send = [&](int k, std::optional<Counted> back) {
    if (back) {
      CHECK(rx_closed);
      CHECK(back->value == sends[k].value);
    } else {
      CHECK(!rx_closed);
      model.push_back(sends[k].value);
    }
    sends[k].fut.reset();
  };
  for (int ops = 0; !in.empty() && ops < kMaxOps; ++ops) {
    const uint8_t op = in.byte();
    const int a = (op >> 4) % kSenders;
    const int k = (op >> 4) % kSends;
    switch (op % 12) {
      case 0:  // a bounded send, polled at once
        if (sends[k].fut || !tx[a]) break;
        sends[k].sender = a;
        sends[k].value = next_value++;
        sends[k].fut.emplace(tx[a]->send(Counted(sends[k].value)));
        [[fallthrough]];
      case 1: {  // poll a send
        if (!sends[k].fut) break;
        const bool woken = send_watch[k].woken() || op % 12 == 0;
        Poll<std::optional<Counted>> p = send_watch[k].poll(*sends[k].fut);
        if (!woken) CHECK(p.is_pending());
        if (p.is_ready()) finish_send(k, std::move(p).value());
        break;
      }
      case 2:
        sends[k].fut.reset();  // the value dies with it
        break;
      case 3: {
        if (!tx[a]) break;
        const int v = next_value++;
        std::optional<mpsc::TrySendError<Counted>> e = tx[a]->try_send(Counted(v));
        if (!e) {
          CHECK(!rx_closed);
          model.push_back(v);
        } else {
          CHECK(e->value.value == v);
          if (e->reason == mpsc::TrySendError<Counted>::Reason::kClosed) {
            CHECK(rx_closed);
          } else {
            CHECK(!rx_closed);
          }
        }
        break;
      }
      case 4:
      case 5: {  // recv: create and poll, or poll again
        if (!rx) break;
        const bool fresh = !recv;
        if (fresh) recv.emplace(rx->recv());
        const bool woken = recv_watch.woken() || fresh;
        Poll<std::optional<Counted>> p = recv_watch.poll(*recv);
        if (!woken) CHECK(p.is_pending());
        if (p.is_ready()) {
          check_got(std::move(p).value());
          recv.reset();
        } else {
          CHECK(model.empty() && !ends());
        }
        break;
      }
      case 6:
        if (op & 0x80) {
          recv.reset();  // cancel-safe: nothing lost
        } else if (rx) {
          if (recv) break;
          mpsc::TryRecv<Counted> r = rx->try_recv();
          if (r.value) {
            check_got(r.value);
          } else {
            CHECK(model.empty());
            CHECK(r.disconnected == ends());
          }
        }
        break;
      case 7: {  // clone a sender into an empty place
        if (!tx[a]) break;
        for (auto& t : tx) {
          if (!t) {
            t.emplace(*tx[a]);
            break;
          }
        }
        break;
      }
      case 8:  // drop a sender and the sends it made
        if (!tx[a]) break;
        for (SendSlot& s : sends) {
          if (s.fut && s.sender == a) s.fut.reset();
        }
        tx[a].reset();
        break;
      case 9:
        if (!rx || (op & 0x80) == 0) {
          if (rx) {
            rx->close();
            rx_closed = true;
            recv_watch.owner_acted();
          }
        } else {
          recv.reset();
          rx.reset();
          rx_closed = true;
          model.clear();  // queued messages die with the channel
        }
        break;
      case 10: {  // reserve a place (polled at once; kept only if Ready)
        if (!tx[a]) break;
        Watch w;
        {
          Tx::Reserve r = tx[a]->reserve();
          Poll<std::optional<mpsc::Permit<Counted>>> p = w.poll(r);
          if (p.is_ready()) {
            std::optional<mpsc::Permit<Counted>> permit = std::move(p).value();
            CHECK(permit.has_value() != rx_closed);
            if (permit) reserved.push_back(std::make_unique<mpsc::Permit<Counted>>(std::move(*permit)));
          }
        }
        CHECK(w.released());
        break;
      }
      default:  // use or drop a reserved place
        if (reserved.empty()) break;
        if (op & 0x80) {
          const int v = next_value++;
          std::move(*reserved.back()).send(Counted(v));
          if (!rx_closed) model.push_back(v);
        }
        reserved.pop_back();
        break;
    }
    if (!rx_closed) CHECK(model.size() + reserved.size() <= capacity);
    // A waiting receiver is woken once it has something to return.
    if (recv && (!model.empty() || ends())) CHECK(recv_watch.woken());
  }
  for (SendSlot& s : sends) s.fut.reset();
  reserved.clear();
  recv.reset();
  for (auto& t : tx) t.reset();
  rx.reset();
  for (const Watch& w : send_watch) CHECK(w.released());
  CHECK(recv_watch.released());
}

// ------------------------------------------------------------------ oneshot

void fuzz_oneshot(ByteReader& in) {
  namespace oneshot = pollux::sync::oneshot;
  auto [tx0, rx0] = oneshot::channel<Counted>();
  std::optional<oneshot::Sender<Counted>> tx;
  tx.emplace(std::move(tx0));
  std::optional<oneshot::Receiver<Counted>> rx;
  rx.emplace(std::move(rx0));
  Watch rx_watch;
  Watch closed_watch;
  bool sent = false;       // a value is in the channel (not yet taken)
  bool rx_done = false;    // the receiver returned Ready or took the value
  bool rx_closed = false;  // closed or dropped before a value came
  bool tx_gone = false;
  bool closed_fut = false;  // a Sender::closed() was polled Pending
  for (int ops = 0; !in.empty() && ops < 64; ++ops) {
    const uint8_t op = in.byte();
    switch (op % 7) {
      case 0: {  // send
        if (!tx) break;
        std::optional<Counted> back = std::move(*tx).send(Counted(42));
        tx.reset();
        tx_gone = true;
        if (rx_closed || !rx) {
          CHECK(back && back->value == 42);
        } else {
          CHECK(!back);
          sent = true;
        }
        break;
      }
      case 1:  // drop the sender unsent
        if (!tx) break;
        tx.reset();
        tx_gone = true;
        break;
      case 2: {  // poll the receiver
        if (!rx || rx_done) break;
        const bool woken = rx_watch.woken() || !rx_watch.polled;
        Poll<std::optional<Counted>> p = rx_watch.poll(*rx);
        if (!woken) CHECK(p.is_pending());
        if (p.is_ready()) {
          std::optional<Counted> v = std::move(p).value();
          CHECK(v.has_value() == sent);
          if (v) CHECK(v->value == 42);
          CHECK(tx_gone || rx_closed);
          sent = false;
          rx_done = true;
        } else {
          CHECK(!sent && !tx_gone && !rx_closed);
        }
        break;
      }
      case 3: {
        if (!rx || rx_done) break;
        std::optional<Counted> v = rx->try_recv();
        CHECK(v.has_value() == sent);
        if (v) {
          sent = false;
          rx_done = true;
        }
        break;
      }
      case 4:  // close the receiver
        if (!rx || rx_done) break;
        rx->close();
        if (!sent) rx_closed = true;
        rx_watch.owner_acted();
        break;
      case 5:  // drop the receiver
        if (!rx) break;
        rx.reset();
        if (!sent && !rx_done) rx_closed = true;
        sent = false;  // a value sent dies with it
        break;
      default: {  // the sender's closed() future
        if (!tx) break;
        oneshot::Sender<Counted>::Closed c = tx->closed();
        const bool woken = closed_watch.woken() || !closed_fut;
        Poll<void> p = closed_watch.poll(c);
        if (!woken) CHECK(p.is_pending());
        CHECK(p.is_ready() == (rx_closed || !rx));
        closed_fut = p.is_pending();
        break;
      }
    }
    if (closed_fut && tx && (rx_closed || !rx)) CHECK(closed_watch.woken());
    if (rx && !rx_done && rx_watch.polled && (sent || tx_gone)) CHECK(rx_watch.woken());
  }
  tx.reset();
  rx.reset();
  CHECK(rx_watch.released());
  CHECK(closed_watch.released());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  Counted::reset();
  switch (in.byte() % 3) {
    case 0:
      fuzz_semaphore(in);
      break;
    case 1:
      fuzz_mpsc(in);
      break;
    default:
      fuzz_oneshot(in);
      break;
  }
  CHECK(Counted::live() == 0);
  return 0;
}
