// Tests for LocalQueue (local_queue.h), the multi-thread worker's bounded
// run queue of stealable tasks. What they prove:
//
// On one thread, for any capacity (256, or 4 under --config=model):
// - push_back/pop are FIFO, across many wrap-arounds of the ring; len() and
//   remaining_slots() count exactly; pop on an empty queue returns null.
// - push_back on a full ring returns true and appends to `overflow` exactly
//   the earlier half of the ring, in order, then the new task, after
//   whatever `overflow` already held; the ring keeps the later half in
//   order, and its freed slots can be filled again. A push that fits
//   returns false and leaves `overflow` alone.
// - steal_into takes ceil(len / 2) tasks from the front, in order: the last
//   one stolen is returned and the others are queued in the stealer's queue
//   (after what it held); the victim keeps the rest in order and gets every
//   stolen slot back (both of the steal's CASes happened). Stealing from an
//   empty queue returns null and changes nothing; a stealer whose own queue
//   is more than half full is refused, and one exactly half full is not.
//
// On real threads (run it under --config=tsan too): one owner pushes
// 1,000,000 distinct tasks, popping in random bursts (fixed seed), while
// two stealers steal from it (and now and then from each other) into their
// own queues and drain them; overflow batches are collected by the owner.
// Every task is seen exactly once (a per-task counter, and the consumers'
// counts add up to the total), none is lost, nothing else comes out, the
// owner pops in push order, every overflow batch is in push order and ends
// with the task being pushed, and steals happened. Bounded by the task count,
// a 60 s deadline the threads check and a watchdog that aborts. Each task
// carries a plain field the owner writes before pushing and its consumer
// reads and overwrites: TSan reports a hand-off that lacks a release/acquire
// edge, or a task two threads got.
#include "executor/multi_thread/local_queue.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "executor/internal/task.h"
#include "executor/internal/task_list.h"
#include "gtest/gtest.h"
#include "tests/watchdog.h"

namespace pollux::detail {
namespace {

constexpr uint32_t kCap = LocalQueue::kCapacity;

// Distinct task headers; the queue only stores the pointers (and TaskList
// links them through queue_next).
class Tasks {
 public:
  explicit Tasks(size_t n) : n_(n), headers_(new Header[n]) {}
  Header* operator[](size_t i) const {
    EXPECT_LT(i, n_);
    return &headers_[i];
  }
  // The index of `h`, or -1 when it is not one of these.
  int64_t index_of(const Header* h) const {
    if (h < headers_.get() || h >= headers_.get() + n_) return -1;
    return h - headers_.get();
  }

