#include "timer/timer_wheel.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

namespace pollux::timer {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr uint64_t kSpan = TimerWheel::kMaxSpan;

struct Item : TimerEntry {
  explicit Item(int i = 0) : id(i) {}
  int id;
  std::function<void(Item*)> on_fire;  // optional hook run from the callback
};

std::unique_ptr<Item[]> MakeItems(int n) {
  auto items = std::make_unique<Item[]>(n);
  for (int i = 0; i < n; ++i) items[i].id = i;
  return items;
}

Item* as_item(TimerEntry* e) { return static_cast<Item*>(e); }

// Advances `w` to `t`, returning the ids fired (and running their hooks).
std::vector<int> Advance(TimerWheel& w, uint64_t t) {
  std::vector<int> fired;
  w.advance(t, [&](TimerEntry* e) {
    Item* it = as_item(e);
    EXPECT_FALSE(it->is_registered());
    EXPECT_EQ(w.now(), it->deadline()) << "fired at the wrong tick, id " << it->id;
    fired.push_back(it->id);
    if (it->on_fire) it->on_fire(it);
  });
  return fired;
}

// ---------------------------------------------------------------------------
// Basic bookkeeping.

TEST(TimerWheelTest, SizeEmptyAndIsRegisteredTrackEveryOperation) {
  Item a(1), b(2), c(3);
  TimerWheel w(100);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.now(), 100u);
  EXPECT_FALSE(a.is_registered());

  w.insert(&a, 150);
  EXPECT_TRUE(a.is_registered());
  EXPECT_EQ(a.deadline(), 150u);
  EXPECT_FALSE(w.empty());
  EXPECT_EQ(w.size(), 1u);

  w.insert(&b, 50);  // in the past: effective deadline is now()
  EXPECT_EQ(b.deadline(), 100u);
  w.insert(&c, 100 + (kSpan << 3));  // beyond the range: keeps its deadline
  EXPECT_EQ(c.deadline(), 100 + (kSpan << 3));
  EXPECT_EQ(w.size(), 3u);

  w.cancel(&a);
  EXPECT_FALSE(a.is_registered());
  EXPECT_EQ(w.size(), 2u);
  w.cancel(&a);  // no-op
  EXPECT_EQ(w.size(), 2u);

  EXPECT_THAT(Advance(w, 100), ElementsAre(2));  // due entry fires on a zero advance
  EXPECT_FALSE(b.is_registered());
  EXPECT_EQ(w.size(), 1u);
  EXPECT_THAT(Advance(w, 100), ElementsAre());

  w.insert(&a, 200);  // re-use after cancel
  w.insert(&b, 200);  // re-use after fire
  EXPECT_EQ(w.size(), 3u);
  EXPECT_THAT(Advance(w, 199), ElementsAre());
  EXPECT_EQ(w.now(), 199u);
  EXPECT_THAT(Advance(w, 200), ElementsAre(1, 2));
  EXPECT_EQ(w.size(), 1u);
  EXPECT_TRUE(c.is_registered());

  w.clear();
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(c.is_registered());
  EXPECT_EQ(w.next_expiration(), std::nullopt);

  {
    TimerWheel w2;
    w2.insert(&a, 5);
    EXPECT_TRUE(a.is_registered());
  }  // destroying the wheel unregisters without firing
  EXPECT_FALSE(a.is_registered());
}

TEST(TimerWheelTest, FiresExactlyAtDeadlineAtEveryLevel) {
  for (uint64_t start : {uint64_t{0}, uint64_t{12345}, kSpan - 3, 7 * kSpan + 999}) {
    for (uint64_t delta : {uint64_t{0}, uint64_t{1}, uint64_t{63}, uint64_t{64}, uint64_t{65},
                           uint64_t{4095}, uint64_t{4096}, uint64_t{262144} + 17,
                           uint64_t{1} << 24, (uint64_t{1} << 30) + 5, kSpan / 2 + 1, kSpan - 1,
                           kSpan, kSpan + 1, 3 * kSpan + 7}) {
      Item a(1);
      TimerWheel w(start);
      const uint64_t d = start + delta;
      w.insert(&a, d);
      if (delta > 0) {
        EXPECT_THAT(Advance(w, d - 1), ElementsAre()) << start << "+" << delta;
      }
      EXPECT_TRUE(a.is_registered());
      EXPECT_THAT(Advance(w, d), ElementsAre(1)) << start << "+" << delta;
      EXPECT_TRUE(w.empty());
    }
  }
}

