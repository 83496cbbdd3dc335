// FdOwner: "pollux owns this fd and will say so before it closes it". What
// lets a readiness backend (epoll) keep one registration per fd for the
// fd's whole life without ever looking it up by a reused fd number.
//
//   struct SocketState {
//     OwnedFd fd;
//     reactor::FdOwner owner{fd.get()};  // declared after fd: released first
//   };
//
// Why it exists. The operation futures name an fd by its number only. An
// epoll backend that registered fd 7 for a socket must remove that
// registration before 7 is closed (EPOLL_CTL_DEL before close, DESIGN §5),
// and must never mistake a later file that reuses the number 7 for the old
// one. It can only do that for fds whose closing it hears about. Every fd
// number has a process-wide epoch: an FdOwner bumps it to odd when it claims
// the fd and to even again when it releases it. A backend stores the epoch
// next to each registration and trusts the registration only while the
// fd's epoch is unchanged; an owned fd (odd epoch) keeps its registration
// until the owner releases it, and the release tells every backend that
// registered it (reactor/internal/fd_records.h), which removes it from its
// epoll set right there, on the releasing thread, before the fd closes.
// Fds nobody claimed (a pipe, an eventfd the user passes to a raw
// reactor::read) are registered only for the length of one wait.
//
// net/'s SocketState owns one for every socket (so the two halves of a split
// stream share the one registration: they share the state); AsyncFd owns one
// for the user's fd. On io_uring nothing registers, and claiming or releasing
// costs an atomic or two.
//
// Rules: claim an fd only while it is open, and release (destroy the owner)
// before closing it. Claiming an fd that is already claimed fails (claimed()
// is false): that is two owners for one fd.
//
// Thread-safety: an FdOwner may be created and destroyed on any thread.
#ifndef POLLUX_REACTOR_FD_OWNER_H_
#define POLLUX_REACTOR_FD_OWNER_H_

#include <cstdint>
#include <utility>

namespace pollux::reactor {

// A claim on an open fd, released (destroyed) before the fd closes (see above).
class FdOwner {
 public:
  // Owns nothing.
  FdOwner() noexcept = default;
  // Claims `fd` (see claimed()).
  explicit FdOwner(int fd) noexcept;
  // Releases the fd: every backend that registered it removes it now.
  ~FdOwner() { release(); }
  FdOwner(FdOwner&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), epoch_(std::exchange(o.epoch_, 0)) {}
  FdOwner& operator=(FdOwner&& o) noexcept {
    if (this != &o) {
      release();
      fd_ = std::exchange(o.fd_, -1);
      epoch_ = std::exchange(o.epoch_, 0);
    }
    return *this;
  }
  FdOwner(const FdOwner&) = delete;
  FdOwner& operator=(const FdOwner&) = delete;

  // True when this owner holds the fd: false for a negative fd, an fd
  // already claimed by another owner, or one beyond the table (2^22).
  bool claimed() const noexcept { return epoch_ != 0; }
  int fd() const noexcept { return fd_; }
  // Releases now (idempotent; the destructor calls it).
  void release() noexcept;

 private:
  int fd_ = -1;
  uint32_t epoch_ = 0;  // the odd epoch of our claim, 0 when none
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_FD_OWNER_H_
