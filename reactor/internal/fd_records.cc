#include "reactor/internal/fd_records.h"

#include <algorithm>
#include <atomic>
#include <vector>

namespace pollux::reactor::detail {
pollux::detail::Atomic<FdRecord*> g_fd_chunks[kMaxTrackedFd / kFdChunk] = {};

namespace {

using Record = FdRecord;

Record* record(int fd, bool create) {
  if (fd < 0 || fd >= kMaxTrackedFd) return nullptr;
  pollux::detail::Atomic<Record*>& slot = g_fd_chunks[fd >> kFdChunkBits];
  // acquire: pairs with the compare-exchange below that published the
  // chunk, so its records are seen constructed.
  Record* chunk = slot.load(std::memory_order_acquire);
  if (chunk == nullptr) {
    if (!create) return nullptr;
    Record* fresh = new Record[kFdChunk];
    // acq_rel: publishes `fresh` (release) or, losing the race, reads the
    // winner's chunk (acquire), as the load above.
    if (slot.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      chunk = fresh;
    } else {
      delete[] fresh;
    }
  }
  return &chunk[fd & (kFdChunk - 1)];
}

}  // namespace

uint32_t fd_claim(int fd) noexcept {
  Record* r = record(fd, /*create=*/true);
  if (r == nullptr) return 0;
  // relaxed: only a first guess; the compare-exchange decides.
  uint32_t e = r->epoch.load(std::memory_order_relaxed);
  for (;;) {
    if (e & 1) return 0;  // claimed already
    // acq_rel: the claim is seen (acquire side of fd_epoch) before any
    // backend registers the fd under the new epoch; pairs with fd_release.
    if (r->epoch.compare_exchange_weak(e, e + 1, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      return e + 1;
    }
  }
}

void fd_release(int fd, uint32_t epoch) noexcept {
  Record* r = record(fd, /*create=*/false);
  if (r == nullptr || (epoch & 1) == 0) return;
  uint32_t expected = epoch;
  // seq_cst, and the has_listeners load after it: store-then-load against
  // fd_listen's has_listeners store then epoch load. Either this release
  // sees the flag (and takes the listener under the lock, after fd_listen
  // added it), or fd_listen sees the new epoch and refuses. An RMW, not a
  // fence (TSan does not model fences, DESIGN §10).
  if (!r->epoch.compare_exchange_strong(expected, epoch + 1, std::memory_order_seq_cst)) return;
  if (!r->has_listeners.load(std::memory_order_seq_cst)) return;
  std::vector<std::shared_ptr<FdCloseListener>> told;
  {
    pollux::detail::MutexLock lock(r->mu);
    told.swap(r->listeners);
    // relaxed: under the lock, which every later fd_listen takes.
    r->has_listeners.store(false, std::memory_order_relaxed);
  }
  // Outside the lock: a listener takes its own lock and makes a syscall.
  for (const std::shared_ptr<FdCloseListener>& l : told) l->fd_closing(fd, epoch);
}

bool fd_listen(int fd, uint32_t epoch, const std::shared_ptr<FdCloseListener>& listener) {
  Record* r = record(fd, /*create=*/false);
  if (r == nullptr || (epoch & 1) == 0) return false;  // only owned fds have listeners
  pollux::detail::MutexLock lock(r->mu);
  // seq_cst: the other half of fd_release's store-then-load (see there).
  r->has_listeners.store(true, std::memory_order_seq_cst);
  if (r->epoch.load(std::memory_order_seq_cst) != epoch) return false;
  if (std::find(r->listeners.begin(), r->listeners.end(), listener) == r->listeners.end()) {
    r->listeners.push_back(listener);
  }
  return true;
}

}  // namespace pollux::reactor::detail
