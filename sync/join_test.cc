// Tests for FuturesUnordered, join_all and JoinSet: only woken futures are
// re-polled, outputs come in finishing order (join_all: in input order),
// wakes from other threads, dropping aborts (JoinSet) or cancels.
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "executor/local_executor.h"
#include "executor/yield_now.h"
#include "future/ready.h"
#include "future/task.h"
#include "future/testing/counted.h"
#include "future/testing/manual_future.h"
#include "future/testing/probe_futures.h"
#include "gtest/gtest.h"
#include "sync/futures_unordered.h"
#include "sync/join_all.h"
#include "sync/join_set.h"
#include "sync/oneshot.h"
#include "tests/watchdog.h"

namespace pollux::sync {
namespace {

using pollux::testing::Counted;
using pollux::testing::Harness;
using pollux::testing::make_manual_future;

// Counts its polls; Ready once its flag is set (woken through its stored waker).
struct Gate {
  struct State {
    bool open = false;
    int polls = 0;
    Waker waker;
  };
  using Output = int;
  std::shared_ptr<State> s;
  int value;
  Poll<int> poll(Context& cx) {
    ++s->polls;
    if (s->open) return Ready(value);
    s->waker = cx.waker();
    return Pending{};
  }
};

TEST(FuturesUnorderedTest, OnlyWokenFuturesArePolledAgain) {
  FuturesUnordered<Gate> set;
  std::vector<std::shared_ptr<Gate::State>> gates;
  for (int i = 0; i < 100; ++i) {
    gates.push_back(std::make_shared<Gate::State>());
    set.push(Gate{gates.back(), i});
  }
  Harness h;
  auto polls = [&] {
    int total = 0;
    for (auto& g : gates) total += g->polls;
    return total;
  };
  // Each next() polls at most kPollsPerNext futures, then yields (waking
  // itself): four rounds poll each new future once.
  int rounds = 0;
  while (polls() < 100) {
    auto n = set.next();
    ASSERT_TRUE(n.poll(h.cx).is_pending());
    ASSERT_LT(++rounds, 10);
  }
  EXPECT_EQ(rounds, 4);
  EXPECT_EQ(h.cw.wakes(), 3) << "each capped round woke its task to come back";
  int total_before = polls();
  EXPECT_EQ(total_before, 100) << "each new future polled once";
  gates[42]->open = true;
  std::move(gates[42]->waker).wake();
  auto n3 = set.next();
  auto p = n3.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(*std::move(p).value(), 42);
  int total_after = 0;
  for (auto& g : gates) total_after += g->polls;
  EXPECT_EQ(total_after, 101) << "only the woken future was polled";
  EXPECT_EQ(set.size(), 99u);
}

TEST(FuturesUnorderedTest, AnEmptySetIsDoneAndDroppingTheSetDropsItsFutures) {
  Counted::reset();
  {
    FuturesUnordered<pollux::ReadyFuture<Counted>> set;
    Harness h;
    auto n = set.next();
    auto p = n.poll(h.cx);
    ASSERT_TRUE(p.is_ready());
    EXPECT_FALSE(std::move(p).value().has_value());
    set.push(ready(Counted(1)));
    set.push(ready(Counted(2)));
  }
  EXPECT_EQ(Counted::live(), 0);
}

TEST(FuturesUnorderedTest, WakesFromAnotherThreadReachTheSet) {
  pollux::testing::Watchdog dog(std::chrono::seconds(30), "futures unordered");
  FuturesUnordered<oneshot::Receiver<int>> set;
  std::vector<oneshot::Sender<int>> senders;
  for (int i = 0; i < 50; ++i) {
    auto [tx, rx] = oneshot::channel<int>();
    senders.push_back(std::move(tx));
    set.push(std::move(rx));
  }
  std::thread producer([&] {
    for (int i = 49; i >= 0; --i) (void)std::move(senders[i]).send(i);
  });
  LocalExecutor ex;
  const int sum = ex.block_on([&]() -> Task<int> {
    int s = 0;
    while (std::optional<std::optional<int>> v = co_await set.next()) s += **v;
    co_return s;
  }());
  producer.join();
  EXPECT_EQ(sum, 49 * 50 / 2);
}

TEST(JoinAllTest, OutputsComeInInputOrderWhateverTheFinishingOrder) {
  std::vector<pollux::testing::ManualHandle<int>> handles;
  std::vector<pollux::testing::ManualFuture<int>> futures;
  for (int i = 0; i < 5; ++i) {
    auto [f, h] = make_manual_future<int>();
    futures.push_back(std::move(f));
    handles.push_back(std::move(h));
  }
  auto all = join_all(std::move(futures));
  Harness h;
  ASSERT_TRUE(all.poll(h.cx).is_pending());
  for (int i : {3, 0, 4, 1}) handles[i].complete(i * 10);
  ASSERT_TRUE(all.poll(h.cx).is_pending());
  handles[2].complete(20);
  auto p = all.poll(h.cx);
  ASSERT_TRUE(p.is_ready());
  EXPECT_EQ(std::move(p).value(), (std::vector<int>{0, 10, 20, 30, 40}));
}

TEST(JoinAllTest, TenThousandFuturesJoinInOneAwait) {
  std::vector<pollux::ReadyFuture<int>> fs;
  for (int i = 0; i < 10'000; ++i) fs.push_back(ready(i));
  LocalExecutor ex;
  std::vector<int> out = ex.block_on(join_all(std::move(fs)));
  ASSERT_EQ(out.size(), 10'000u);
  for (int i = 0; i < 10'000; ++i) ASSERT_EQ(out[i], i);
}

TEST(JoinSetTest, JoinsInFinishingOrderAndDroppingTheSetAbortsTheRest) {
  LocalExecutor ex;
  Counted::reset();
  ex.block_on([]() -> Task<void> {
    JoinSet<int> set;
    set.spawn([]() -> Task<int> {
      co_await yield_now();
      co_await yield_now();
      co_return 2;
    });
    set.spawn([]() -> Task<int> { co_return 1; });
    std::optional<JoinResult<int>> first = co_await set.join_next();
    EXPECT_TRUE(first && first->ok());
    if (first && first->ok()) EXPECT_EQ(first->value(), 1);
    std::optional<JoinResult<int>> second = co_await set.join_next();
    EXPECT_TRUE(second && second->ok());
    if (second && second->ok()) EXPECT_EQ(second->value(), 2);
    EXPECT_FALSE((co_await set.join_next()).has_value());
  }());
  // Dropping a set with tasks still pending aborts them.
  std::atomic<int> finished{0};
  ex.block_on([&]() -> Task<void> {
    JoinSet<void> set;
    for (int i = 0; i < 10; ++i) {
      set.spawn([&finished, c = Counted(i)]() -> Task<void> {
        co_await pollux::pending<Unit>();
        finished.fetch_add(1);
      });
    }
    co_await yield_now();
  }());
  ex.run_until_idle();
  EXPECT_EQ(finished.load(), 0);
  EXPECT_EQ(Counted::live(), 0) << "the aborted tasks' futures (and captures) were dropped";
}

TEST(JoinSetTest, AbortAllYieldsCancelledResults) {
  LocalExecutor ex;
  ex.block_on([]() -> Task<void> {
    JoinSet<int> set;
    for (int i = 0; i < 3; ++i) {
      set.spawn([]() -> Task<int> {
        co_await pollux::pending<Unit>();
        co_return 0;
      });
    }
    co_await yield_now();
    set.abort_all();
    int cancelled = 0;
    while (std::optional<JoinResult<int>> r = co_await set.join_next()) {
      if (r->is_cancelled()) ++cancelled;
    }
    EXPECT_EQ(cancelled, 3);
  }());
}

}  // namespace
}  // namespace pollux::sync
