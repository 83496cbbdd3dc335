// The epoll backend's state: ScheduledIo (one per registered fd: its
// readiness word and the ops waiting on it), the op slots (a header every
// slot shares and one payload per shape of operation, each in its own Slab,
// as the io_uring backend's), and the file-operation jobs it hands to the
// blocking pool.
//
// Readiness word (DESIGN §5, "edge-triggered readiness without lost
// edges"): {R, W, RDHUP, HUP, ERR} in the low bits and a 16-bit tick above.
// The reactor ORs in an event's bits and bumps the tick, even when the bits
// were already set. An attempt loads the word (noting the tick), makes its
// syscall, and on EAGAIN clears only its own direction's bit and only if the
// tick is unchanged: an edge that arrived since the load is never cleared
// away. RDHUP, HUP and ERR are final and never cleared; HUP and ERR make
// both directions ready. Today only the backend's thread reads or writes a
// word (the ops and their events run there); it is a detail::Atomic so the
// protocol stays the one DESIGN §5 specifies when a readiness guard
// (AsyncFd) or a multi-thread flavour reads it from elsewhere.
//
// Waiters: each direction of a ScheduledIo has an intrusive FIFO of the op
// slots waiting on it (slots never move, so plain pointers), plus a third
// list for poll ops, which wait on any event. An event unlinks every waiter
// of each direction it makes ready and wakes it with the op kReady (a
// multishot accept stays kInFlight): the op's own poll then retries.
//
// Thread-safety: the backend's thread only, except FileJob::cancelled and
// the jobs' hand-off through CompletionQueue (epoll_backend.cc).
#ifndef POLLUX_REACTOR_EPOLL_INTERNAL_SLOTS_H_
#define POLLUX_REACTOR_EPOLL_INTERNAL_SLOTS_H_

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "executor/blocking/blocking_pool.h"
#include "future/internal/atomic.h"
#include "reactor/backend.h"
#include "reactor/op_traits.h"

namespace pollux::reactor::epoll {

// ---- Readiness ----

inline constexpr uint32_t kReadable = 1u << 0;
inline constexpr uint32_t kWritable = 1u << 1;
inline constexpr uint32_t kReadClosed = 1u << 2;  // EPOLLRDHUP: the peer shut down writing
inline constexpr uint32_t kHangUp = 1u << 3;      // EPOLLHUP
inline constexpr uint32_t kError = 1u << 4;       // EPOLLERR
inline constexpr uint32_t kReadyBits = 0x1F;
inline constexpr uint32_t kTickShift = 16;
inline constexpr uint32_t kTickOne = 1u << kTickShift;

constexpr uint32_t tick_of(uint32_t word) { return word >> kTickShift; }
static_assert(kReadable == ready::kReadable && kWritable == ready::kWritable &&
                  kReadClosed == ready::kReadClosed && kHangUp == ready::kHangUp &&
                  kError == ready::kError && kReadyBits == ready::kAll,
              "AsyncFd reports the readiness word's bits as they are");

// Directions an op waits in; kAny is poll's (woken by every event).
enum class Dir : uint8_t { kRead = 0, kWrite = 1, kAny = 2 };
inline constexpr int kDirs = 3;

// The bits that make a direction worth an attempt.
constexpr uint32_t ready_mask(Dir d) {
  return d == Dir::kRead    ? (kReadable | kReadClosed | kHangUp | kError)
         : d == Dir::kWrite ? (kWritable | kHangUp | kError)
                            : kReadyBits;
}
// The bits an EAGAIN in a direction clears (never the final ones).
constexpr uint32_t clear_mask(Dir d) {
  return d == Dir::kRead ? kReadable : d == Dir::kWrite ? kWritable : (kReadable | kWritable);
}

struct SlotHeader;

struct WaitList {
  SlotHeader* head = nullptr;
  SlotHeader* tail = nullptr;
  bool empty() const noexcept { return head == nullptr; }
};

// One registered fd (a Slab<ScheduledIo> element; epoll_data holds its
// index and generation, so an event for a freed one is ignored).
struct ScheduledIo {
  uint32_t generation = 1;
  bool live = false;
  uint32_t next_free = 0;

