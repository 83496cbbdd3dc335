// Slab<Slot>: the stable-address store of one kind of operation slot, owned
// by one backend. A backend keeps one slab per payload shape (a nop's slot
// carries no buffer, a recvmsg's carries a msghdr), so no slot pays for the
// superset of every operation's memory.
//
// Slots never move (a deque, never shrunk): the kernel holds pointers into
// them. Each slot has a 32-bit generation, bumped (skipping 0) every time it
// is released, so an id made of {slab, index, generation} never reaches a
// reused slot; generation 0 is never a live slot's, which leaves the ids with
// generation 0 free for a backend's own tags.
//
// leak(): at shutdown, slots the kernel may still write into must never be
// freed; the slab then gives up its storage on purpose (it stays allocated
// until the process ends) instead of freeing it.
//
// `Slot` must have `uint32_t generation`, `bool live` and `uint32_t next_free`
// members and be default-constructible. Thread-safety: owner thread only.
#ifndef POLLUX_REACTOR_INTERNAL_SLAB_H_
#define POLLUX_REACTOR_INTERNAL_SLAB_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>

#include "future/assert.h"

namespace pollux::reactor::detail {

// Keeps `storage` reachable for the rest of the process (so leak checkers
// see memory kept on purpose, not lost). Thread-safe.
void keep_forever(const void* storage);

template <class Slot>
class Slab {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  // Indices stay below this, so they fit next to a slab number in an id.
  static constexpr uint32_t kMaxSlots = uint32_t{1} << 28;

  Slab() : slots_(new std::deque<Slot>) {}
  ~Slab() {
    if (!leaked_) delete slots_;
  }
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  // A slot, now live; the caller fills it in.
  uint32_t allocate() {
    uint32_t index;
    if (free_head_ != kNone) {
      index = free_head_;
      free_head_ = (*slots_)[index].next_free;
    } else {
      POLLUX_CHECK(slots_->size() < kMaxSlots, "operation slab full");
      index = static_cast<uint32_t>(slots_->size());
      slots_->emplace_back();
    }
    (*slots_)[index].live = true;
    ++live_;
    return index;
  }
  Slot& at(uint32_t index) noexcept { return (*slots_)[index]; }
  const Slot& at(uint32_t index) const noexcept { return (*slots_)[index]; }
  // The live slot `index` if its generation is `generation`, else null.
  Slot* find(uint32_t index, uint32_t generation) noexcept {
    if (index >= slots_->size()) return nullptr;
    Slot& s = (*slots_)[index];
    return s.live && s.generation == generation ? &s : nullptr;
  }
  // Back to the free list; the caller has reset what the slot owns.
  void release(uint32_t index) noexcept {
    Slot& s = (*slots_)[index];
    POLLUX_DCHECK(s.live, "operation slot released twice");
    s.live = false;
    if (++s.generation == 0) s.generation = 1;
    s.next_free = free_head_;
    free_head_ = index;
    --live_;
  }
  size_t live() const noexcept { return live_; }
  uint32_t capacity() const noexcept { return static_cast<uint32_t>(slots_->size()); }
  // Keeps every slot's memory allocated for the rest of the process.
  void leak() {
    if (leaked_) return;
    leaked_ = true;
    keep_forever(slots_);
  }

 private:
  std::deque<Slot>* slots_;
  uint32_t free_head_ = kNone;
  size_t live_ = 0;
  bool leaked_ = false;
};

}  // namespace pollux::reactor::detail

#endif  // POLLUX_REACTOR_INTERNAL_SLAB_H_