 private:
  size_t n_;
  std::unique_ptr<Header[]> headers_;
};

std::vector<int64_t> drain(TaskList& list, const Tasks& tasks) {
  std::vector<int64_t> out;
  while (Header* h = list.pop_front()) out.push_back(tasks.index_of(h));
  return out;
}

std::vector<int64_t> drain(LocalQueue& q, const Tasks& tasks) {
  std::vector<int64_t> out;
  while (Header* h = q.pop()) out.push_back(tasks.index_of(h));
  return out;
}

std::vector<int64_t> range(int64_t first, int64_t last) {  // [first, last)
  std::vector<int64_t> out;
  for (int64_t i = first; i < last; ++i) out.push_back(i);
  return out;
}

// Pushes tasks [first, last) and expects each to fit in the ring.
void push_range(LocalQueue& q, const Tasks& tasks, int64_t first, int64_t last) {
  TaskList overflow;
  for (int64_t i = first; i < last; ++i) {
    ASSERT_FALSE(q.push_back(tasks[i], overflow)) << "task " << i << " overflowed";
  }
  ASSERT_TRUE(overflow.empty());
}

// ---- One thread ----

TEST(LocalQueueTest, CapacityIsAPowerOfTwoOfAtLeastFour) {
  static_assert(kCap >= 4 && (kCap & (kCap - 1)) == 0);
#if defined(POLLUX_MODEL)
  EXPECT_EQ(kCap, 4u);
#else
  EXPECT_EQ(kCap, 256u);
#endif
}

TEST(LocalQueueTest, EmptyQueue) {
  LocalQueue q;
  EXPECT_EQ(q.len(), 0u);
  EXPECT_TRUE(q.is_empty());
  EXPECT_EQ(q.remaining_slots(), kCap);
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_EQ(q.len(), 0u);
}

TEST(LocalQueueTest, PushThenPopIsFifoAndCountsExactly) {
  Tasks tasks(kCap);
  LocalQueue q;
  TaskList overflow;
  for (uint32_t i = 0; i < kCap; ++i) {
    EXPECT_FALSE(q.push_back(tasks[i], overflow));
    EXPECT_EQ(q.len(), i + 1);
    EXPECT_FALSE(q.is_empty());
    EXPECT_EQ(q.remaining_slots(), kCap - i - 1);
  }
  EXPECT_TRUE(overflow.empty());
  for (uint32_t i = 0; i < kCap; ++i) {
    EXPECT_EQ(q.pop(), tasks[i]) << "pop " << i;
    EXPECT_EQ(q.len(), kCap - i - 1);
    EXPECT_EQ(q.remaining_slots(), i + 1);
  }
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_TRUE(q.is_empty());
}

TEST(LocalQueueTest, FifoAcrossManyWrapArounds) {
  // Keeps 3 tasks queued while 20 rings' worth go through it.
  const uint32_t total = 20 * kCap;
  Tasks tasks(total);
  LocalQueue q;
  TaskList overflow;
  uint32_t pushed = 0;
  uint32_t popped = 0;
  while (popped < total) {
    while (pushed < total && pushed - popped < 3) {
      ASSERT_FALSE(q.push_back(tasks[pushed++], overflow));
    }
    ASSERT_EQ(q.len(), pushed - popped);
    ASSERT_EQ(q.remaining_slots(), kCap - (pushed - popped));
    ASSERT_EQ(q.pop(), tasks[popped]) << "pop " << popped;
    ++popped;
  }
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_TRUE(overflow.empty());
}

TEST(LocalQueueTest, FullRingOverflowsTheEarlierHalfAndTheNewTaskInOrder) {
  Tasks tasks(kCap + 1);
  LocalQueue q;
  push_range(q, tasks, 0, kCap);
  EXPECT_EQ(q.remaining_slots(), 0u);
  TaskList overflow;
  EXPECT_TRUE(q.push_back(tasks[kCap], overflow));
  EXPECT_EQ(overflow.size(), kCap / 2 + 1);
  std::vector<int64_t> want = range(0, kCap / 2);
  want.push_back(kCap);
  EXPECT_EQ(drain(overflow, tasks), want);
  EXPECT_EQ(q.len(), kCap / 2);
  EXPECT_EQ(q.remaining_slots(), kCap / 2);
  EXPECT_EQ(drain(q, tasks), range(kCap / 2, kCap));
}

TEST(LocalQueueTest, OverflowAppendsAfterWhatTheListHeld) {
  Tasks tasks(kCap + 2);
  LocalQueue q;
  push_range(q, tasks, 0, kCap);
  TaskList overflow;
  overflow.push_back(tasks[kCap + 1]);  // already waiting for the inject queue
  EXPECT_TRUE(q.push_back(tasks[kCap], overflow));
  std::vector<int64_t> want = {kCap + 1};
  for (int64_t i : range(0, kCap / 2)) want.push_back(i);
  want.push_back(kCap);
  EXPECT_EQ(drain(overflow, tasks), want);
}

TEST(LocalQueueTest, OverflowOfAWrappedRingTakesTheOldestInOrderAndFreesTheirSlots) {
  // Start the ring off-centre so the overflowed half wraps around its end.
  const uint32_t offset = kCap / 2 + 1;
  const uint32_t total = offset + kCap + 1 + kCap / 2;
  Tasks tasks(total);
  LocalQueue q;
  push_range(q, tasks, 0, offset);
  EXPECT_EQ(drain(q, tasks), range(0, offset));
  push_range(q, tasks, offset, offset + kCap);
  TaskList overflow;
  EXPECT_TRUE(q.push_back(tasks[offset + kCap], overflow));
  std::vector<int64_t> want = range(offset, offset + kCap / 2);
  want.push_back(offset + kCap);
  EXPECT_EQ(drain(overflow, tasks), want);
  // The freed half takes new tasks without overflowing, behind the kept half.
  push_range(q, tasks, offset + kCap + 1, total);
  EXPECT_EQ(q.remaining_slots(), 0u);
  std::vector<int64_t> rest = range(offset + kCap / 2, offset + kCap);
  for (int64_t i : range(offset + kCap + 1, total)) rest.push_back(i);
  EXPECT_EQ(drain(q, tasks), rest);
}

TEST(LocalQueueTest, PushThatFitsLeavesOverflowAlone) {
  Tasks tasks(kCap + 1);
  LocalQueue q;
  push_range(q, tasks, 0, kCap - 1);
  TaskList overflow;
  overflow.push_back(tasks[kCap]);
  EXPECT_FALSE(q.push_back(tasks[kCap - 1], overflow));  // the last free slot
  EXPECT_EQ(overflow.size(), 1u);
  EXPECT_EQ(q.len(), kCap);
}

TEST(LocalQueueTest, StealTakesTheCeilOfHalfAndReturnsTheLastStolen) {
  for (uint32_t k = 1; k <= kCap; ++k) {
    SCOPED_TRACE(::testing::Message() << k << " queued");
    Tasks tasks(k);
    LocalQueue src;
    LocalQueue dst;
    push_range(src, tasks, 0, k);
    const uint32_t n = k - k / 2;  // ceil(k / 2)
    Header* run = src.steal_into(dst);
    EXPECT_EQ(run, tasks[n - 1]);
    EXPECT_EQ(dst.len(), n - 1);
    EXPECT_EQ(src.len(), k - n);
    // Both CASes done: the victim has every stolen slot back.
    EXPECT_EQ(src.remaining_slots(), kCap - (k - n));
    EXPECT_EQ(dst.remaining_slots(), kCap - (n - 1));
    EXPECT_EQ(drain(dst, tasks), range(0, n - 1));
    EXPECT_EQ(drain(src, tasks), range(n, k));
  }
}

TEST(LocalQueueTest, StealFromEmptyReturnsNullAndChangesNothing) {
  Tasks tasks(1);
  LocalQueue src;
  LocalQueue dst;
  push_range(dst, tasks, 0, 1);
  EXPECT_EQ(src.steal_into(dst), nullptr);
  EXPECT_EQ(src.len(), 0u);
  EXPECT_EQ(src.remaining_slots(), kCap);
  EXPECT_EQ(dst.len(), 1u);
  EXPECT_EQ(drain(dst, tasks), range(0, 1));
  // A queue emptied by pops is empty for stealers too.
  push_range(src, tasks, 0, 1);
  EXPECT_EQ(src.pop(), tasks[0]);
  EXPECT_EQ(src.steal_into(dst), nullptr);
  EXPECT_TRUE(dst.is_empty());
}

TEST(LocalQueueTest, StealIsRefusedWhenTheStealersQueueIsMoreThanHalfFull) {
  Tasks tasks(2 * kCap);
  LocalQueue src;
  LocalQueue dst;
  push_range(src, tasks, 0, kCap);
  push_range(dst, tasks, kCap, kCap + kCap / 2 + 1);
  EXPECT_EQ(src.steal_into(dst), nullptr);
  EXPECT_EQ(src.len(), kCap);
  EXPECT_EQ(src.remaining_slots(), 0u);
  EXPECT_EQ(dst.len(), kCap / 2 + 1);
  // Exactly half full is allowed: it takes half of the full victim.
  EXPECT_EQ(dst.pop(), tasks[kCap]);
  ASSERT_EQ(dst.len(), kCap / 2);
  EXPECT_EQ(src.steal_into(dst), tasks[kCap / 2 - 1]);
  std::vector<int64_t> want = range(kCap + 1, kCap + kCap / 2 + 1);
  for (int64_t i : range(0, kCap / 2 - 1)) want.push_back(i);
  EXPECT_EQ(drain(dst, tasks), want);
  EXPECT_EQ(drain(src, tasks), range(kCap / 2, kCap));
}

TEST(LocalQueueTest, StealsFromAndIntoWrappedRingsKeepOrder) {
  // Both rings start off-centre; three steals in a row from one victim,
  // each into a stealer's queue that is drained between steals.
  const uint32_t off = kCap - 1;
  Tasks tasks(off + kCap);
  LocalQueue src;
  LocalQueue dst;
  push_range(src, tasks, 0, off);
  EXPECT_EQ(drain(src, tasks), range(0, off));
  // dst's tail is moved by pushes and pops of tasks it does not keep.
  push_range(dst, tasks, 0, off);
  EXPECT_EQ(drain(dst, tasks), range(0, off));
  push_range(src, tasks, off, off + kCap);
  int64_t next = off;
  uint32_t left = kCap;
  while (left > 0) {
    const uint32_t n = left - left / 2;
    EXPECT_EQ(src.steal_into(dst), tasks[next + n - 1]);
    EXPECT_EQ(drain(dst, tasks), range(next, next + n - 1));
    next += n;
    left -= n;
    EXPECT_EQ(src.len(), left);
    EXPECT_EQ(src.remaining_slots(), kCap - left);
  }
  EXPECT_EQ(src.steal_into(dst), nullptr);
}

TEST(LocalQueueTest, StolenIntoQueueCanItselfBeStolenFrom) {
  Tasks tasks(kCap);
  LocalQueue a;
  LocalQueue b;
  LocalQueue c;
  push_range(a, tasks, 0, kCap);
  // b gets kCap/2 - 1 queued plus one to run; c steals half of b's.
  EXPECT_EQ(a.steal_into(b), tasks[kCap / 2 - 1]);
  const uint32_t in_b = kCap / 2 - 1;
  ASSERT_EQ(b.len(), in_b);
  const uint32_t n = in_b - in_b / 2;
  EXPECT_EQ(b.steal_into(c), tasks[n - 1]);
  EXPECT_EQ(drain(c, tasks), range(0, n - 1));
  EXPECT_EQ(drain(b, tasks), range(n, in_b));
  EXPECT_EQ(drain(a, tasks), range(kCap / 2, kCap));
}

// ---- Real threads ----

constexpr uint32_t kStressTasks = 1'000'000;
constexpr uint32_t kUnhandedOver = 0xFFFF'FFFE;  // Header::home before the owner's push
constexpr uint32_t kConsumed = 0xFFFF'FFFF;      // Header::home once consumed

// What every consumer of a task does, on whichever thread got it: it owns
// the task now, so plain accesses to it are safe only if the queue handed
// it over with a happens-before edge (TSan checks).
class Ledger {
 public:
  explicit Ledger(const Tasks& tasks)
      : tasks_(tasks), seen_(new std::atomic<uint8_t>[kStressTasks]) {
    for (uint32_t i = 0; i < kStressTasks; ++i) seen_[i].store(0, std::memory_order_relaxed);
  }
  // Returns the task's index; records an error for a task that is not one
  // of ours or whose payload was not the one pushed.
  int64_t consume(Header* h) {
    const int64_t i = tasks_.index_of(h);
    if (i < 0) {
      foreign_.fetch_add(1, std::memory_order_relaxed);
      return -1;
    }
    if (h->home != static_cast<uint32_t>(i)) bad_payload_.fetch_add(1, std::memory_order_relaxed);
    h->home = kConsumed;  // a plain write: the consumer owns the task
    seen_[i].fetch_add(1, std::memory_order_relaxed);
    return i;
  }
  uint8_t seen(uint32_t i) const { return seen_[i].load(std::memory_order_relaxed); }
  uint64_t foreign() const { return foreign_.load(); }
  uint64_t bad_payload() const { return bad_payload_.load(); }

