// Slab<Slot>: the stable-address store of one kind of operation slot, owned
// by one backend. A backend keeps one slab per payload shape (a nop's slot
// carries no buffer, a recvmsg's carries a msghdr), so no slot pays for the
// superset of every operation's memory.
//
// Slots never move: the kernel holds pointers into them. They live in
// chunks of kChunk slots that are allocated as needed and never freed before
// the slab, so finding slot i is two shifts and two loads (a std::deque's
// indexing, measured, cost about 45 instructions a lookup). Each slot has a
// 32-bit generation, bumped (skipping 0) every time it is released, so an id
// made of {slab, index, generation} never reaches a reused slot; generation
// 0 is never a live slot's, which leaves the ids with generation 0 free for
// a backend's own tags.
//
// leak(): at shutdown, slots the kernel may still write into must never be
// freed; the slab then gives up its chunks on purpose (they stay allocated,
// and reachable, until the process ends) instead of freeing them.
//
// `Slot` must have `uint32_t generation`, `bool live` and `uint32_t next_free`
// members and be default-constructible. Thread-safety: owner thread only.
#ifndef POLLUX_REACTOR_INTERNAL_SLAB_H_
#define POLLUX_REACTOR_INTERNAL_SLAB_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

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

  Slab() = default;
  ~Slab() {
    if (leaked_) {
      for (std::unique_ptr<Slot[]>& c : chunks_) keep_forever(c.release());
    }
  }
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;

  // A slot, now live; the caller fills it in.
  uint32_t allocate() {
    uint32_t index;
    if (free_head_ != kNone) {
      index = free_head_;
      free_head_ = at(index).next_free;
    } else {
      POLLUX_CHECK(size_ < kMaxSlots, "operation slab full");
      reserve_one();  // may throw std::bad_alloc: nothing has changed yet
      index = size_++;
    }
    at(index).live = true;
    ++live_;
    return index;
  }
  // Makes sure the next allocate() allocates no memory (a new chunk, if
  // the free list is empty and the last chunk full, is added now). Throws
  // std::bad_alloc with the slab unchanged; a backend calls it before it
  // commits to anything it could not undo (an SQE taken from the ring).
  void reserve_one() {
    if (free_head_ != kNone || (size_ >> kChunkShift) < chunks_.size()) return;
    // Both allocations before the push: a failed push_back frees the chunk.
    auto chunk = std::make_unique<Slot[]>(kChunk);
    chunks_.push_back(std::move(chunk));
  }
  Slot& at(uint32_t index) noexcept { return chunks_[index >> kChunkShift][index & (kChunk - 1)]; }
  const Slot& at(uint32_t index) const noexcept {
    return chunks_[index >> kChunkShift][index & (kChunk - 1)];
  }
  // The live slot `index` if its generation is `generation`, else null.
  Slot* find(uint32_t index, uint32_t generation) noexcept {
    if (index >= size_) return nullptr;
    Slot& s = at(index);
    return s.live && s.generation == generation ? &s : nullptr;
  }
  // Back to the free list; the caller has reset what the slot owns.
  void release(uint32_t index) noexcept { release(at(index), index); }
  // The same, for a caller that holds the slot already (`s` is at(index)).
  void release(Slot& s, uint32_t index) noexcept {
    POLLUX_DCHECK(&s == &at(index), "operation slot released under another index");
    POLLUX_DCHECK(s.live, "operation slot released twice");
    s.live = false;
    if (++s.generation == 0) s.generation = 1;
    s.next_free = free_head_;
    free_head_ = index;
    --live_;
  }
  size_t live() const noexcept { return live_; }
  uint32_t capacity() const noexcept { return size_; }
  // Keeps every slot's memory allocated for the rest of the process.
  void leak() noexcept { leaked_ = true; }

 private:
  static constexpr uint32_t kChunkShift = 6;
  static constexpr uint32_t kChunk = uint32_t{1} << kChunkShift;

  std::vector<std::unique_ptr<Slot[]>> chunks_;
  uint32_t size_ = 0;
  uint32_t free_head_ = kNone;
  size_t live_ = 0;
  bool leaked_ = false;
};

}  // namespace pollux::reactor::detail

#endif  // POLLUX_REACTOR_INTERNAL_SLAB_H_
