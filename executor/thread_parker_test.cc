// Tests for ThreadParker (thread_parker.h): the park/unpark protocol.
#include "executor/thread_parker.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/watchdog.h"

namespace pollux {
namespace {

using Clock = std::chrono::steady_clock;

using testing::Watchdog;

TEST(ThreadParkerTest, UnparkBeforeParkMakesParkReturnImmediately) {
  Watchdog dog(std::chrono::seconds(10), "park after unpark");
  ThreadParker parker;
  parker.unparker()->unpark();
  const auto start = Clock::now();
  parker.park(std::nullopt);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
}

TEST(ThreadParkerTest, UnparkFromAnotherThreadWakesAParkedThread) {
  Watchdog dog(std::chrono::seconds(10), "a parked thread");
  ThreadParker parker;
  std::shared_ptr<Unparker> u = parker.unparker();
  std::atomic<bool> unparked{false};
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    unparked.store(true);
    u->unpark();
  });
  parker.park(std::nullopt);
  EXPECT_TRUE(unparked.load()) << "park returned before anyone unparked it";
  other.join();
}

TEST(ThreadParkerTest, ManyUnparksCoalesceIntoOne) {
  Watchdog dog(std::chrono::seconds(10), "coalesced unparks");
  ThreadParker parker;
  std::shared_ptr<Unparker> u = parker.unparker();
  for (int i = 0; i < 100; ++i) u->unpark();
  parker.park(std::nullopt);  // consumes all of them
  // The next park must block until a new unpark.
  std::atomic<bool> late{false};
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    late.store(true);
    u->unpark();
  });
  parker.park(std::nullopt);
  EXPECT_TRUE(late.load()) << "a second park returned on an already consumed unpark";
  other.join();
}

TEST(ThreadParkerTest, UnparksFromManyThreadsWhileParkedWakeItOnce) {
  Watchdog dog(std::chrono::seconds(10), "unparks from many threads");
  ThreadParker parker;
  std::shared_ptr<Unparker> u = parker.unparker();
  std::atomic<bool> go{false};
  std::thread threads[4];
  for (auto& t : threads) {
    t = std::thread([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 100; ++i) u->unpark();
    });
  }
  go.store(true);
  parker.park(std::nullopt);
  for (auto& t : threads) t.join();
  // Whatever is left is at most one pending notification: one more unpark
  // coalesces with it, and one park consumes both.
  u->unpark();
  parker.park(std::nullopt);
  std::atomic<bool> late{false};
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    late.store(true);
    u->unpark();
  });
  parker.park(std::nullopt);  // must wait for `other`
  EXPECT_TRUE(late.load());
  other.join();
}

TEST(ThreadParkerTest, PollNonblockingNeverBlocksAndDoesNotEatAnUnpark) {
  Watchdog dog(std::chrono::seconds(10), "poll_now");
  ThreadParker parker;
  parker.poll_now();  // nothing pending: returns
  parker.unparker()->unpark();
  parker.poll_now();
  parker.park(std::nullopt);  // the unpark is still there
}

TEST(ThreadParkerTest, UnparkerOutlivesTheParker) {
  std::shared_ptr<Unparker> u;
  {
    ThreadParker parker;
    u = parker.unparker();
  }
  u->unpark();  // harmless
  std::thread([u] { u->unpark(); }).join();
}

// ---- park_timeout ----

TEST(ThreadParkerTest, ParkTimeoutReturnsAfterTheTimeoutWithoutAnUnpark) {
  Watchdog dog(std::chrono::seconds(10), "park_timeout");
  ThreadParker parker;
  auto start = Clock::now();
  parker.park(absl::Milliseconds(30));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(25));
  // A timed-out park leaves nothing behind: the next one waits too...
  start = Clock::now();
  parker.park(absl::Milliseconds(20));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(15));
  // ...and a later unpark still reaches the next park.
  parker.unparker()->unpark();
  parker.park(std::nullopt);
}