 private:
  const Tasks& tasks_;
  std::unique_ptr<std::atomic<uint8_t>[]> seen_;
  std::atomic<uint64_t> foreign_{0};
  std::atomic<uint64_t> bad_payload_{0};
};

struct OwnerResult {
  uint64_t popped = 0;
  uint64_t overflow_batches = 0;
  uint64_t overflowed = 0;
  uint64_t out_of_order = 0;  // pops or overflow batches not in push order
};

struct StealerResult {
  uint64_t steals = 0;    // successful steal_into calls
  uint64_t consumed = 0;  // tasks it ran: returned by a steal or popped from its own queue
};

TEST(LocalQueueStressTest, EveryTaskIsSeenExactlyOnce) {
  testing::Watchdog dog(std::chrono::seconds(120), "the local queue stress test");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  Tasks tasks(kStressTasks);
  for (uint32_t i = 0; i < kStressTasks; ++i) tasks[i]->home = kUnhandedOver;
  Ledger ledger(tasks);
  LocalQueue owner_q;
  LocalQueue stealer_q[2];
  std::atomic<bool> owner_done{false};
  std::atomic<bool> timed_out{false};
  // The owner starts once both stealers are running, so they steal during
  // its whole run (a start line, not a sleep).
  std::atomic<int> stealers_running{0};

  OwnerResult owner_result;
  std::thread owner([&] {
    while (stealers_running.load(std::memory_order_acquire) < 2) std::this_thread::yield();
    std::mt19937 rng(20240601);
    std::uniform_int_distribution<uint32_t> burst(1, kCap + kCap / 2);
    OwnerResult& r = owner_result;
    int64_t last_popped = -1;
    auto pop_some = [&](uint32_t count) {
      for (uint32_t j = 0; j < count; ++j) {
        Header* h = owner_q.pop();
        if (h == nullptr) return;
        const int64_t i = ledger.consume(h);
        if (i <= last_popped) ++r.out_of_order;
        last_popped = i;
        ++r.popped;
      }
    };
    TaskList overflow;
    uint32_t next = 0;
    while (next < kStressTasks) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        break;
      }
      // A burst of pushes (sometimes more than a ring's worth), then fewer
      // pops on average, so the ring fills, overflows and has work to steal.
      for (uint32_t b = burst(rng); b > 0 && next < kStressTasks; --b, ++next) {
        Header* t = tasks[next];
        t->home = next;  // the payload, written before the hand-off
        if (owner_q.push_back(t, overflow)) {
          ++r.overflow_batches;
          int64_t prev = -1;
          size_t batch = 0;
          while (Header* h = overflow.pop_front()) {
            const int64_t i = ledger.consume(h);
            if (i <= prev) ++r.out_of_order;
            prev = i;
            ++batch;
          }
          if (prev != static_cast<int64_t>(next)) ++r.out_of_order;  // the new task comes last
          r.overflowed += batch;
        }
      }
      pop_some(burst(rng) * 2 / 3);
    }
    pop_some(UINT32_MAX);
    owner_done.store(true, std::memory_order_release);
  });