// ---------------------------------------------------------------------------
// Re-entrancy from the fire callback.

TEST(TimerWheelTest, ReinsertFromFire) {
  Item a(1);
  TimerWheel w;
  std::vector<uint64_t> ticks;
  a.on_fire = [&](Item* it) {
    ticks.push_back(w.now());
    if (ticks.size() < 10) w.insert(it, w.now() + 10);
  };
  w.insert(&a, 10);
  Advance(w, 1000);  // one call runs the whole periodic chain
  EXPECT_THAT(ticks, ElementsAre(10, 20, 30, 40, 50, 60, 70, 80, 90, 100));
  EXPECT_FALSE(a.is_registered());
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheelTest, InsertFromFireWithPastDeadlineFiresInSameCall) {
  Item a(1), b(2), c(3), d(4), e(5), f(6);
  TimerWheel w;
  a.on_fire = [&](Item*) {
    w.insert(&b, 3);   // already past: due now (tick 5)
    w.insert(&c, 5);   // == now
    w.insert(&d, 7);   // later but within this advance
    w.insert(&e, 20);  // after this advance
  };
  f.on_fire = [&](Item*) { EXPECT_FALSE(b.is_registered()); };
  w.insert(&a, 5);
  w.insert(&f, 6);
  EXPECT_THAT(Advance(w, 10), ElementsAre(1, 2, 3, 6, 4));
  EXPECT_EQ(b.deadline(), 5u);
  EXPECT_TRUE(e.is_registered());
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(w.now(), 10u);
}

TEST(TimerWheelTest, InsertFromFireAfterEqualDeadlineEntries) {
  // An entry inserted by `fire` with the current tick runs after the entries
  // already due at that tick (it was inserted later).
  Item a(1), b(2), c(3), x(9);
  TimerWheel w;
  a.on_fire = [&](Item*) { w.insert(&x, 0); };
  w.insert(&a, 5);
  w.insert(&b, 5);
  w.insert(&c, 5);
  EXPECT_THAT(Advance(w, 5), ElementsAre(1, 2, 3, 9));
}

TEST(TimerWheelTest, CancelFromFireOfAnotherEntry) {
  Item a(1), b(2), c(3), d(4), e(5);
  TimerWheel w;
  a.on_fire = [&](Item* self) {
    w.cancel(&b);     // due at the same tick, already taken out of its slot
    w.cancel(&c);     // due later in this advance
    w.cancel(self);   // no-op: already unregistered
    w.cancel(&e);     // not registered at all: no-op
    EXPECT_EQ(w.size(), 1u);
  };
  w.insert(&a, 5);
  w.insert(&b, 5);
  w.insert(&c, 8);
  w.insert(&d, 9);
  EXPECT_THAT(Advance(w, 10), ElementsAre(1, 4));
  EXPECT_FALSE(b.is_registered());
  EXPECT_FALSE(c.is_registered());
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheelTest, ThrowingFireLeavesRemainingEntriesDue) {
  Item a(1), b(2), c(3), d(4);
  TimerWheel w;
  a.on_fire = [](Item*) { throw std::runtime_error("boom"); };
  w.insert(&a, 5);
  w.insert(&b, 5);
  w.insert(&c, 5);
  w.insert(&d, 6);
  EXPECT_THROW(Advance(w, 10), std::runtime_error);
  EXPECT_EQ(w.now(), 5u);
  EXPECT_EQ(w.size(), 3u);
  EXPECT_TRUE(b.is_registered());
  EXPECT_EQ(w.next_expiration(), 5u);
  w.cancel(&c);
  EXPECT_THAT(Advance(w, 10), ElementsAre(2, 4));
  EXPECT_TRUE(w.empty());
}

