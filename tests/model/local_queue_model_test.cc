// Models of the multi-thread worker's run queue, detail::LocalQueue
// (executor/multi_thread/local_queue.h), on the real code with its model
// capacity of 4 slots, so a handful of tasks fills it, overflows it and
// leaves halves to steal:
// - the owner pushes and pops while two stealers each steal once into their
//   own queue (3 actors); their queues are drained at the end;
// - the owner pushes past a full ring (overflow to the inject list: half
//   the ring plus the new task, or the new task alone while a steal is in
//   progress), pops and pushes again, while a stealer steals and drains its
//   own queue twice;
// - a stealer drains the queue it stole into while a second stealer steals
//   from that queue (a stolen task handed on by the first stealer's tail
//   store; the only model that fails when that store is relaxed).
// Checked in every execution: every task is delivered exactly once (to the
// owner's pop, a stealer's returned task, a stealer's own queue, or the
// overflow list), none is lost, nothing else comes out; every task carries
// a RaceCell payload the owner writes before pushing and its consumer reads
// and overwrites, and the ring's slots are RaceCells, so a hand-off without
// a happens-before edge, or a slot reused while a stealer copies it, is a
// reported data race; orders: the owner pops in push order, an overflow
// batch is in push order and ends with the task pushed, a steal's queued
// tasks precede (in push order) the one it returns; all queues end empty.
// Across the executions both overflow shapes, and a second-hand steal, are
// reached.
//
// The first two scenarios on the planted copy (tests/model/planted/) whose steal
// releases the slots with its first CAS, before copying them, must be a
// data race.
#include <atomic>
#include <cstdint>

#include "executor/internal/task.h"
#include "executor/internal/task_list.h"
#include "executor/multi_thread/local_queue.h"
#include "future/internal/race_cell.h"
#include "future/internal/thread.h"
#include "tests/model/model_test.h"
#include "tests/model/planted/one_cas_steal_local_queue.h"

namespace pollux::model {
namespace {

using detail::Header;
using detail::LocalQueue;
using detail::TaskList;

class LocalQueueModelTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

#if defined(POLLUX_MODEL)
static_assert(LocalQueue::kCapacity == 4, "the models are sized for 4 slots");
#endif
constexpr uint32_t kHalf = LocalQueue::kCapacity / 2;
constexpr int kMaxTasks = 8;

// The tasks of one execution and where each went. Made afresh by each
// execution's body (thread 0) before it starts the other threads.
class Tasks {
 public:
  explicit Tasks(int n) : n_(n) {
    for (auto& d : delivered_) d.store(0, std::memory_order_relaxed);
  }
  Header* at(int i) { return &headers_[i]; }
  int index_of(const Header* h) const {
    const int i = static_cast<int>(h - headers_);
    MODEL_ASSERT(h >= headers_ && i < n_);  // a pointer that is no task of ours
    return i;
  }
  // Owner: the task's payload, written before it is pushed.
  Header* make(int i) {
    payload_[i].get_mut() = 100 + i;
    return at(i);
  }
  // Whoever got `h` runs it: it owns the task now. Returns its index.
  int deliver(Header* h) {
    MODEL_ASSERT(h != nullptr);
    const int i = index_of(h);
    MODEL_ASSERT(payload_[i].get() == 100 + i);  // pushed, and handed over with it
    payload_[i].get_mut() = -1;
    MODEL_ASSERT(delivered_[i].fetch_add(1, std::memory_order_relaxed) == 0);  // not twice
    return i;
  }
  void expect_all_delivered_once() const {
    for (int i = 0; i < n_; ++i) MODEL_ASSERT(delivered_[i].load(std::memory_order_relaxed) == 1);
  }

