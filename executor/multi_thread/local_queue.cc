#include "executor/multi_thread/local_queue.h"

namespace pollux::detail {

bool LocalQueue::push_back(Header* task, TaskList& overflow) noexcept {
  for (;;) {
    // acquire: pairs with a stealer's final CAS (release), so slots it has
    // finished copying are free to overwrite.
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint32_t steal = steal_of(head);
    const uint32_t real = real_of(head);
    // relaxed: only this thread writes tail_.
    const uint32_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - steal < kCapacity) {
      buffer_[tail & kMask].get_mut() = task;
      // release: publishes the slot to a stealer's acquire load of tail_.
      tail_.store(tail + 1, std::memory_order_release);
      return false;
    }
    if (steal != real) {
      // A stealer is copying (it will make room): this one task goes to
      // the inject queue rather than waiting.
      overflow.push_back(task);
      return true;
    }
    // Full: claim the half about to run next with one CAS (stealers see
    // `real` move, and their own CAS fails).
    const uint32_t half = kCapacity / 2;
    uint64_t expected = head;
    // release: nothing to publish, but a stealer that read the old head
    // must not also claim these; acquire (failure) re-reads it.
    if (!head_.compare_exchange_strong(expected, pack(real + half, real + half),
                                       std::memory_order_release, std::memory_order_relaxed)) {
      continue;  // a stealer took some meanwhile: there is room now
    }
    for (uint32_t i = 0; i < half; ++i) overflow.push_back(buffer_[(real + i) & kMask].get());
    overflow.push_back(task);
    return true;
  }
}

Header* LocalQueue::pop() noexcept {
  // acquire: as in push_back.
  uint64_t head = head_.load(std::memory_order_acquire);
  uint32_t index;
  for (;;) {
    const uint32_t steal = steal_of(head);
    const uint32_t real = real_of(head);
    // relaxed: only this thread writes tail_.
    const uint32_t tail = tail_.load(std::memory_order_relaxed);
    if (real == tail) return nullptr;
    const uint32_t next_real = real + 1;
    // No steal in progress: steal follows real; else it stays put.
    const uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
    // acq_rel: release tells stealers this slot is taken; acquire as above.
    if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      index = real;
      break;
    }
  }
  return buffer_[index & kMask].get();
}

Header* LocalQueue::steal_into(LocalQueue& dst, uint32_t* stolen) noexcept {
  if (stolen != nullptr) *stolen = 0;
  // relaxed: dst is the caller's own queue.
  const uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
  // acquire: as in push_back (dst's slots freed by its own stealers).
  const uint32_t dst_steal = steal_of(dst.head_.load(std::memory_order_acquire));
  if (dst_tail - dst_steal > kCapacity / 2) return nullptr;  // keep room for what it steals
  uint32_t n = steal_half_into(dst, dst_tail);
  if (n == 0) return nullptr;
  if (stolen != nullptr) *stolen = n;
  --n;  // the last one stolen runs now instead of being queued
  Header* run_now = dst.buffer_[(dst_tail + n) & kMask].get();
  if (n > 0) {
    // release: publishes the copied slots to dst's stealers.
    dst.tail_.store(dst_tail + n, std::memory_order_release);
  }
  return run_now;
}

uint32_t LocalQueue::steal_half_into(LocalQueue& dst, uint32_t dst_tail) noexcept {
  // acquire: pairs with the owner's pops and other stealers' CASes.
  uint64_t prev = head_.load(std::memory_order_acquire);
  uint32_t n;
  uint32_t first;
  for (;;) {
    const uint32_t steal = steal_of(prev);
    const uint32_t real = real_of(prev);
    if (steal != real) return 0;  // another stealer is at work
    // acquire: pairs with the owner's tail store, so the slots are written.
    const uint32_t tail = tail_.load(std::memory_order_acquire);
    n = tail - real;
    n -= n / 2;
    if (n == 0) return 0;
    // Claim [real, real + n): `real` moves, `steal` stays (the lock).
    // acq_rel: acquire as above; release tells the owner and other
    // stealers these are taken.
    if (head_.compare_exchange_weak(prev, pack(steal, real + n), std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      first = real;
      break;
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    dst.buffer_[(dst_tail + i) & kMask].get_mut() = buffer_[(first + i) & kMask].get();
  }
  // Done copying: let `steal` catch up with `real` (the owner may have
  // popped meanwhile, moving `real`).
  // acquire: re-read below.
  prev = head_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t real = real_of(prev);
    // release: pairs with the owner's acquire before it reuses the slots.
    if (head_.compare_exchange_weak(prev, pack(real, real), std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
      return n;
    }
  }
}

uint32_t LocalQueue::len() const noexcept {
  // acquire (both): a consistent enough snapshot for a heuristic.
  const uint64_t head = head_.load(std::memory_order_acquire);
  const uint32_t tail = tail_.load(std::memory_order_acquire);
  return tail - real_of(head);
}

uint32_t LocalQueue::remaining_slots() const noexcept {
  // acquire: as in push_back; relaxed tail: the owner's own.
  const uint32_t steal = steal_of(head_.load(std::memory_order_acquire));
  return kCapacity - (tail_.load(std::memory_order_relaxed) - steal);
}

}  // namespace pollux::detail
