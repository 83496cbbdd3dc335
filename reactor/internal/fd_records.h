// The process-wide table behind FdOwner (reactor/fd_owner.h): one record per
// fd number, with the number's epoch and the backends to tell when its
// owner releases it. Backend-internal; FdOwner is the public face.
//
// Epochs: 0 at first; odd while an FdOwner holds the fd; bumped at every
// claim and every release, so (fd, epoch) names one ownership and is never
// reused (a 32-bit epoch wraps after 2^31 owners of one fd number).
//
// Listeners: a backend that keeps a registration for an owned fd adds
// itself with fd_listen(); the release calls fd_closing() on each of them,
// once, before the fd is closed, on whichever thread released it. A
// listener must therefore remove the fd from its kernel sets right away
// (epoll_ctl is thread-safe) and hand the rest of the clean-up to its own
// thread.
//
// Records are allocated in chunks of 1024 on first use and never freed (the
// table lives as long as the process).
//
// Thread-safety: everything here is thread-safe.
#ifndef POLLUX_REACTOR_INTERNAL_FD_RECORDS_H_
#define POLLUX_REACTOR_INTERNAL_FD_RECORDS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"

namespace pollux::reactor::detail {

class FdCloseListener {
 public:
  virtual ~FdCloseListener() = default;
  // `fd`, owned at `epoch`, is closed as soon as this returns. Any thread;
  // must not call back into the fd table.
  virtual void fd_closing(int fd, uint32_t epoch) noexcept = 0;
};

// Fds at or above this are never claimed (their owners work unregistered).
inline constexpr int kMaxTrackedFd = 1 << 22;

// One fd number's record (internal to fd_records.cc but for fd_epoch, which
// a readiness backend reads on every operation, so it is inline).
struct FdRecord {
  pollux::detail::Atomic<uint32_t> epoch{0};
  // Set (under mu) by the first fd_listen of a claim, so a release on the
  // io_uring backend, where nobody listens, takes no lock.
  pollux::detail::Atomic<bool> has_listeners{false};
  pollux::detail::Mutex mu;
  std::vector<std::shared_ptr<FdCloseListener>> listeners ABSL_GUARDED_BY(mu);
};
inline constexpr int kFdChunkBits = 10;
inline constexpr int kFdChunk = 1 << kFdChunkBits;
// Chunk pointers, published once each and never freed: the records stay
// reachable for the life of the process.
extern pollux::detail::Atomic<FdRecord*> g_fd_chunks[kMaxTrackedFd / kFdChunk];

// The current epoch of `fd` (0 for an fd never claimed or out of range).
inline uint32_t fd_epoch(int fd) noexcept {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxTrackedFd)) return 0;
  // acquire: pairs with the compare-exchange in fd_records.cc that
  // published the chunk, so its records are seen constructed.
  FdRecord* chunk = g_fd_chunks[fd >> kFdChunkBits].load(std::memory_order_acquire);
  // acquire: pairs with fd_claim's and fd_release's read-modify-writes, so
  // a backend that reads an epoch also sees what its owner did before.
  return chunk == nullptr ? 0 : chunk[fd & (kFdChunk - 1)].epoch.load(std::memory_order_acquire);
}

// Claims `fd`: its new odd epoch, or 0 when it is out of range or already
// claimed.
uint32_t fd_claim(int fd) noexcept;

// Ends the claim `epoch` of `fd` and tells every listener.
void fd_release(int fd, uint32_t epoch) noexcept;

// Adds `listener` to `fd`'s record if the fd is still claimed at `epoch`;
// false when its owner has released it meanwhile (the caller then undoes
// its registration). A listener already present is not added twice.
bool fd_listen(int fd, uint32_t epoch, const std::shared_ptr<FdCloseListener>& listener);

}  // namespace pollux::reactor::detail

#endif  // POLLUX_REACTOR_INTERNAL_FD_RECORDS_H_