  pollux::detail::Atomic<uint32_t> word{0};
  uint32_t index = 0;     // its own slab index
  int fd = -1;
  uint32_t epoch = 0;     // the fd's epoch when registered (reactor/fd_owner.h)
  bool owned = false;     // an FdOwner's: kept until it releases the fd
  bool stream = true;     // a short read or write means "drained" (not datagrams)
  bool blocking = false;  // no O_NONBLOCK: a poll(2) look precedes every attempt
  uint32_t users = 0;     // not owned: the ops (and AsyncFd registrations) using it; freed at 0
  WaitList waiters[kDirs];
};

// ---- Op slots ----

class FileJob;

// What every slot has: the OpCore the futures see, then the backend's own
// bookkeeping.
struct SlotHeader : OpCore {
  uint32_t next_free = 0;
  bool live = false;
  OpKind kind = OpKind::kNop;
  Dir dir = Dir::kRead;
  bool linked = false;  // in its ScheduledIo's waiter list
  // The registration this op uses (kNoSio: none yet), and its generation.
  uint32_t sio = UINT32_MAX;
  uint32_t sio_gen = 0;
  SlotHeader* wprev = nullptr;
  SlotHeader* wnext = nullptr;
  FileJob* job = nullptr;  // a file op on the blocking pool
  int32_t res = 0;
};
inline constexpr uint32_t kNoSio = UINT32_MAX;

// nop, close, poll, fsync; AsyncFd's registration and waits.
struct BarePayload {
  int fd = -1;
  uint32_t arg = 0;  // poll: events; fsync: datasync; ready wait: its interest
  uint64_t ref = 0;  // ready wait: the registration's id bits
};

// read, write, recv, send.
struct DataPayload {
  int fd = -1;
  std::vector<char> buf;
  size_t begin = 0;
  size_t end = 0;
  uint64_t offset = 0;  // read/write
  int flags = 0;        // recv/send
  // read/write with read(2)/write(2), not preadv2/pwritev2(RWF_NOWAIT) (which
  // the kernel or the file does not support).
  bool plain = false;
};

// sendmsg, recvmsg.
struct MsgPayload {
  int fd = -1;
  int flags = 0;
  std::vector<char> buf;
  size_t offset = 0;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int msg_flags = 0;
};

// accept, connect.
struct AddrPayload {
  int fd = -1;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  // connect: the kernel said EINPROGRESS; once writable, SO_ERROR says how
  // it ended (instead of connecting again).
  bool connect_in_progress = false;
};

// multishot accept: what it accepted and nobody took yet, in order.
struct MultiPayload {
  int fd = -1;
  std::vector<int32_t> results;
  size_t head = 0;
  bool empty() const noexcept { return head == results.size(); }
  size_t size() const noexcept { return results.size() - head; }
  int32_t pop_front() noexcept {
    const int32_t r = results[head++];
    if (head == results.size()) {
      results.clear();
      head = 0;
    }
    return r;
  }
};

// timeout.
struct TimeoutPayload {
  int64_t deadline_ns = 0;  // CLOCK_MONOTONIC
};

// openat, statx.
struct PathPayload {
  int fd = -1;  // dirfd
  std::string path;
  struct statx stx {};
};

template <class Payload>
struct Slot : SlotHeader {
  Payload p;
};

enum class SlabId : uint8_t { kBare, kData, kMsg, kAddr, kMulti, kTimeout, kPath };

// Id layout: generation (32) | slab (4) | index (28), as the io_uring
// backend's; generation 0 is never a live slot's.
constexpr uint64_t encode(SlabId slab, uint32_t index, uint32_t generation) {
  return (uint64_t{generation} << 32) | (uint64_t{static_cast<uint8_t>(slab)} << 28) | index;
}
constexpr uint32_t generation_of(uint64_t bits) { return static_cast<uint32_t>(bits >> 32); }
constexpr SlabId slab_id_of(uint64_t bits) { return static_cast<SlabId>((bits >> 28) & 0xF); }
constexpr uint32_t index_of(uint64_t bits) { return static_cast<uint32_t>(bits & 0x0FFFFFFF); }

// ---- File jobs ----

class CompletionQueue;

// A file operation on the blocking pool. It owns everything the syscall
// touches (path, buffer, statx result), so its op's slot can be freed or its
// future dropped while it runs; it goes back to the backend through the
// CompletionQueue, which frees it. A job still running when the backend has
// given up on it at shutdown is never freed (it may still be writing into
// its own memory): the closed queue keeps it for the rest of the process.
class FileJob final : public blocking::BlockingJob {
 public:
  void run() noexcept override;
  // Queued at pool shutdown: report ECANCELED without the syscall.
  void abandon() noexcept override;

  OpKind kind = OpKind::kNop;
  uint64_t op_bits = 0;  // the slot to complete
  std::shared_ptr<CompletionQueue> queue;
  // Set (by the backend's thread) when the op's future is gone: a job that
  // has not started yet skips its syscall. Release/acquire: pairs with the
  // load in run(), so a skipped job's result is the cancellation's.
  pollux::detail::Atomic<bool> cancelled{false};

  ~FileJob() {
    if (dup_fd >= 0) ::close(dup_fd);
  }

  int fd = -1;
  // The job's own duplicate of `fd` (submit_job makes it): a dropped op's
  // job may still run after its future, and then its File or socket, is
  // gone, and the number `fd` may name another file by then (found by
  // tests/cancellation_matrix_test under TSan). The syscall uses this one.
  int dup_fd = -1;
  int use_fd() const noexcept { return dup_fd >= 0 ? dup_fd : fd; }
  std::string path;
  int flags = 0;
  mode_t mode = 0;
  unsigned mask = 0;
  bool datasync = false;
  std::vector<char> buf;
  size_t begin = 0;
  size_t end = 0;
  uint64_t offset = 0;  // read/write: -1 for the fd's position
  sockaddr_storage addr{};  // connect (a blocking socket's)
  socklen_t addr_len = 0;
  struct statx stx {};
  int32_t res = 0;

  FileJob* next = nullptr;  // CompletionQueue's link (under its lock)
};

}  // namespace pollux::reactor::epoll

#endif  // POLLUX_REACTOR_EPOLL_INTERNAL_SLOTS_H_