  StealerResult stealer_result[2];
  std::vector<std::thread> stealers;
  for (int s = 0; s < 2; ++s) {
    stealers.emplace_back([&, s] {
      stealers_running.fetch_add(1, std::memory_order_release);
      std::mt19937 rng(7 + s);
      StealerResult& r = stealer_result[s];
      LocalQueue& mine = stealer_q[s];
      LocalQueue& other = stealer_q[1 - s];
      for (;;) {
        const bool done = owner_done.load(std::memory_order_acquire);
        if (done && owner_q.is_empty() && mine.is_empty()) break;
        if (std::chrono::steady_clock::now() > deadline) {
          timed_out = true;
          break;
        }
        // Mostly from the owner; one steal in 8 from the other stealer
        // (whose queue is then both a victim and a steal destination).
        LocalQueue& victim = rng() % 8 == 0 ? other : owner_q;
        bool progress = false;
        if (Header* run = victim.steal_into(mine)) {
          ++r.steals;
          ledger.consume(run);
          ++r.consumed;
          progress = true;
        }
        // Run two of its own per round, so its queue stays stealable and
        // steal_into (refused above half full) keeps being called.
        for (int j = 0; j < 2; ++j) {
          Header* h = mine.pop();
          if (h == nullptr) break;
          ledger.consume(h);
          ++r.consumed;
          progress = true;
        }
        if (!progress) std::this_thread::yield();
      }
    });
  }

