// pollux::timer::TimerWheel: a hierarchical hashed timer wheel.
//
// What it is for
//   The driver of each worker thread keeps one wheel holding every pending
//   timer (sleep, timeout, interval) of that driver. The wheel is a pure data
//   structure: it never reads a clock, starts a thread or makes a syscall. It
//   works on integer ticks (1 tick = 1 ms); the runtime converts Instants to
//   ticks (rounding deadlines up, so a timer never fires early) and calls
//   advance() once per driver tick with the current tick. next_expiration()
//   bounds how long the driver may park.
//
// Thread safety
//   None. A wheel and every TimerEntry registered in it are owned by one
//   driver thread and touched only by it. Other threads must hand requests to
//   the owner (see DESIGN.md section 5).
//
// Layout
//   kLevels (6) levels of kSlotsPerLevel (64) slots. A slot of level L covers
//   64^L ticks, so level L spans 64^(L+1) ticks and the whole wheel spans
//   kMaxSpan = 2^36 ticks (~2.2 years). Each slot is an intrusive, doubly
//   linked FIFO list of TimerEntry; each level has a 64-bit bitmap of its
//   non-empty slots, so finding the next non-empty slot is a rotate plus a
//   count-trailing-zeros and empty stretches of time cost nothing.
//
// Invariants (`now` is now(), `when` the tick an entry is filed under)
//   * now <= when <= now + kMaxSpan - 1 for every registered entry.
//   * An entry sits at level L = (highest 6-bit group in which when and now
//     differ, capped at kLevels-1), in slot (when >> 6L) % 64. Only level 0
//     may hold entries in now's own slot (those are due: when == now), and
//     only the top level wraps (slot indices at or behind now's slot there
//     mean the next 2^36-tick block).
//   * Bit s of level L's bitmap is set iff slot s of level L is non-empty.
//   * Entries that share an effective deadline and are filed under it
//     (when == deadline) are all in one list, in insertion order. Moving a
//     list down a level (a cascade) keeps its order.
//   * when == deadline except for entries whose deadline lay beyond the
//     wheel's range at insertion: those are filed under the last tick of the
//     range (when < deadline) and are re-filed, at their place in insertion
//     order, when that tick comes; they never fire early.
//   * Deadlines earlier than now at insertion are treated as now ("due"):
//     they fire at the next advance(), in insertion order, and deadline()
//     reports now.
//
// Costs: insert and cancel are O(1) and never allocate. advance() costs
// O(entries fired + non-empty slots visited); an entry is moved down at most
// kLevels-1 times (plus once per 2^36 ticks if it was beyond the range).
// Ticks must stay below 2^63.
#ifndef POLLUX_TIMER_TIMER_WHEEL_H_
#define POLLUX_TIMER_TIMER_WHEEL_H_

#include <array>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

namespace pollux::timer {

class TimerWheel;

namespace detail {
struct SlotList;
}  // namespace detail

// Intrusive node of the wheel. The owner embeds it (e.g. as a base or member
// of a sleep future's slot) and gets it back in the fire callback. It must not
// be moved, copied or destroyed while registered.
class TimerEntry {
 public:
  TimerEntry() = default;
  TimerEntry(const TimerEntry&) = delete;
  TimerEntry& operator=(const TimerEntry&) = delete;
  // Debug-asserts that the entry is not registered.
  ~TimerEntry() { assert(!is_registered() && "TimerEntry destroyed while registered"); }

  // True between insert() and the moment it is fired or cancelled.
  bool is_registered() const noexcept { return index_ != kNotRegistered; }
  // The effective deadline of the last insert(): max(requested tick, now()).
  // Kept after the entry fired or was cancelled.
  uint64_t deadline() const noexcept { return deadline_; }

 private:
  friend class TimerWheel;
  friend struct detail::SlotList;

  static constexpr uint16_t kNotRegistered = 0xffff;
  static constexpr uint16_t kFiring = 0xfffe;  // in the wheel's firing list

  TimerEntry* prev_ = nullptr;
  TimerEntry* next_ = nullptr;
  uint64_t deadline_ = 0;  // effective deadline (fires at this tick)
  uint64_t when_ = 0;      // tick it is filed under; < deadline_ iff clamped
  uint64_t seq_ = 0;       // insertion sequence number (orders equal deadlines)
  uint16_t index_ = kNotRegistered;  // level * 64 + slot, kFiring, or none
};

namespace detail {

// Intrusive doubly linked FIFO list of TimerEntry.
struct SlotList {
  TimerEntry* head = nullptr;
  TimerEntry* tail = nullptr;