 private:
  int n_;
  Header headers_[kMaxTasks];
  detail::RaceCell<int> payload_[kMaxTasks];
  std::atomic<int> delivered_[kMaxTasks];
};

// Overflow batch sizes seen over all executions of one check (not an input
// of any execution, so the model stays deterministic).
std::atomic<uint64_t> g_batches_of_one{0};
std::atomic<uint64_t> g_batches_of_half_plus_one{0};

// Owner: pushes task `i`; a batch that overflows goes to the "inject
// queue", i.e. is delivered here, and must be in push order, end with `i`,
// and be the half plus `i` or (a steal in progress) `i` alone.
template <class Q>
void owner_push(Q& q, Tasks& tasks, int i) {
  TaskList overflow;
  if (!q.push_back(tasks.make(i), overflow)) {
    MODEL_ASSERT(overflow.empty());
    return;
  }
  const size_t n = overflow.size();
  MODEL_ASSERT(n == 1 || n == kHalf + 1);
  (n == 1 ? g_batches_of_one : g_batches_of_half_plus_one).fetch_add(1, std::memory_order_relaxed);
  int prev = -1;
  while (Header* h = overflow.pop_front()) {
    const int got = tasks.deliver(h);
    MODEL_ASSERT(got > prev);
    prev = got;
  }
  MODEL_ASSERT(prev == i);
}

// Owner: pops one task if there is one; they come in push order.
template <class Q>
void owner_pop(Q& q, Tasks& tasks, int& last_popped) {
  if (Header* h = q.pop()) {
    const int got = tasks.deliver(h);
    MODEL_ASSERT(got > last_popped);
    last_popped = got;
  }
}

// A stealer: one steal from `victim` into its own queue `mine`; it runs the
// returned task. Returns its index, -1 when nothing was stolen.
template <class Q>
int steal_once(Q& victim, Q& mine, Tasks& tasks) {
  Header* h = victim.steal_into(mine);
  return h == nullptr ? -1 : tasks.deliver(h);
}

// Then its queue is drained (by it, or after it was joined): the queued
// ones precede the returned one in push order.
template <class Q>
void drain_stolen(Q& mine, int run, Tasks& tasks) {
  int prev = -1;
  while (Header* h = mine.pop()) {
    const int got = tasks.deliver(h);
    MODEL_ASSERT(got > prev && got < run);
    prev = got;
  }
  MODEL_ASSERT(mine.len() == 0);
}

// ---- (a) The owner pushes and pops while two stealers steal ----

template <class Q>
void owner_and_two_stealers() {
  constexpr int kTasks = 5;
  Tasks tasks(kTasks);
  Q owner_q;
  Q mine[2];
  int run[2] = {-1, -1};
  detail::Thread s0([&] { run[0] = steal_once(owner_q, mine[0], tasks); });
  detail::Thread s1([&] { run[1] = steal_once(owner_q, mine[1], tasks); });
  int last_popped = -1;
  // Fill the ring, push a fifth (into a slot a steal freed, or overflowing
  // half the ring when nothing was stolen yet), run one.
  for (int i = 0; i < 5; ++i) owner_push(owner_q, tasks, i);
  owner_pop(owner_q, tasks, last_popped);
  s0.join();
  s1.join();
  // The stealers' queues, drained here: each one's pops are owner-side
  // operations nobody races with (they steal only from owner_q), so doing
  // them on the stealers' threads would only multiply the interleavings.
  for (int k = 0; k < 2; ++k) drain_stolen(mine[k], run[k], tasks);
  for (;;) {
    Header* h = owner_q.pop();
    if (h == nullptr) break;
    const int got = tasks.deliver(h);
    MODEL_ASSERT(got > last_popped);
    last_popped = got;
  }
  MODEL_ASSERT(owner_q.len() == 0);
  tasks.expect_all_delivered_once();
}

TEST_F(LocalQueueModelTest, OwnerPushesAndPopsWhileTwoStealersSteal) {
  POLLUX_MODEL_ONLY();
  const Stats s = check([] { owner_and_two_stealers<LocalQueue>(); },
                        {.name = "LocalQueue owner push/pop + 2 stealers"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
}

// ---- (b) Overflow to the inject list when full, racing a stealer ----

template <class Q>
void overflow_racing_a_stealer() {
  constexpr int kTasks = 7;
  Tasks tasks(kTasks);
  Q owner_q;
  Q mine;
  // Two rounds of steal and drain: the second may find the ring refilled
  // or just overflowed.
  detail::Thread stealer([&] {
    for (int round = 0; round < 2; ++round) {
      drain_stolen(mine, steal_once(owner_q, mine, tasks), tasks);
    }
  });
  // Five pushes fill the ring and overflow once unless the steal made room;
  // then it runs one and pushes two more into the ring the steal or the
  // overflow emptied (a slot a stealer copies must not be reused early).
  for (int i = 0; i < 5; ++i) owner_push(owner_q, tasks, i);
  int last_popped = -1;
  owner_pop(owner_q, tasks, last_popped);
  owner_push(owner_q, tasks, 5);
  owner_push(owner_q, tasks, 6);
  stealer.join();
  for (;;) {
    Header* h = owner_q.pop();
    if (h == nullptr) break;
    const int got = tasks.deliver(h);
    MODEL_ASSERT(got > last_popped);
    last_popped = got;
  }
  MODEL_ASSERT(owner_q.len() == 0);
  tasks.expect_all_delivered_once();
}

TEST_F(LocalQueueModelTest, OverflowWhenFullRacesAStealer) {
  POLLUX_MODEL_ONLY();
  g_batches_of_one = 0;
  g_batches_of_half_plus_one = 0;
  const Stats s = check([] { overflow_racing_a_stealer<LocalQueue>(); },
                        {.name = "LocalQueue overflow + stealer"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
  // Both overflow paths were reached: half of a full ring plus the task, and
  // the task alone while the stealer was between its two CASes.
  EXPECT_GT(g_batches_of_half_plus_one.load(), 0u);
  EXPECT_GT(g_batches_of_one.load(), 0u);
}

// ---- A stealer's queue stolen from in turn ----

// Executions in which the second stealer got a task out of the first's queue.
std::atomic<uint64_t> g_second_hand_steals{0};

template <class Q>
void steal_from_a_stealer() {
  constexpr int kTasks = 4;
  Tasks tasks(kTasks);
  Q owner_q;
  Q q1;
  Q q2;
  for (int i = 0; i < kTasks; ++i) owner_push(owner_q, tasks, i);
  // s1 steals two (runs one, queues one) and drains its queue while s2
  // steals from that queue: the copy into q1 is published to s2 only by
  // q1's tail store, and s1's pop races s2's claim.
  detail::Thread s1([&] { drain_stolen(q1, steal_once(owner_q, q1, tasks), tasks); });
  detail::Thread s2([&] {
    const int run = steal_once(q1, q2, tasks);
    if (run >= 0) g_second_hand_steals.fetch_add(1, std::memory_order_relaxed);
    drain_stolen(q2, run, tasks);
  });
  int last_popped = -1;
  owner_pop(owner_q, tasks, last_popped);
  s1.join();
  s2.join();
  for (;;) {
    Header* h = owner_q.pop();
    if (h == nullptr) break;
    const int got = tasks.deliver(h);
    MODEL_ASSERT(got > last_popped);
    last_popped = got;
  }
  MODEL_ASSERT(owner_q.len() == 0 && q1.len() == 0 && q2.len() == 0);
  tasks.expect_all_delivered_once();
}

TEST_F(LocalQueueModelTest, AStealersQueueIsStolenFromWhileItDrainsIt) {
  POLLUX_MODEL_ONLY();
  g_second_hand_steals = 0;
  const Stats s = check([] { steal_from_a_stealer<LocalQueue>(); },
                        {.name = "LocalQueue steal from a stealer"});
  EXPECT_TRUE(s.complete);
  EXPECT_GT(s.executions, 1u);
  EXPECT_GT(g_second_hand_steals.load(), 0u);  // the scenario was reached
}

// ---- (c) The planted one-CAS steal ----

// The race it must report: the owner's push into a ring slot against the
// stealer's copy out of it, both in the planted queue (not a task payload).
constexpr const char* kSlotRace =
    "data race on RaceCell.*planted/one_cas_steal_local_queue\\.h:[0-9]+ and "
    "[a-z]+ by T[0-9] at tests/model/planted/one_cas_steal_local_queue\\.h";

TEST_F(LocalQueueModelTest, PlantedOneCasStealWithTwoStealersIsADataRace) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { owner_and_two_stealers<planted::OneCasStealLocalQueue>(); }),
              ExitsWithFailure(), kSlotRace);
}

TEST_F(LocalQueueModelTest, PlantedOneCasStealRacingOverflowIsADataRace) {
  POLLUX_MODEL_ONLY();
  EXPECT_EXIT(check([] { overflow_racing_a_stealer<planted::OneCasStealLocalQueue>(); }),
              ExitsWithFailure(), kSlotRace);
}

}  // namespace
}  // namespace pollux::model
