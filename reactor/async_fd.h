// AsyncFd: readiness of an fd the user owns, on either backend. The way to
// plug an eventfd, a pipe, a device or a socket made elsewhere into a task.
//
//   absl::StatusOr<reactor::AsyncFd> afd = reactor::AsyncFd::create(efd);  // inside a runtime
//   for (;;) {
//     absl::StatusOr<reactor::ReadyGuard> g = co_await afd->readable();
//     if (!g.ok()) break;
//     uint64_t n;
//     if (::read(efd, &n, sizeof n) < 0 && errno == EAGAIN) {
//       g->clear_ready();   // drained: wait for the next edge
//       continue;
//     }
//     ... n events ...
//   }
//
// Readiness is edge-triggered and sticky, as in tokio: once the fd was seen
// ready for reading, readable() stays ready (returns at once) until you
// clear it. Do your own non-blocking syscall; when it says EAGAIN, call
// the guard's clear_ready(): it clears readiness only if no new edge came
// since the guard was made (each event moves a tick the guard remembers),
// so an edge that arrives between your read and the clear is never lost.
// Hang-up, error and "peer closed its writing" are final: they keep the
// fd ready for good.
//
// Backends: on io_uring, one multishot poll (IORING_POLL_ADD_MULTI) for the
// AsyncFd's life; on epoll, the fd's one edge-triggered registration, the
// same one sockets use (reactor/epoll/). The fd should be O_NONBLOCK: pollux
// never changes that flag on an fd it did not create, and a blocking read
// after a stale readiness would block the runtime's thread.
//
// Ownership: the caller keeps the fd and closes it after the AsyncFd is
// gone (the AsyncFd holds the fd's FdOwner claim, reactor/fd_owner.h, and
// releases it first). create() fails with AlreadyExists for an fd pollux
// already owns (a TcpStream's fd(), another AsyncFd's).
//
// Cancellation: dropping a readable()/writable() future before Ready has no
// effect on either backend: readiness is not consumed by a wait, only by
// clear_ready().
//
// Thread-safety: an AsyncFd and its futures belong to the thread of the
// backend it was created on (created, polled and dropped there; checked).
// It must outlive its futures; moving it is fine when none is pending. On a
// multi_thread runtime it pins the task that created it to that worker for
// as long as it lives (TaskPin, executor/context.h: its registration is
// that worker's), and keeps that task's cell alive, so it may be handed to
// a child task of the same worker.
#ifndef POLLUX_REACTOR_ASYNC_FD_H_
#define POLLUX_REACTOR_ASYNC_FD_H_

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "executor/context.h"
#include "reactor/backend.h"
#include "reactor/fd_owner.h"
#include "reactor/ops.h"

namespace pollux::reactor {

class AsyncFd;
namespace detail {
struct ReadyWaitSpec;
}  // namespace detail

// What a readable()/writable() future found: the fd's readiness when it
// completed, and the means to clear it.
class ReadyGuard {
 public:
  // ready:: bits (kReadable, kWritable, kReadClosed, kHangUp, kError).
  uint32_t ready() const noexcept { return bits_; }
  bool is_readable() const noexcept { return (bits_ & ready::kReadable) != 0; }
  bool is_writable() const noexcept { return (bits_ & ready::kWritable) != 0; }
  bool is_read_closed() const noexcept { return (bits_ & ready::kReadClosed) != 0; }
  bool is_hang_up() const noexcept { return (bits_ & ready::kHangUp) != 0; }
  bool is_error() const noexcept { return (bits_ & ready::kError) != 0; }
  // "I drained it (the syscall said EAGAIN): wait for the next edge."
  // Clears this guard's interest only, and only if no event came since
  // the guard was made. The guard's AsyncFd must still exist.
  void clear_ready() noexcept;

 private:
  friend class AsyncFd;
  friend struct detail::ReadyWaitSpec;
  ReadyGuard(AsyncFd* afd, uint32_t interest, uint32_t bits, uint32_t tick) noexcept
      : afd_(afd), interest_(interest), bits_(bits), tick_(tick) {}
  AsyncFd* afd_;
  uint32_t interest_;
  uint32_t bits_;
  uint32_t tick_;
};

namespace detail {
struct ReadyWaitSpec {
  using Output = absl::StatusOr<ReadyGuard>;
  AsyncFd* afd;
  uint32_t interest;
  OpId start(Backend& b);
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};
}  // namespace detail

// Edge-triggered, sticky readiness of an fd the user owns (see above).
class AsyncFd {
 public:
  // A readable()/writable() future. Output: the guard, or the error the
  // backend reported for the fd (a bad fd is kFailedPrecondition, EBADF).
  using ReadyFuture = Op<detail::ReadyWaitSpec>;

  // Registers `fd` with the current thread's backend. Errors:
  // FailedPrecondition outside a runtime with I/O; InvalidArgument for a
  // negative fd; AlreadyExists when pollux already owns `fd`; the backend's
  // own (epoll cannot watch a regular file: EPERM, kPermissionDenied).
  static absl::StatusOr<AsyncFd> create(int fd);

  AsyncFd(AsyncFd&& o) noexcept
      : backend_(std::exchange(o.backend_, nullptr)),
        reg_(std::exchange(o.reg_, OpId{})),
        owner_(std::move(o.owner_)),
        pin_(std::move(o.pin_)),
        fd_(std::exchange(o.fd_, -1)) {}
  AsyncFd& operator=(AsyncFd&& o) noexcept;
  AsyncFd(const AsyncFd&) = delete;
  AsyncFd& operator=(const AsyncFd&) = delete;
  // Deregisters (before the claim on the fd is released; the fd stays open).
  ~AsyncFd() { reset(); }

  // Ready for reading (or closed, hung up, failed): see the header comment.
  [[nodiscard]] ReadyFuture readable() { return ready(ready::kReadable); }
  // Ready for writing (or hung up, failed).
  [[nodiscard]] ReadyFuture writable() { return ready(ready::kWritable); }
  // Either (interest: ready::kReadable | ready::kWritable).
  [[nodiscard]] ReadyFuture ready(uint32_t interest) {
    return ReadyFuture(detail::ReadyWaitSpec{this, interest});
  }

  int fd() const noexcept { return fd_; }

 private:
  friend class ReadyGuard;
  friend struct detail::ReadyWaitSpec;
  AsyncFd(Backend* b, OpId reg, FdOwner owner, TaskPin pin, int fd) noexcept
      : backend_(b), reg_(reg), owner_(std::move(owner)), pin_(std::move(pin)), fd_(fd) {}
  void reset() noexcept;

  Backend* backend_ = nullptr;
  OpId reg_;
  FdOwner owner_;  // released after reg_ is cancelled (reset())
  TaskPin pin_;    // while reg_ lives in this worker's backend
  int fd_ = -1;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_ASYNC_FD_H_