  bool empty() const noexcept { return head == nullptr; }

  void push_back(TimerEntry* e) noexcept {
    e->next_ = nullptr;
    e->prev_ = tail;
    if (tail != nullptr) {
      tail->next_ = e;
    } else {
      head = e;
    }
    tail = e;
  }

  // Inserts `e` before `pos` (a member of this list).
  void insert_before(TimerEntry* pos, TimerEntry* e) noexcept {
    e->next_ = pos;
    e->prev_ = pos->prev_;
    if (pos->prev_ != nullptr) {
      pos->prev_->next_ = e;
    } else {
      head = e;
    }
    pos->prev_ = e;
  }

  void unlink(TimerEntry* e) noexcept {
    if (e->prev_ != nullptr) {
      e->prev_->next_ = e->next_;
    } else {
      head = e->next_;
    }
    if (e->next_ != nullptr) {
      e->next_->prev_ = e->prev_;
    } else {
      tail = e->prev_;
    }
    e->prev_ = e->next_ = nullptr;
  }

  TimerEntry* pop_front() noexcept {
    TimerEntry* e = head;
    if (e != nullptr) unlink(e);
    return e;
  }

  // Moves all of `other` in front of this list's entries.
  void splice_front(SlotList& other) noexcept {
    if (other.empty()) return;
    if (empty()) {
      tail = other.tail;
    } else {
      other.tail->next_ = head;
      head->prev_ = other.tail;
    }
    head = other.head;
    other.head = other.tail = nullptr;
  }
};

}  // namespace detail

// A hierarchical hashed timer wheel on integer ticks; one thread's (see above).
class TimerWheel {
 public:
  static constexpr int kLevels = 6;
  static constexpr int kSlotsPerLevel = 64;
  static constexpr int kBitsPerLevel = 6;
  static constexpr uint64_t kMaxSpan = uint64_t{1} << (kLevels * kBitsPerLevel);  // 2^36 ticks

  // An empty wheel whose time is `now_tick`.
  explicit TimerWheel(uint64_t now_tick = 0) noexcept : now_(now_tick) {}
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  // Unregisters (without firing) every entry still registered.
  ~TimerWheel() { clear(); }

  // The tick last advanced to (during a fire callback: the tick being fired).
  uint64_t now() const noexcept { return now_; }
  // Number of registered entries.
  size_t size() const noexcept { return size_; }
  // True iff no entry is registered.
  bool empty() const noexcept { return size_ == 0; }

  // O(1). Registers `e` (which must not be registered) to fire at
  // `deadline_tick`; a deadline <= now() fires at the next advance(). A
  // deadline more than kMaxSpan-1 ticks ahead is filed at the end of the range
  // and re-filed with its true deadline when that comes, so it never fires
  // early.
  void insert(TimerEntry* e, uint64_t deadline_tick) noexcept {
    assert(!e->is_registered() && "TimerEntry inserted twice");
    const uint64_t deadline = deadline_tick > now_ ? deadline_tick : now_;
    e->deadline_ = deadline;
    e->seq_ = next_seq_++;
    e->when_ = deadline - now_ > kMaxSpan - 1 ? now_ + (kMaxSpan - 1) : deadline;
    file(e).push_back(e);
    ++size_;
  }

  // O(1). Unregisters `e`; a no-op if it is not registered.
  void cancel(TimerEntry* e) noexcept {
    if (!e->is_registered()) return;
    unlink(e);
    --size_;
  }

  // Moves time to `now_tick` (>= now()) and calls `fire(TimerEntry*)` for
  // every entry whose deadline <= now_tick, in deadline order and in insertion
  // order among equal deadlines. An entry is unregistered before `fire` sees
  // it; `fire` may insert or cancel any entry (also the fired one); entries it
  // inserts with deadline <= now_tick fire in this same call. `fire` must not
  // call advance(). If `fire` throws, the entries not yet fired stay due.
  template <class F>
  void advance(uint64_t now_tick, F&& fire);

  // The earliest tick at which advance() could fire something (now() if
  // something is due), or nullopt if empty. Never later than the earliest
  // deadline; may be earlier (a cascade point or the end of the range).
  std::optional<uint64_t> next_expiration() const noexcept;

  // Unregisters every entry without firing it.
  void clear() noexcept;

  // Diagnostics: number of slots emptied by advance() so far (fired or
  // cascaded). Lets tests check that advance() skips empty stretches.
  uint64_t slot_visits() const noexcept { return slot_visits_; }

 private:
  struct Next {
    int level;  // -1 if every slot is empty
    int slot;
    uint64_t tick;  // start of that slot
  };

