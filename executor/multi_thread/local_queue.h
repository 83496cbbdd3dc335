// LocalQueue: a multi-thread worker's bounded run queue of stealable tasks
// (tokio's design, DESIGN §4): the owner pushes and pops at either end
// without locks, other workers steal half of it.
//
// A ring of kCapacity slots (256; 4 under the model checker, so that
// overflow and stealing are reached). `tail_` is written only by the owner.
// `head_` packs two 32-bit positions: `real`, where the owner pops, and
// `steal`, where a steal in progress started; they differ only while a
// stealer copies tasks out. The slots between `steal` and `tail_` are in
// use: the owner never overwrites a slot a stealer may still be copying.
//
// - push_back (owner): into the ring; when it is full, half of it (the half
//   about to run next, tokio >= 1.52 moves the later half; here the earlier
//   half, claimed with one CAS) plus the new task go to the inject queue in
//   one batch; while a steal is in progress the new task alone goes there.
// - pop (owner): from `real`.
// - steal_into (another worker): claims half of the queue with one CAS on
//   `real` (leaving `steal` where it was, which locks out other stealers and
//   keeps the owner off the slots), copies them into its own queue, then a
//   second CAS moves `steal` up to `real`. Only then may the owner reuse the
//   slots. A one-CAS steal would let the owner overwrite slots being copied:
//   tests/model/ has that as a planted bug.
//
// Every hand-off carries RUNNING's ownership (DESIGN §4) with a
// release/acquire edge: the owner's tail store (release) -> a stealer's
// tail load (acquire); a stealer's final head CAS (release) -> the owner's
// head load (acquire) before it reuses a slot.
//
// Thread-safety: push_back/pop on the owner thread; steal_into, len and
// is_empty from any thread.
#ifndef POLLUX_EXECUTOR_MULTI_THREAD_LOCAL_QUEUE_H_
#define POLLUX_EXECUTOR_MULTI_THREAD_LOCAL_QUEUE_H_

#include <atomic>
#include <cstdint>

#include "executor/internal/task.h"
#include "executor/internal/task_list.h"
#include "future/internal/atomic.h"
#include "future/internal/race_cell.h"

namespace pollux::detail {

#if defined(POLLUX_MODEL)
inline constexpr uint32_t kLocalQueueCapacity = 4;
#else
inline constexpr uint32_t kLocalQueueCapacity = 256;
#endif

class LocalQueue {
 public:
  static constexpr uint32_t kCapacity = kLocalQueueCapacity;
  static_assert((kCapacity & (kCapacity - 1)) == 0, "a power of two");

  LocalQueue() = default;
  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;

  // Owner: queues `task`. When the ring is full, moves half of it and `task`
  // into `overflow` (the caller then pushes that batch to the inject queue)
  // and returns true; false when the task went into the ring.
  bool push_back(Header* task, TaskList& overflow) noexcept;
  // Owner: the next task, or null when empty.
  Header* pop() noexcept;
  // Another worker: moves half of this queue into `dst` (the caller's own
  // queue, which must be at most half full) and returns one of the stolen
  // tasks to run now (not queued in dst). Null when nothing was stolen
  // (empty, or another steal in progress). `stolen`, when given, receives
  // how many tasks the steal took (the one returned included; 0 when null
  // is returned).
  Header* steal_into(LocalQueue& dst, uint32_t* stolen = nullptr) noexcept;

  // Tasks queued (a snapshot).
  uint32_t len() const noexcept;
  bool is_empty() const noexcept { return len() == 0; }
  // Tasks the owner could still push without overflowing (owner only).
  uint32_t remaining_slots() const noexcept;

 private:
  static constexpr uint32_t kMask = kCapacity - 1;
  static uint64_t pack(uint32_t steal, uint32_t real) noexcept {
    return (uint64_t{steal} << 32) | real;
  }
  static uint32_t steal_of(uint64_t h) noexcept { return static_cast<uint32_t>(h >> 32); }
  static uint32_t real_of(uint64_t h) noexcept { return static_cast<uint32_t>(h); }

  // Claims half of the queue for `dst` and copies it there starting at
  // `dst_tail`; returns how many (0: nothing).
  uint32_t steal_half_into(LocalQueue& dst, uint32_t dst_tail) noexcept;

  Atomic<uint64_t> head_{0};
  Atomic<uint32_t> tail_{0};
  RaceCell<Header*> buffer_[kCapacity];
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_MULTI_THREAD_LOCAL_QUEUE_H_
