// The io_uring backend's operation slots: a header every slot shares and one
// payload per shape of operation, each in its own Slab (reactor/internal/
// slab.h). A slot keeps everything the kernel may read or write for its
// operation (data buffer, sockaddr and socklen, iovec/msghdr, timespec, path,
// statx buffer) and everything needed to prepare its SQE again (a -EAGAIN
// retry, an accept re-armed), from the first prep to the final CQE.
//
// Slot life (SlotState): InFlight(waker) -> Completed (result stored, waker
// woken) -> freed when the future takes the result; or InFlight -> Ignored
// (the future was dropped: a cancel was queued, or its unsubmitted SQE was
// rewritten into a NOP) -> freed by the final CQE, after closing any fd the
// operation still delivered. Multishot operations stay InFlight, queueing
// results, until a CQE without IORING_CQE_F_MORE.
//
// Thread-safety: the backend's thread only.
#ifndef POLLUX_REACTOR_URING_INTERNAL_SLOTS_H_
#define POLLUX_REACTOR_URING_INTERNAL_SLOTS_H_

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "future/waker.h"
#include "reactor/internal/slab.h"
#include "reactor/backend.h"
#include "reactor/op_traits.h"

struct io_uring_sqe;

namespace pollux::reactor::uring {

using SlotState = OpState;

// What every slot has (56 bytes): the OpCore the futures see, then the
// backend's own bookkeeping.
struct SlotHeader : OpCore {
  uint32_t next_free = 0;
  bool live = false;
  OpKind kind = OpKind::kNop;
  // The op's SQE was rewritten into a NOP before the kernel saw it: its CQE
  // delivers nothing (no fd to close, no accept to re-arm).
  bool neutralized = false;
  // Accepts: the backend cancelled this accept only to submit it again
  // (IoUringBackend::rearm_accepts_on).
  bool rearming = false;
  // A -EAGAIN is being retried: the poll for readiness is in flight, after
  // which the op itself is prepared again.
  bool awaiting_readiness = false;
  // A -EAGAIN recv/send/sendmsg/recvmsg is retried with
  // IORING_RECVSEND_POLL_FIRST (wait for readiness in the kernel first).
  bool poll_first = false;
  // The SQE this op was last prepared in (null: in no SQE, waiting for one
  // to be prepared again), and its number in the stream of every SQE the
  // backend ever prepared, counting from 1 (to tell whether the kernel has
  // consumed it yet; see IoUringBackend::neutralize_unsubmitted).
  io_uring_sqe* sqe = nullptr;
  uint64_t prep_seq = 0;
  int32_t res = 0;
};

// Every payload knows the fd its op acts on (-1: none), for re-preparation.

// nop, close, poll, fsync, connect-less ops; AsyncFd's readiness waits
// (which have no SQE: they wait in their registration's list).
struct BarePayload {
  int fd = -1;
  uint32_t arg = 0;  // poll: events; fsync: datasync; ready wait: its interest
  uint64_t ref = 0;  // ready wait: the registration's id
  SlotHeader* wprev = nullptr;  // ready wait: its registration's waiter list
  SlotHeader* wnext = nullptr;
  bool linked = false;
};

// read, write, recv, send.
struct DataPayload {
  int fd = -1;
  std::vector<char> buf;
  size_t begin = 0;
  size_t end = 0;
  uint64_t offset = 0;  // read/write
  int flags = 0;        // recv/send
};

// sendmsg, recvmsg.
struct MsgPayload {
  int fd = -1;
  int flags = 0;
  std::vector<char> buf;
  size_t offset = 0;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  iovec iov{};
  msghdr msg{};
};

// accept, connect.
struct AddrPayload {
  int fd = -1;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  // connect: the kernel said EINPROGRESS; after writability the result is
  // read with SO_ERROR instead of connecting again.
  bool connect_in_progress = false;
};

// One result a multishot op delivered: res, and (multishot recv) the
// provided buffer holding its bytes (-1: none).
struct QueuedCqe {
  int32_t res;
  int32_t buf;
};

// The results a multishot op has delivered and its owner not yet taken, in
// order. A vector plus a read index rather than std::deque: an empty deque
// still allocates (~576 bytes).
class CqeQueue {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  size_t size() const noexcept { return items_.size() - head_; }
  void push_back(int32_t r, int32_t buf = -1) { items_.push_back(QueuedCqe{r, buf}); }
  // Requires !empty().
  QueuedCqe pop_front() noexcept {
    const QueuedCqe r = items_[head_++];
    if (head_ == items_.size()) clear();  // keeps the capacity
    return r;
  }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }
  const QueuedCqe* begin() const noexcept { return items_.data() + head_; }
  const QueuedCqe* end() const noexcept { return items_.data() + items_.size(); }