  static constexpr uint64_t kSlotMask = kSlotsPerLevel - 1;
  static constexpr uint16_t kNumSlots = kLevels * kSlotsPerLevel;

  // Level an entry filed under `when` belongs to, given time `now`.
  static int level_for(uint64_t now, uint64_t when) noexcept {
    uint64_t masked = (now ^ when) | kSlotMask;
    if (masked >= kMaxSpan) masked = kMaxSpan - 1;
    return (63 - std::countl_zero(masked)) / kBitsPerLevel;
  }
  static int slot_for(uint64_t when, int level) noexcept {
    return static_cast<int>((when >> (level * kBitsPerLevel)) & kSlotMask);
  }

  // Picks e's slot for e->when_ relative to now_, records it in `e`, marks the
  // slot occupied, and returns the slot's list (the caller links `e` into it).
  detail::SlotList& file(TimerEntry* e) noexcept {
    const int level = level_for(now_, e->when_);
    const int slot = slot_for(e->when_, level);
    e->index_ = static_cast<uint16_t>(level * kSlotsPerLevel + slot);
    occupied_[level] |= uint64_t{1} << slot;
    return slots_[e->index_];
  }

  // Removes `e` from whatever list holds it and marks it unregistered.
  void unlink(TimerEntry* e) noexcept {
    if (e->index_ == TimerEntry::kFiring) {
      firing_.unlink(e);
    } else {
      assert(e->index_ < kNumSlots);
      detail::SlotList& list = slots_[e->index_];
      list.unlink(e);
      if (list.empty()) {
        occupied_[e->index_ / kSlotsPerLevel] &= ~(uint64_t{1} << (e->index_ % kSlotsPerLevel));
      }
    }
    e->index_ = TimerEntry::kNotRegistered;
  }

  // The lowest non-empty level's next non-empty slot. Its start is the
  // earliest tick at which anything in the wheel needs attention.
  Next next_slot() const noexcept;
  // Re-files an entry that was beyond the range when inserted (its filing
  // tick is now_). Places it before any later-inserted entry with the same
  // deadline. O(length of the target list); happens at most once per 2^36
  // ticks per entry.
  void refile_clamped(TimerEntry* e) noexcept;
  // Moves the entries of slot (level, slot), level > 0, down to lower levels
  // relative to now_, keeping their order.
  void cascade(int level, int slot) noexcept;
  // Moves the entries of the level-0 slot of now_ to firing_ in order.
  void take_due(int slot) noexcept;

  // Restores the wheel if a fire callback throws.
  struct AdvanceGuard {
    TimerWheel* w;
    ~AdvanceGuard() {
      if (!w->firing_.empty()) {
        // Entries not fired yet stay due, ahead of anything filed since.
        const int slot = slot_for(w->now_, 0);
        for (TimerEntry* e = w->firing_.head; e != nullptr; e = e->next_) {
          e->index_ = static_cast<uint16_t>(slot);
        }
        w->slots_[slot].splice_front(w->firing_);
        w->occupied_[0] |= uint64_t{1} << slot;
      }
      w->in_advance_ = false;
    }
  };

  uint64_t now_;
  uint64_t next_seq_ = 0;
  size_t size_ = 0;
  uint64_t slot_visits_ = 0;
  bool in_advance_ = false;
  std::array<uint64_t, kLevels> occupied_{};
  std::array<detail::SlotList, kNumSlots> slots_{};
  detail::SlotList firing_;  // due entries taken out of their slot by advance()
};

template <class F>
void TimerWheel::advance(uint64_t now_tick, F&& fire) {
  assert(now_tick >= now_ && "TimerWheel::advance: time went backwards");
  assert(!in_advance_ && "TimerWheel::advance called from a fire callback");
  in_advance_ = true;
  AdvanceGuard guard{this};
  while (size_ != 0) {
    const Next next = next_slot();
    if (next.level < 0 || next.tick > now_tick) break;
    now_ = next.tick;
    ++slot_visits_;
    if (next.level != 0) {
      cascade(next.level, next.slot);
      continue;
    }
    take_due(next.slot);
    while (TimerEntry* e = firing_.pop_front()) {
      e->index_ = TimerEntry::kNotRegistered;
      if (e->deadline_ != now_) {
        refile_clamped(e);  // was beyond the range; not due yet
        continue;
      }
      --size_;
      fire(e);
    }
  }
  now_ = now_tick;
}

}  // namespace pollux::timer

#endif  // POLLUX_TIMER_TIMER_WHEEL_H_
