// EpollSyscalls: the thin seam between the epoll backend and the syscalls
// that can fail in ways a test cannot provoke on demand, so tests can
// inject faults (epoll_wait failing with EINTR or ENOMEM, epoll_ctl
// refusing a registration, a recv or send saying EAGAIN although readiness
// said go, accept4 out of descriptors) without a special kernel. The epoll
// analogue of uring/internal/uring_syscalls.h.
//
// Each call has the libc contract: the result, or -1 with errno set. The
// default implementation makes the real call. Every call is made on the
// backend's thread only (a release's EPOLL_CTL_DEL on another thread, and
// shutdown's drain, stay real calls). A virtual call costs a few ns next to
// the syscall each of these makes, as on io_uring.
#ifndef POLLUX_REACTOR_EPOLL_INTERNAL_EPOLL_SYSCALLS_H_
#define POLLUX_REACTOR_EPOLL_INTERNAL_EPOLL_SYSCALLS_H_

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

namespace pollux::reactor {

class EpollSyscalls {
 public:
  virtual ~EpollSyscalls() = default;
  // The backend's one kernel entry per park or look (-1/EINTR is normal).
  virtual int epoll_wait(int epfd, epoll_event* events, int max_events, int timeout_ms) {
    return ::epoll_wait(epfd, events, max_events, timeout_ms);
  }
  // Registrations: ADD (and MOD, taking over a number) when an op first
  // waits on an fd, DEL when the last user of an unowned fd leaves.
  virtual int epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
    return ::epoll_ctl(epfd, op, fd, event);
  }
  // The socket calls of reads, writes and accepts (flags already carry
  // MSG_DONTWAIT, and MSG_NOSIGNAL for send).
  virtual ssize_t recv(int fd, void* buf, size_t len, int flags) {
    return ::recv(fd, buf, len, flags);
  }
  virtual ssize_t send(int fd, const void* buf, size_t len, int flags) {
    return ::send(fd, buf, len, flags);
  }
  virtual int accept4(int fd, sockaddr* addr, socklen_t* addr_len, int flags) {
    return ::accept4(fd, addr, addr_len, flags);
  }

  // The process-wide default (stateless).
  static EpollSyscalls& real();
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_EPOLL_INTERNAL_EPOLL_SYSCALLS_H_