// ---------------------------------------------------------------------------
// Ordering among equal deadlines.

// D has non-zero digits at levels 0..3, so an entry inserted at tick 0 is
// filed at level 3 and cascades 3 -> 2 -> 1 -> 0.
constexpr uint64_t kL1 = 64, kL2 = 64 * 64, kL3 = 64 * 64 * 64;
constexpr uint64_t kD = 3 * kL3 + 5 * kL2 + 7 * kL1 + 9;

TEST(TimerWheelTest, SameDeadlineOrderSurvivesCascadesFromLevel3) {
  std::unique_ptr<Item[]> items = MakeItems(32);
  TimerWheel w;
  int next = 0;
  std::vector<int> expect_d;
  auto add = [&](uint64_t deadline) {
    Item* it = &items[next++];
    w.insert(it, deadline);
    if (deadline == kD) expect_d.push_back(it->id);
    return it->id;
  };
  // Interleave same-deadline entries with neighbours in the same slots.
  add(kD);
  const int before = add(kD - 1);
  add(kD);
  const int after = add(kD + 1);
  // Each step stops at a cascade point or just after it, then inserts more
  // entries with deadline kD, which are filed at ever lower levels.
  for (uint64_t t : {3 * kL3 - 1, 3 * kL3, 3 * kL3 + 1, 3 * kL3 + 5 * kL2, 3 * kL3 + 5 * kL2 + 3,
                     3 * kL3 + 5 * kL2 + 7 * kL1, kD - 2, kD - 1}) {
    const std::vector<int> want = t == kD - 1 ? std::vector<int>{before} : std::vector<int>{};
    EXPECT_EQ(Advance(w, t), want) << t;
    add(kD);
    add(kD);
  }
  w.insert(&items[next++], kD - 1);  // past: due, not part of kD's order
  std::vector<int> expected = {next - 1};
  expected.insert(expected.end(), expect_d.begin(), expect_d.end());
  EXPECT_THAT(Advance(w, kD), ElementsAreArray(expected));
  EXPECT_THAT(Advance(w, kD + 1), ElementsAre(after));
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheelTest, SameDeadlineOrderSurvivesCascadesInOneAdvance) {
  // All cascades (level 3 down to 0) happen inside a single advance call.
  std::unique_ptr<Item[]> items = MakeItems(100);
  TimerWheel w;
  std::vector<int> expected_d, expected_other;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) {
    if (rng() % 3 == 0) {
      w.insert(&items[i], kD + 1 + rng() % 3);  // same level-1.. slots, later
    } else {
      w.insert(&items[i], kD);
      expected_d.push_back(i);
    }
  }
  const uint64_t visits = w.slot_visits();
  EXPECT_THAT(Advance(w, kD), ElementsAreArray(expected_d));
  // One slot per level: 3, 2, 1, then the level-0 slot of kD.
  EXPECT_EQ(w.slot_visits() - visits, 4u);
}

TEST(TimerWheelTest, ClampedEntryKeepsInsertionOrderWhenRefiled) {
  // a is inserted first but beyond the range; c and b are inserted later with
  // the same deadline and filed directly. a must still fire first.
  const uint64_t d = kSpan + 100;
  Item a(1), b(2), c(3), x(4);
  TimerWheel w;
  w.insert(&a, d);  // clamped to kSpan - 1
  EXPECT_THAT(Advance(w, 200), ElementsAre());
  w.insert(&c, d);
  w.insert(&x, d + 1);
  w.insert(&b, d);
  EXPECT_THAT(Advance(w, kSpan - 1), ElementsAre());  // a is re-filed here
  EXPECT_TRUE(a.is_registered());
  EXPECT_THAT(Advance(w, d), ElementsAre(1, 3, 2));
  EXPECT_THAT(Advance(w, d + 1), ElementsAre(4));
}

// ---------------------------------------------------------------------------
// Clamping and next_expiration.

