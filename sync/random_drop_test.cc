// Cancellation at random points (fixed seeds, 10,000-step runs): pending
// lock, acquire, recv, send, notified, changed and cancelled futures are
// created, polled and dropped in random order. Afterwards nothing is lost
// (every primitive still works and every permit is back) and no waiter is
// left in any list (no waker clone is still held: CountingWaker::live()).
#include <memory>
#include <optional>
#include <random>
#include <type_traits>
#include <vector>

#include "future/testing/counted.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"
#include "sync/cancellation_token.h"
#include "sync/mpsc.h"
#include "sync/mutex.h"
#include "sync/notify.h"
#include "sync/semaphore.h"
#include "sync/watch.h"

namespace pollux::sync {
namespace {

using pollux::testing::Counted;
using pollux::testing::Harness;

// A type-erased pending future the run can poll or drop.
struct AnyWait {
  virtual ~AnyWait() = default;
  // True when it completed (and is done with).
  virtual bool poll(Context& cx) = 0;
};

template <class F, class OnReady>
struct Wait final : AnyWait {
  Wait(F f, OnReady r) : f(std::move(f)), on_ready(std::move(r)) {}
  bool poll(Context& cx) override {
    auto p = f.poll(cx);
    if (p.is_pending()) return false;
    if constexpr (std::is_void_v<output_t<F>>) {
      on_ready();
    } else {
      on_ready(std::move(p).value());
    }
    return true;
  }
  F f;
  OnReady on_ready;
};
template <class F, class OnReady>
std::unique_ptr<AnyWait> make_wait(F f, OnReady r) {
  return std::make_unique<Wait<F, OnReady>>(std::move(f), std::move(r));
}

TEST(RandomDropTest, PendingFuturesDroppedAtRandomLoseNothingAndLeaveNoWaiter) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    Counted::reset();
    std::mt19937 rng(seed);
    Harness h;
    {
      Mutex<int> mutex(0);
      Semaphore sem(2);
      Notify notify;
      auto [tx, rx] = mpsc::channel<Counted>(2);
      auto [wtx, wrx] = watch::channel<int>(0);
      CancellationToken token;
      CancellationToken child = token.child_token();
      std::vector<std::unique_ptr<AnyWait>> waits;
      std::vector<MutexGuard<int>> guards;
      std::vector<SemaphorePermit> permits;
      int notifies = 0;
      for (int step = 0; step < 10'000; ++step) {
        switch (rng() % 12) {
          case 0:
            waits.push_back(make_wait(mutex.lock(), [&](MutexGuard<int> g) {
              if (guards.size() < 1) guards.push_back(std::move(g));
            }));
            break;
          case 1:
            waits.push_back(make_wait(sem.acquire(1 + rng() % 2),
                                      [&](absl::StatusOr<SemaphorePermit> p) {
                                        if (p.ok() && permits.size() < 2) {
                                          permits.push_back(*std::move(p));
                                        }
                                      }));
            break;
          case 2:
            waits.push_back(make_wait(rx.recv(), [](std::optional<Counted>) {}));
            break;
          case 3:
            waits.push_back(make_wait(tx.send(Counted(step)), [](std::optional<Counted>) {}));
            break;
          case 4:
            waits.push_back(make_wait(notify.notified(), [] {}));
            break;
          case 5:
            waits.push_back(make_wait(wrx.changed(), [](absl::Status) {}));
            break;
          case 6:
            waits.push_back(make_wait(child.cancelled(), [] {}));
            break;
          case 7:  // poll one
            if (!waits.empty()) {
              const size_t i = rng() % waits.size();
              if (waits[i]->poll(h.cx)) waits.erase(waits.begin() + i);
            }
            break;
          case 8:  // drop one, pending or not
            if (!waits.empty()) waits.erase(waits.begin() + rng() % waits.size());
            break;
          case 9:  // release what is held
            if (!guards.empty()) guards.pop_back();
            if (!permits.empty()) permits.pop_back();
            break;
          case 10:
            if (rng() % 2) {
              notify.notify_one();
            } else {
              notify.notify_waiters();
            }
            ++notifies;
            break;
          case 11:
            wtx.send(step);
            if (rng() % 500 == 0) token.cancel();
            break;
        }
      }
      waits.clear();
      guards.clear();
      permits.clear();
      // (mpsc keeps the last recv's waker in its single slot until the next
      // send or the channel's end, like tokio's; the lists hold none.)
      EXPECT_LE(h.cw.live(), 2) << "a dropped future left its waker in a waiter list, seed "
                                << seed;
      EXPECT_EQ(sem.available_permits(), 2u) << "seed " << seed;
      EXPECT_TRUE(mutex.try_lock().has_value()) << "seed " << seed;
      (void)notifies;
    }
    EXPECT_EQ(Counted::live(), 0) << "seed " << seed;
    EXPECT_EQ(h.cw.live(), 1) << "a waker clone outlived every primitive, seed " << seed;
  }
}

}  // namespace
}  // namespace pollux::sync
