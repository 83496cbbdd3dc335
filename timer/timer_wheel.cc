#include "timer/timer_wheel.h"

namespace pollux::timer {

TimerWheel::Next TimerWheel::next_slot() const noexcept {
  for (int level = 0; level < kLevels; ++level) {
    const uint64_t occ = occupied_[level];
    if (occ == 0) continue;
    const int shift = level * kBitsPerLevel;
    const uint64_t width = uint64_t{1} << shift;
    const uint64_t range = width << kBitsPerLevel;
    const uint64_t base = now_ & ~(range - 1);
    const int now_slot = slot_for(now_, level);
    if (level == 0) {
      // Level 0 holds ticks in [now, end of now's 64-tick block]; now's own
      // slot holds the due entries.
      const int slot = (now_slot + std::countr_zero(std::rotr(occ, now_slot))) & kSlotMask;
      assert(slot >= now_slot);
      return {0, slot, base + static_cast<uint64_t>(slot)};
    }
    // Higher levels never hold now's own slot range; search from the slot
    // after it. Slots at or behind now's slot exist only at the top level,
    // where they mean the next block (wrap-around).
    const int from = (now_slot + 1) & kSlotMask;
    const int slot = (from + std::countr_zero(std::rotr(occ, from))) & kSlotMask;
    uint64_t tick = base + static_cast<uint64_t>(slot) * width;
    if (slot <= now_slot) {
      assert(level == kLevels - 1);
      tick += range;
    }
    return {level, slot, tick};
  }
  return {-1, 0, 0};
}

void TimerWheel::cascade(int level, int slot) noexcept {
  const int index = level * kSlotsPerLevel + slot;
  detail::SlotList& list = slots_[index];
  occupied_[level] &= ~(uint64_t{1} << slot);
  while (TimerEntry* e = list.pop_front()) {
    detail::SlotList& target = file(e);
    assert(e->index_ < index);
    target.push_back(e);
  }
}

void TimerWheel::take_due(int slot) noexcept {
  assert(firing_.empty());
  detail::SlotList& list = slots_[slot];
  occupied_[0] &= ~(uint64_t{1} << slot);
  for (TimerEntry* e = list.head; e != nullptr; e = e->next_) {
    assert(e->when_ == now_);
    e->index_ = TimerEntry::kFiring;
  }
  firing_.splice_front(list);
}

void TimerWheel::refile_clamped(TimerEntry* e) noexcept {
  assert(e->deadline_ > now_);
  if (e->deadline_ - now_ > kMaxSpan - 1) {
    // Still beyond the range: file at its end again. Where it sits among
    // other entries does not matter until it is filed under its deadline.
    e->when_ = now_ + (kMaxSpan - 1);
    file(e).push_back(e);
    return;
  }
  e->when_ = e->deadline_;
  detail::SlotList& list = file(e);
  // Entries filed under this deadline are in insertion order; go before the
  // first one inserted after `e`.
  for (TimerEntry* p = list.head; p != nullptr; p = p->next_) {
    if (p->when_ == e->deadline_ && p->deadline_ == e->deadline_ && p->seq_ > e->seq_) {
      list.insert_before(p, e);
      return;
    }
  }
  list.push_back(e);
}

std::optional<uint64_t> TimerWheel::next_expiration() const noexcept {
  if (size_ == 0) return std::nullopt;
  if (!firing_.empty()) return now_;
  const Next next = next_slot();
  assert(next.level >= 0);
  return next.tick;
}

void TimerWheel::clear() noexcept {
  while (TimerEntry* e = firing_.pop_front()) e->index_ = TimerEntry::kNotRegistered;
  for (detail::SlotList& list : slots_) {
    while (TimerEntry* e = list.pop_front()) e->index_ = TimerEntry::kNotRegistered;
  }
  occupied_.fill(0);
  size_ = 0;
}

}  // namespace pollux::timer