  owner.join();
  for (auto& t : stealers) t.join();
  ASSERT_FALSE(timed_out.load()) << "did not finish within 60 s";

  // Whatever one stealer left in its queue after the other's last steal
  // from it (all threads joined: this thread may pop them).
  uint64_t left_over = 0;
  for (LocalQueue& q : stealer_q) {
    while (Header* h = q.pop()) {
      ledger.consume(h);
      ++left_over;
    }
  }
  EXPECT_EQ(owner_q.pop(), nullptr);
  EXPECT_EQ(owner_q.len(), 0u);

  EXPECT_EQ(ledger.foreign(), 0u) << "a pointer that is not a task came out of a queue";
  EXPECT_EQ(ledger.bad_payload(), 0u) << "a task's payload was not the one pushed";
  uint64_t lost = 0;
  uint64_t duplicated = 0;
  uint64_t unmarked = 0;
  for (uint32_t i = 0; i < kStressTasks; ++i) {
    const uint8_t n = ledger.seen(i);
    if (n == 0) ++lost;
    if (n > 1) ++duplicated;
    if (tasks[i]->home != kConsumed) ++unmarked;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(unmarked, lost) << "a consumer's write to its task is not visible after the joins";
  EXPECT_EQ(owner_result.out_of_order, 0u);
  EXPECT_GT(owner_result.overflow_batches, 0u);
  uint64_t steals = 0;
  uint64_t stolen = 0;
  for (const StealerResult& r : stealer_result) {
    steals += r.steals;
    stolen += r.consumed;
  }
  // Each consumer's count, summed: no task was consumed twice unnoticed.
  EXPECT_EQ(owner_result.popped + owner_result.overflowed + stolen + left_over, kStressTasks);
  // Two threads stealing for the owner's whole run of a million pushes:
  // none succeeding would mean steal_into never works concurrently.
  EXPECT_GT(steals, 0u);
  std::printf("[stress] %u tasks: owner popped %llu, overflowed %llu in %llu batches; "
              "%llu steals, stealers ran %llu, %llu left over\n",
              kStressTasks, static_cast<unsigned long long>(owner_result.popped),
              static_cast<unsigned long long>(owner_result.overflowed),
              static_cast<unsigned long long>(owner_result.overflow_batches),
              static_cast<unsigned long long>(steals), static_cast<unsigned long long>(stolen),
              static_cast<unsigned long long>(left_over));
}

}  // namespace
}  // namespace pollux::detail
