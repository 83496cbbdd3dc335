// EventCounts (examples/event_counts.h) on real threads: adds from many
// threads at once, more threads than shards, an exited thread's shard
// passed on with its counts, and an add made while a thread exits. Every
// total is exact; a shard two threads wrote at once would lose adds (and
// TSan would not see it: the shard is atomic), so the totals are the test.
#include "examples/event_counts.h"

#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace pollux::examples {
namespace {

using detail::kShards;
using detail::this_thread_shard;

TEST(EventCountsTest, AddsFromManyThreadsAtOnceAreAllCounted) {
  constexpr int kThreads = 8;
  constexpr uint64_t kAdds = 200'000;
  EventCounts<2> counts;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (uint64_t i = 0; i < kAdds; ++i) {
        counts.add(0, 1);
        counts.add(1, 3);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counts.total(0), kThreads * kAdds);
  EXPECT_EQ(counts.total(1), 3 * kThreads * kAdds);
}

TEST(EventCountsTest, ThreadsBeyondTheShardsShareTheOverflowAndLoseNothing) {
  constexpr int kThreads = kShards + 16;
  constexpr uint64_t kAdds = 2'000;
  EventCounts<1> counts;
  std::latch all_hold_a_shard(kThreads);  // every thread is alive at once
  std::latch start(kThreads);
  std::vector<uint32_t> shards(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      counts.add(0, 1);  // claims a shard, or finds none
      shards[t] = this_thread_shard();
      all_hold_a_shard.arrive_and_wait();
      start.arrive_and_wait();
      for (uint64_t i = 1; i < kAdds; ++i) counts.add(0, 1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counts.total(0), kThreads * kAdds);
  int overflowing = 0;
  for (uint32_t s : shards) overflowing += s == detail::ShardClaims::kNone;
  EXPECT_GE(overflowing, kThreads - static_cast<int>(kShards));
}

TEST(EventCountsTest, AnExitedThreadsShardGoesToTheNextThreadWithItsCounts) {
  EventCounts<1> counts;
  counts.add(0, 1);  // this thread holds its own shard meanwhile
  uint32_t first = 0;
  std::thread([&] {
    counts.add(0, 5);
    first = this_thread_shard();
  }).join();
  ASSERT_LT(first, kShards);
  uint32_t second = 0;
  std::thread([&] {
    counts.add(0, 7);
    second = this_thread_shard();
  }).join();
  // The lowest free index: the one the first thread gave back.
  EXPECT_EQ(second, first);
  EXPECT_EQ(counts.total(0), 13u);
}

// Adds in its destructor, which runs during its thread's exit.
struct AddsOnExit {
  EventCounts<1>* counts = nullptr;
  ~AddsOnExit() {
    if (counts != nullptr) counts->add(0, 100);
  }
};

TEST(EventCountsTest, AnAddDuringItsThreadsExitIsCounted) {
  EventCounts<1> counts;
  std::thread([&] {
    // Constructed before the thread's shard is claimed, so destroyed after
    // the shard is given back: its add goes to the overflow.
    thread_local AddsOnExit on_exit;
    on_exit.counts = &counts;
    counts.add(0, 1);
  }).join();
  EXPECT_EQ(counts.total(0), 101u);
}

}  // namespace
}  // namespace pollux::examples
