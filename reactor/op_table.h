// OpTable: one slot per in-flight io_uring operation, owned by one driver.
//
// A slot keeps everything the kernel may read or write for its operation
// (data buffer, sockaddr and socklen, iovec/msghdr, timespec, path, statx
// buffer) from prep
// to the final CQE, so a future can be dropped at any moment without the
// kernel touching freed memory. `user_data` is the slot index plus a 32-bit
// generation, bumped at every release, so a stale CQE never reaches a reused
// slot.
//
// Slot life:  InFlight(waker) -> Completed (result stored, waker woken) ->
// Free (the future took the result), or InFlight -> Ignored (the future was
// dropped: an ASYNC_CANCEL was queued; the slot waits for the final CQE, then
// closes any fd the operation still delivered, and is freed). Multishot
// operations stay InFlight, queueing results, until a CQE without
// IORING_CQE_F_MORE.
//
// Addresses of slots are stable (a deque of slots is never shrunk), because
// the kernel holds pointers into them. Thread-safety: driver thread only.
#ifndef POLLUX_REACTOR_OP_TABLE_H_
#define POLLUX_REACTOR_OP_TABLE_H_

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "future/waker.h"

struct io_uring_sqe;

namespace pollux::reactor {

// Memory an operation lends the kernel; lives in the slot.
struct OpStorage {
  std::vector<char> buf;
  sockaddr_storage addr{};
  socklen_t addrlen = 0;
  __kernel_timespec ts{};
  iovec iov{};
  msghdr msg{};
  std::string path;
  struct statx stx{};  // statx result buffer

  void clear() noexcept {
    buf = {};
    path = {};
  }
};

struct CqeResult {
  int32_t res;
  uint32_t flags;
};

// The results a multishot op has delivered and its owner not yet taken, in
// order. A vector plus a read index rather than std::deque: every slot has
// one, most never use it, and an empty deque still allocates (~576 bytes).
class CqeQueue {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  size_t size() const noexcept { return items_.size() - head_; }
  void push_back(CqeResult r) { items_.push_back(r); }
  // Requires !empty().
  CqeResult pop_front() noexcept {
    CqeResult r = items_[head_++];
    if (head_ == items_.size()) clear();  // keeps the capacity
    return r;
  }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }
  const CqeResult* begin() const noexcept { return items_.data() + head_; }
  const CqeResult* end() const noexcept { return items_.data() + items_.size(); }

 private:
  std::vector<CqeResult> items_;
  size_t head_ = 0;
};

enum class SlotState : uint8_t { kFree, kInFlight, kCompleted, kIgnored };

struct OpSlot {
  uint32_t generation = 1;
  SlotState state = SlotState::kFree;
  bool returns_fd = false;   // a delivered fd nobody claims must be closed
  bool multishot = false;
  // Accepts only: the listening socket, and whether the driver is cancelling
  // this accept only to submit it again (IoUringDriver::rearm_accepts_on).
  int32_t accept_fd = -1;
  bool rearming = false;
  // The SQE this op was last prepared in. It may already be submitted (and
  // the ring position reused); IoUringDriver::cancel_op checks before use.
  io_uring_sqe* sqe = nullptr;
  CqeResult result{0, 0};
  CqeQueue more;  // queued multishot results
  Waker waker;
  OpStorage storage;
  uint32_t next_free = 0;
};

class OpTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // A free slot, now InFlight. Its storage is empty.
  uint32_t allocate();
  OpSlot& at(uint32_t index) noexcept { return slots_[index]; }
  // Returns the slot to the free list and bumps its generation.
  void release(uint32_t index) noexcept;

  static uint64_t user_data(uint32_t index, uint32_t generation) noexcept {
    return (uint64_t{generation} << 32) | index;
  }
  // The slot a CQE belongs to, or nullptr when it is stale (generation mismatch).
  OpSlot* lookup(uint64_t user_data, uint32_t* index) noexcept;

  // Slots not free (in flight, completed-unclaimed or ignored).
  size_t live() const noexcept { return live_; }
  size_t capacity() const noexcept { return slots_.size(); }

 private:
  std::deque<OpSlot> slots_;
  uint32_t free_head_ = kNone;
  size_t live_ = 0;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_OP_TABLE_H_