TEST(TimerWheelTest, ClampedDeadlineFiresExactlyAtDeadline) {
  const uint64_t start = 5000;
  const uint64_t d = start + (uint64_t{1} << 40);
  Item a(1);
  TimerWheel w(start);
  w.insert(&a, d);
  EXPECT_EQ(a.deadline(), d);
  ASSERT_TRUE(w.next_expiration().has_value());
  EXPECT_LE(*w.next_expiration(), start + kSpan - 1);
  EXPECT_THAT(Advance(w, start + kSpan - 1), ElementsAre());  // the clamp point
  EXPECT_TRUE(a.is_registered());
  EXPECT_EQ(w.size(), 1u);
  // Walk the driver loop: park until next_expiration, advance, repeat.
  int steps = 0;
  while (a.is_registered()) {
    const std::optional<uint64_t> next = w.next_expiration();
    ASSERT_TRUE(next.has_value());
    ASSERT_GE(*next, w.now());
    ASSERT_LE(*next, d);
    std::vector<int> fired = Advance(w, *next);
    EXPECT_EQ(fired.empty(), *next != d) << *next;
    ASSERT_LT(++steps, 200);
  }
  EXPECT_EQ(w.now(), d);
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheelTest, RangeBoundary) {
  // Starts include ticks just before the end of a top-level slot and of a
  // whole 2^36 block, where the top level wraps.
  for (uint64_t start : {uint64_t{777}, (uint64_t{1} << 30) - 50, kSpan - 1, 5 * kSpan - 3}) {
    Item in(1), out(2), far(3);
    TimerWheel w(start);
    w.insert(&in, start + kSpan - 1);  // last tick the wheel covers directly
    w.insert(&out, start + kSpan);     // first tick beyond it
    w.insert(&far, start + kSpan + 60);
    EXPECT_THAT(Advance(w, start + kSpan - 2), ElementsAre()) << start;
    EXPECT_THAT(Advance(w, start + kSpan - 1), ElementsAre(1)) << start;
    EXPECT_THAT(Advance(w, start + kSpan), ElementsAre(2)) << start;
    EXPECT_THAT(Advance(w, start + kSpan + 59), ElementsAre()) << start;
    EXPECT_THAT(Advance(w, start + kSpan + 60), ElementsAre(3)) << start;
  }
}

TEST(TimerWheelTest, NextExpiration) {
  Item a(1), b(2), c(3);
  TimerWheel w(1000);
  EXPECT_EQ(w.next_expiration(), std::nullopt);
  w.insert(&a, 1010);
  EXPECT_EQ(w.next_expiration(), 1010u);  // level 0 is exact
  w.insert(&b, 1000 + 5 * kL2 + 3);
  EXPECT_EQ(w.next_expiration(), 1010u);
  w.cancel(&a);
  ASSERT_TRUE(w.next_expiration().has_value());
  EXPECT_GT(*w.next_expiration(), 1000u);
  EXPECT_LE(*w.next_expiration(), b.deadline());
  w.insert(&c, 3);  // due
  EXPECT_EQ(w.next_expiration(), 1000u);
  EXPECT_THAT(Advance(w, 1000), ElementsAre(3));
  w.cancel(&b);
  EXPECT_EQ(w.next_expiration(), std::nullopt);

  // Driver loop over many single entries at assorted distances.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t delta = rng() >> (rng() % 64);
    const uint64_t d = w.now() + (delta % (kSpan * 4));
    w.insert(&a, d);
    int steps = 0;
    while (a.is_registered()) {
      const std::optional<uint64_t> next = w.next_expiration();
      ASSERT_TRUE(next.has_value());
      ASSERT_GE(*next, w.now());
      ASSERT_LE(*next, d);
      Advance(w, *next);
      ASSERT_LT(++steps, 40);
    }
    ASSERT_EQ(w.now(), d);
  }
}

