// PLANTED BUG (DESIGN §10: "the one-CAS steal"). A copy of
// detail::LocalQueue (executor/multi_thread/local_queue.{h,cc} at 283fd77)
// whose steal claims its half with one CAS that moves `steal` together with
// `real`, i.e. releases the slots before copying them out, and has no second
// CAS. The owner, seeing `steal` moved, may push into a slot the stealer is
// still copying: the model checker must report a data race on that slot's
// RaceCell (or, where the overwrite lands first, a task delivered twice and
// another lost) (tests/model/local_queue_model_test.cc). Never use outside
// that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_ONE_CAS_STEAL_LOCAL_QUEUE_H_
#define POLLUX_TESTS_MODEL_PLANTED_ONE_CAS_STEAL_LOCAL_QUEUE_H_

#include <atomic>
#include <cstdint>

#include "executor/internal/task.h"
#include "executor/internal/task_list.h"
#include "executor/multi_thread/local_queue.h"
#include "future/internal/atomic.h"
#include "future/internal/race_cell.h"

namespace pollux::model::planted {

class OneCasStealLocalQueue {
  using Header = detail::Header;
  using TaskList = detail::TaskList;

 public:
  static constexpr uint32_t kCapacity = detail::kLocalQueueCapacity;

  OneCasStealLocalQueue() = default;
  OneCasStealLocalQueue(const OneCasStealLocalQueue&) = delete;
  OneCasStealLocalQueue& operator=(const OneCasStealLocalQueue&) = delete;

  bool push_back(Header* task, TaskList& overflow) noexcept {
    for (;;) {
      const uint64_t head = head_.load(std::memory_order_acquire);
      const uint32_t steal = steal_of(head);
      const uint32_t real = real_of(head);
      const uint32_t tail = tail_.load(std::memory_order_relaxed);
      if (tail - steal < kCapacity) {
        buffer_[tail & kMask].get_mut() = task;
        tail_.store(tail + 1, std::memory_order_release);
        return false;
      }
      if (steal != real) {
        overflow.push_back(task);
        return true;
      }
      const uint32_t half = kCapacity / 2;
      uint64_t expected = head;
      if (!head_.compare_exchange_strong(expected, pack(real + half, real + half),
                                         std::memory_order_release, std::memory_order_relaxed)) {
        continue;
      }
      for (uint32_t i = 0; i < half; ++i) overflow.push_back(buffer_[(real + i) & kMask].get());
      overflow.push_back(task);
      return true;
    }
  }

  Header* pop() noexcept {
    uint64_t head = head_.load(std::memory_order_acquire);
    uint32_t index;
    for (;;) {
      const uint32_t steal = steal_of(head);
      const uint32_t real = real_of(head);
      const uint32_t tail = tail_.load(std::memory_order_relaxed);
      if (real == tail) return nullptr;
      const uint32_t next_real = real + 1;
      const uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
      if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        index = real;
        break;
      }
    }
    return buffer_[index & kMask].get();
  }

  Header* steal_into(OneCasStealLocalQueue& dst) noexcept {
    const uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
    const uint32_t dst_steal = steal_of(dst.head_.load(std::memory_order_acquire));
    if (dst_tail - dst_steal > kCapacity / 2) return nullptr;
    uint32_t n = steal_half_into(dst, dst_tail);
    if (n == 0) return nullptr;
    --n;
    Header* run_now = dst.buffer_[(dst_tail + n) & kMask].get();
    if (n > 0) dst.tail_.store(dst_tail + n, std::memory_order_release);
    return run_now;
  }

  uint32_t len() const noexcept {
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint32_t tail = tail_.load(std::memory_order_acquire);
    return tail - real_of(head);
  }
  bool is_empty() const noexcept { return len() == 0; }
  uint32_t remaining_slots() const noexcept {
    const uint32_t steal = steal_of(head_.load(std::memory_order_acquire));
    return kCapacity - (tail_.load(std::memory_order_relaxed) - steal);
  }

 private:
  static constexpr uint32_t kMask = kCapacity - 1;
  static uint64_t pack(uint32_t steal, uint32_t real) noexcept {
    return (uint64_t{steal} << 32) | real;
  }
  static uint32_t steal_of(uint64_t h) noexcept { return static_cast<uint32_t>(h >> 32); }
  static uint32_t real_of(uint64_t h) noexcept { return static_cast<uint32_t>(h); }

  uint32_t steal_half_into(OneCasStealLocalQueue& dst, uint32_t dst_tail) noexcept {
    uint64_t prev = head_.load(std::memory_order_acquire);
    uint32_t n;
    uint32_t first;
    for (;;) {
      const uint32_t steal = steal_of(prev);
      const uint32_t real = real_of(prev);
      if (steal != real) return 0;
      const uint32_t tail = tail_.load(std::memory_order_acquire);
      n = tail - real;
      n -= n / 2;
      if (n == 0) return 0;
      // THE BUG: the real one moves only `real` here (pack(steal, real + n))
      // and lets `steal` catch up in a second CAS after copying. Moving both
      // at once tells the owner the slots are free while they are read below.
      if (head_.compare_exchange_weak(prev, pack(real + n, real + n), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        first = real;
        break;
      }
    }
    for (uint32_t i = 0; i < n; ++i) {
      dst.buffer_[(dst_tail + i) & kMask].get_mut() = buffer_[(first + i) & kMask].get();
    }
    return n;  // (no second CAS)
  }

  detail::Atomic<uint64_t> head_{0};
  detail::Atomic<uint32_t> tail_{0};
  detail::RaceCell<Header*> buffer_[kCapacity];
};

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_ONE_CAS_STEAL_LOCAL_QUEUE_H_