TEST(ThreadParkerTest, ParkTimeoutReturnsEarlyOnUnpark) {
  Watchdog dog(std::chrono::seconds(20), "park_timeout with an unpark");
  ThreadParker parker;
  std::shared_ptr<Unparker> u = parker.unparker();
  std::atomic<bool> unparked{false};
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    unparked.store(true);
    u->unpark();
  });
  const auto start = Clock::now();
  parker.park(absl::Seconds(60));
  EXPECT_TRUE(unparked.load());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  other.join();
}

TEST(ThreadParkerTest, ParkTimeoutConsumesAPendingUnparkAtOnce) {
  Watchdog dog(std::chrono::seconds(20), "park_timeout with a pending unpark");
  ThreadParker parker;
  parker.unparker()->unpark();
  parker.unparker()->unpark();
  auto start = Clock::now();
  parker.park(absl::Seconds(60));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  start = Clock::now();
  parker.park(absl::Milliseconds(20));  // both unparks were one
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(15));
}

TEST(ThreadParkerTest, ZeroOrNegativeTimeoutNeverBlocks) {
  Watchdog dog(std::chrono::seconds(10), "park_timeout(0)");
  ThreadParker parker;
  parker.park(absl::ZeroDuration());
  parker.park(absl::Milliseconds(-5));
  parker.unparker()->unpark();
  parker.park(absl::ZeroDuration());  // consumes it
  const auto start = Clock::now();
  parker.park(absl::Milliseconds(20));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(15));
}

// Unparks racing timed parks that expire around the same moment: whatever
// happens, the state stays consistent, so an untimed park right after an
// unpark never hangs and never returns without one.
TEST(ThreadParkerTest, UnparksRacingTimeoutsLeaveAConsistentState) {
  Watchdog dog(std::chrono::seconds(60), "unparks racing timeouts");
  ThreadParker parker;
  std::shared_ptr<Unparker> u = parker.unparker();
  std::atomic<int> go{0};
  std::atomic<int> done{0};
  constexpr int kIters = 300;
  std::thread other([&] {
    for (int i = 1; i <= kIters; ++i) {
      while (go.load() < i) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::microseconds((i * 37) % 200));
      u->unpark();
      done.store(i);
    }
  });
  for (int i = 1; i <= kIters; ++i) {
    go.store(i);
    parker.park(absl::Microseconds((i * 53) % 200));
    while (done.load() < i) std::this_thread::yield();
    // The unpark either ended that park or is still pending; one more
    // unpark coalesces with a pending one, and park() consumes it.
    u->unpark();
    parker.park(std::nullopt);
    // Nothing may be left over now.
    const auto start = Clock::now();
    parker.park(absl::Microseconds(300));
    ASSERT_GE(Clock::now() - start, std::chrono::microseconds(250)) << "iteration " << i;
  }
  other.join();
}

// A producer/consumer ping-pong: the consumer parks whenever it has seen
// everything; a lost unpark would leave it parked forever.
TEST(ThreadParkerTest, NoUnparkIsLostUnderContention) {
  Watchdog dog(std::chrono::seconds(60), "the ping-pong");
  constexpr int kRounds = 20000;
  ThreadParker consumer_parker, producer_parker;
  std::shared_ptr<Unparker> wake_consumer = consumer_parker.unparker();
  std::shared_ptr<Unparker> wake_producer = producer_parker.unparker();
  std::atomic<int> produced{0}, consumed{0};
  std::thread producer([&] {
    for (int i = 1; i <= kRounds; ++i) {
      produced.store(i, std::memory_order_release);
      wake_consumer->unpark();
      // Wait for the consumer to see it (sometimes without parking).
      while (consumed.load(std::memory_order_acquire) < i) {
        if (i % 3) {
          producer_parker.park(std::nullopt);
        } else {
          std::this_thread::yield();
        }
      }
    }
  });
  int seen = 0;
  while (seen < kRounds) {
    const int p = produced.load(std::memory_order_acquire);
    if (p > seen) {
      seen = p;
      consumed.store(seen, std::memory_order_release);
      wake_producer->unpark();
    } else if (seen % 2) {
      consumer_parker.park(std::nullopt);
    } else {
      consumer_parker.park(absl::Microseconds(seen % 50));
    }
  }
  producer.join();
  EXPECT_EQ(seen, kRounds);
}

}  // namespace
}  // namespace pollux