 private:
  std::vector<QueuedCqe> items_;
  size_t head_ = 0;
};

// multishot accept, multishot recv.
struct MultiPayload {
  int fd = -1;
  CqeQueue results;
  // recv: the kernel ended the multishot with -ENOBUFS (the buffer ring ran
  // dry); it is in no SQE until a buffer comes back (return_buffer).
  bool starved = false;
  // recv: queued arrivals reached IoUringOptions::recv_queued_max and an
  // ASYNC_CANCEL is on its way; results keep queueing until the final CQE.
  bool paused = false;
};

// timeout.
struct TimeoutPayload {
  int fd = -1;
  __kernel_timespec ts{};
};

// AsyncFd's registration: a multishot poll (IORING_POLL_ADD_MULTI) whose
// CQEs are edges; `word` is ready:: bits | tick << 16, as the epoll
// backend's readiness word (no atomics: the backend's thread only).
struct ReadyPayload {
  int fd = -1;
  uint32_t word = 0;
  SlotHeader* head = nullptr;  // waiting readiness waits (bare slots)
  SlotHeader* tail = nullptr;
};

// openat, statx.
struct PathPayload {
  int fd = -1;  // dirfd
  std::string path;
  int flags = 0;
  unsigned mask = 0;  // statx
  mode_t mode = 0;    // openat
  struct statx stx {};
};

template <class Payload>
struct Slot : SlotHeader {
  Payload p;
};

// Which slab a kind's slots live in.
enum class SlabId : uint8_t { kBare, kData, kMsg, kAddr, kMulti, kTimeout, kPath, kReady };
inline constexpr int kSlabCount = 8;

constexpr SlabId slab_of(OpKind kind) {
  switch (kind) {
    case OpKind::kRead:
    case OpKind::kWrite:
    case OpKind::kRecv:
    case OpKind::kSend:
      return SlabId::kData;
    case OpKind::kSendMsg:
    case OpKind::kRecvMsg:
      return SlabId::kMsg;
    case OpKind::kAccept:
    case OpKind::kConnect:
      return SlabId::kAddr;
    case OpKind::kAcceptMulti:
    case OpKind::kRecvMulti:
      return SlabId::kMulti;
    case OpKind::kTimeout:
      return SlabId::kTimeout;
    case OpKind::kOpenAt:
    case OpKind::kStatx:
      return SlabId::kPath;
    case OpKind::kReadyRegister:
      return SlabId::kReady;
    case OpKind::kNop:
    case OpKind::kClose:
    case OpKind::kPoll:
    case OpKind::kFsync:
    case OpKind::kReadyWait:
      return SlabId::kBare;
  }
  return SlabId::kBare;
}

// user_data / OpId layout: generation (32) | slab (4) | index (28). A live
// slot's generation is never 0, so values with generation 0 are tags.
constexpr uint64_t encode(SlabId slab, uint32_t index, uint32_t generation) {
  return (uint64_t{generation} << 32) | (uint64_t{static_cast<uint8_t>(slab)} << 28) | index;
}
constexpr uint32_t generation_of(uint64_t ud) { return static_cast<uint32_t>(ud >> 32); }
constexpr SlabId slab_id_of(uint64_t ud) { return static_cast<SlabId>((ud >> 28) & 0xF); }
constexpr uint32_t index_of(uint64_t ud) { return static_cast<uint32_t>(ud & 0x0FFFFFFF); }

}  // namespace pollux::reactor::uring

#endif  // POLLUX_REACTOR_URING_INTERNAL_SLOTS_H_