TEST(TimerWheelTest, HugeJumpVisitsOnlyOccupiedSlots) {
  constexpr uint64_t kJump = 1'000'000'000'000;  // 10^12 ticks, > 2^36
  Item a(1), b(2), c(3), d(4);
  TimerWheel w(42);
  Advance(w, kJump);  // empty wheel
  EXPECT_EQ(w.slot_visits(), 0u);
  EXPECT_EQ(w.now(), kJump);

  w.insert(&a, kJump + 1000);
  w.insert(&b, kJump + 10'000'000);
  w.insert(&c, kJump + 100'000'000'000);  // beyond the range
  w.insert(&d, 2 * kJump - 1);            // beyond the range
  EXPECT_THAT(Advance(w, 2 * kJump), ElementsAre(1, 2, 3, 4));
  // Each entry cascades through at most 6 levels, plus a refile per 2^36
  // ticks for the far ones (10^12 / 2^36 < 15).
  EXPECT_LE(w.slot_visits(), 4 * 6 + 2 * 15 * 7u);
  EXPECT_EQ(w.now(), 2 * kJump);
}

// ---------------------------------------------------------------------------
// Differential test against a model.

class Model {
 public:
  using Key = std::pair<uint64_t, uint64_t>;  // (effective deadline, insertion seq)

  void insert(int id, uint64_t deadline, uint64_t now) {
    const Key key{std::max(deadline, now), seq_++};
    by_key_.emplace(key, id);
    key_of_[id] = key;
  }
  void cancel(int id) {
    auto it = key_of_.find(id);
    if (it == key_of_.end()) return;
    by_key_.erase(it->second);
    key_of_.erase(it);
  }
  bool registered(int id) const { return key_of_.count(id) != 0; }
  size_t size() const { return by_key_.size(); }
  std::optional<uint64_t> earliest() const {
    if (by_key_.empty()) return std::nullopt;
    return by_key_.begin()->first.first;
  }
  // The next entry due at or before `t`, removed; -1 if none.
  std::pair<int, uint64_t> pop_due(uint64_t t) {
    if (by_key_.empty() || by_key_.begin()->first.first > t) return {-1, 0};
    auto it = by_key_.begin();
    const std::pair<int, uint64_t> r{it->second, it->first.first};
    key_of_.erase(it->second);
    by_key_.erase(it);
    return r;
  }

 private:
  uint64_t seq_ = 0;
  std::map<Key, int> by_key_;
  std::map<int, Key> key_of_;
};

TEST(TimerWheelTest, DifferentialAgainstModel) {
  constexpr int kOps = 1'000'000;
  constexpr int kPool = 2048;
  // Start a little before a 2^36 boundary so the top level wraps early on.
  const uint64_t start = 3 * kSpan - 5'000'000;
  std::unique_ptr<Item[]> items = MakeItems(kPool);  // outlives the wheel
  TimerWheel w(start);
  Model model;
  std::mt19937_64 rng(0x5eed'1234);
  // Registered ids, for picking a random one in O(1).
  std::vector<int> reg;
  std::vector<int> pos(kPool, -1);
  auto mark = [&](int id) {
    if (pos[id] >= 0) return;
    pos[id] = static_cast<int>(reg.size());
    reg.push_back(id);
  };
  auto unmark = [&](int id) {
    if (pos[id] < 0) return;
    const int last = reg.back();
    reg[pos[id]] = last;
    pos[last] = pos[id];
    reg.pop_back();
    pos[id] = -1;
  };
  auto random_deadline = [&]() -> uint64_t {
    const uint64_t now = w.now();
    const uint64_t r = rng();
    switch (r % 16) {
      case 0: return now - std::min<uint64_t>(now, (r >> 8) % 100);  // past or now
      case 1: case 2: case 3: case 4: return now + (r >> 8) % 64;
      case 5: case 6: case 7: return now + (r >> 8) % 5000;
      case 8: case 9: return now + (r >> 8) % 1'000'000;
      case 10: return now + (r >> 8) % 100'000'000;
      case 11: return now + (r >> 8) % kSpan;
      case 12: return now + kSpan - 2 + (r >> 8) % 4;  // around the range end
      case 13: return now + kSpan + (r >> 8) % (8 * kSpan);
      default: {  // deadlines shared by many entries
        const uint64_t base = now + 64;
        return (base | 0xfff) + ((r >> 8) % 3) * 4096;
      }
    }
  };
  auto random_jump = [&]() -> uint64_t {
    const uint64_t r = rng();
    switch (r % 16) {
      case 0: case 1: return 0;
      case 2: case 3: case 4: return 1;
      case 5: case 6: case 7: case 8: return (r >> 8) % 64;
      case 9: case 10: return (r >> 8) % 5000;
      case 11: return (r >> 8) % 1'000'000;
      case 12: return (r >> 8) % 100'000'000;
      case 13: {  // jump to exactly the next expiration
        const std::optional<uint64_t> n = w.next_expiration();
        return n ? *n - w.now() : 0;
      }
      case 14: return (r >> 8) % (2 * kSpan);
      default: return (r >> 8) % 64 == 0 ? 20 * kSpan : 7;
    }
  };
  auto insert_random = [&](int id) {
    const uint64_t d = random_deadline();
    model.insert(id, d, w.now());
    w.insert(&items[id], d);
    mark(id);
  };
  auto free_id = [&]() -> int {
    // Random probe for an unregistered item.
    for (int tries = 0; tries < 8; ++tries) {
      const int id = static_cast<int>(rng() % kPool);
      if (pos[id] < 0) return id;
    }
    return -1;
  };

  bool failed = false;
  uint64_t fired_total = 0;
  for (int op = 0; op < kOps && !failed; ++op) {
    const uint64_t r = rng() % 100;
    if (r < 45) {
      const int id = free_id();
      if (id >= 0) insert_random(id);
    } else if (r < 60) {
      if (!reg.empty()) {
        const int id = reg[rng() % reg.size()];
        model.cancel(id);
        w.cancel(&items[id]);
        unmark(id);
      }
    } else {
      const uint64_t target = w.now() + random_jump();
      w.advance(target, [&](TimerEntry* e) {
        if (failed) return;
        Item* it = as_item(e);
        const auto [want, want_deadline] = model.pop_due(target);
        if (it->id != want || w.now() != want_deadline || it->deadline() != want_deadline ||
            it->is_registered()) {
          ADD_FAILURE() << "op " << op << ": fired id " << it->id << " at " << w.now()
                        << " (deadline " << it->deadline() << "), model expects id " << want
                        << " deadline " << want_deadline << ", target " << target;
          failed = true;
          return;
        }
        ++fired_total;
        unmark(it->id);
        // Sometimes act from inside the callback.
        const uint64_t a = rng() % 16;
        if (a == 0) {
          insert_random(it->id);  // re-insert the fired entry
        } else if (a == 1) {
          const int id = free_id();
          if (id >= 0) insert_random(id);
        } else if (a == 2 && !reg.empty()) {
          const int id = reg[rng() % reg.size()];
          model.cancel(id);
          w.cancel(&items[id]);
          unmark(id);
        }
      });
      if (failed) break;
      ASSERT_EQ(w.now(), target);
      const std::optional<uint64_t> left = model.earliest();
      ASSERT_TRUE(!left || *left > target)
          << "op " << op << ": entry due at " << *left << " not fired by advance to " << target;
    }
    ASSERT_EQ(w.size(), model.size()) << "op " << op;
    ASSERT_EQ(w.empty(), model.size() == 0) << "op " << op;
    const std::optional<uint64_t> next = w.next_expiration();
    const std::optional<uint64_t> earliest = model.earliest();
    ASSERT_EQ(next.has_value(), earliest.has_value()) << "op " << op;
    if (next) {
      ASSERT_LE(*next, *earliest) << "op " << op;
      ASSERT_GE(*next, w.now()) << "op " << op;
    }
    if (op % 1024 == 0) {
      for (int id = 0; id < kPool; ++id) {
        ASSERT_EQ(items[id].is_registered(), model.registered(id)) << "op " << op << " id " << id;
      }
    }
  }
  EXPECT_FALSE(failed);
  EXPECT_GT(fired_total, 100'000u);
}

}  // namespace
}  // namespace pollux::timer
