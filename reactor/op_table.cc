#include "reactor/op_table.h"

#include "future/assert.h"

namespace pollux::reactor {

uint32_t OpTable::allocate() {
  uint32_t index;
  if (free_head_ != kNone) {
    index = free_head_;
    free_head_ = slots_[index].next_free;
  } else {
    POLLUX_CHECK(slots_.size() < UINT32_MAX - 1, "op table full");
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  OpSlot& s = slots_[index];
  s.state = SlotState::kInFlight;
  s.returns_fd = false;
  s.multishot = false;
  s.accept_fd = -1;
  s.rearming = false;
  s.sqe = nullptr;
  s.result = {0, 0};
  ++live_;
  return index;
}

void OpTable::release(uint32_t index) noexcept {
  OpSlot& s = slots_[index];
  POLLUX_DCHECK(s.state != SlotState::kFree, "op slot released twice");
  s.state = SlotState::kFree;
  ++s.generation;
  s.waker.reset();
  s.more.clear();
  s.storage.clear();
  s.next_free = free_head_;
  free_head_ = index;
  --live_;
}

OpSlot* OpTable::lookup(uint64_t user_data, uint32_t* index) noexcept {
  uint32_t i = static_cast<uint32_t>(user_data);
  uint32_t gen = static_cast<uint32_t>(user_data >> 32);
  if (i >= slots_.size()) return nullptr;
  OpSlot& s = slots_[i];
  if (s.generation != gen || s.state == SlotState::kFree) return nullptr;
  *index = i;
  return &s;
}

}  // namespace pollux::reactor
