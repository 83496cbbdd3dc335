// Operations as futures: nop, read, write, recv, send, sendmsg, recvmsg,
// accept, connect, close, poll_add, timeout and the file operations, on the
// I/O backend of the current thread's RuntimeContext (io_uring, or epoll
// where io_uring is refused: runtime/runtime.h; the futures name no backend
// type, so one binary runs on either).
//
//   auto [n, buf] = co_await reactor::read(fd, std::vector<char>(4096));
//
// Ownership: an operation that hands memory to the kernel owns it. The data
// buffer moves into the operation and comes back with the result (IoResult),
// as in monoio and tokio-uring, because the kernel may write into it until
// the final completion, which can come after the future is gone.
//
// Lifecycle: the first poll starts the operation on the backend (Backend::
// start_*: its slot takes the buffer, sockaddr, path). io_uring submits it
// at the end of the tick; epoll makes the syscall right there and waits for
// readiness only on EAGAIN (its next poll after the fd is ready retries).
// Every poll keeps the coop budget protocol. A start that finds no room
// this tick (a full submission queue the kernel refuses to drain) is
// retried at the next tick; the buffer stays here. A start that cannot
// allocate (its slot, its registration, its blocking-pool job) ends the op
// with kResourceExhausted, handing the buffer back; it never throws.
//
// Cancellation: dropping an operation before Ready cancels it (Backend::
// cancel); its slot keeps the buffer until the kernel is done with it. What
// may already have happened depends on the backend:
//   io_uring  the operation may still have happened: a dropped write may
//             have written, a dropped read may have consumed data (it is
//             lost), a dropped accept may have accepted a connection (the
//             backend closes that fd, so it never leaks), a dropped connect
//             may have connected (the socket stays the caller's).
//   epoll     a dropped read, write, send, recv, sendmsg, recvmsg, accept
//             or poll_add has had no effect: its syscall runs only inside
//             its own poll, which returns the result. A dropped connect may
//             still have connected (the handshake runs in the kernel). A
//             dropped file operation (openat, statx, fsync, read/write at an
//             offset) may still run to completion on the blocking pool (an
//             fd a dropped open delivers is closed); it works on its own
//             duplicate of the fd, so closing the file right after the drop
//             is safe.
// Retry only what your protocol can repeat.
//
// Thread-safety: an operation is polled and dropped on the thread of the
// backend it started on (checked in debug builds). Polling one on a thread
// with no backend yields FailedPrecondition, never a crash.
#ifndef POLLUX_REACTOR_OPS_H_
#define POLLUX_REACTOR_OPS_H_

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executor/context.h"
#include "future/assert.h"
#include "future/future.h"
#include "future/poll_into.h"
#include "reactor/backend.h"
#include "reactor/errno_status.h"
#include "reactor/owned_fd.h"

namespace pollux::reactor {

// The backend of this thread's RuntimeContext, or null. Inline: every op
// poll checks it.
inline Backend* current_backend() noexcept { return RuntimeContext::current().backend; }

// The result of an operation that carried a data buffer: bytes transferred
// (or the error) and the buffer, handed back in every case.
struct IoResult {
  absl::StatusOr<size_t> n;
  std::vector<char> buf;
};

// The result of recvmsg: bytes received (or the error), the buffer (always
// handed back), the sender's address and whether the datagram was truncated
// (MSG_TRUNC: it was longer than the buffer; the rest is lost).
struct RecvMsgResult {
  absl::StatusOr<size_t> n;
  std::vector<char> buf;
  sockaddr_storage from{};
  socklen_t from_len = 0;
  bool truncated = false;
};

// An accepted connection: its fd (owned) and the peer's address.
struct Accepted {
  OwnedFd fd;
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
};

namespace detail {
absl::Status no_backend_status();
// kResourceExhausted: an op start found no memory.
absl::Status out_of_memory_status();
}  // namespace detail

// The shared state machine of every single-shot operation. `Spec` provides:
//   using Output;
//   OpId start(Backend&)              // the kind's entry point; on success it
//                                     // moves owned memory into the backend
//   Output finish(Backend&, OpId)     // takes the result (frees the slot)
//   Output fail(absl::Status)         // when the op cannot start at all
//                                     // (hands back any memory it owns)
template <class Spec>
class [[nodiscard]] Op {
 public:
  using Output = typename Spec::Output;

  explicit Op(Spec spec) : spec_(std::move(spec)) {}
  Op(Op&& o) noexcept : spec_(std::move(o.spec_)) {
    POLLUX_DCHECK(!o.id_.valid(), "an I/O operation was moved after its first poll");
  }
  Op& operator=(Op&&) = delete;
  // Small enough to inline: a finished or moved-from op (every op a
  // combinator or coroutine moves by value) is two tests; only dropping one
  // in flight calls out.
  ~Op() {
    if (id_.valid()) [[unlikely]] cancel_in_flight();
  }

  Poll<Output> poll(Context& cx) {
    std::optional<Output> out;
    return poll_from(poll_into(cx, out), out);
  }

  // poll(), with the output built in `out` (future/poll_into.h): what a
  // co_await and Timeout use, so a result is not moved through each layer.
  bool poll_into(Context& cx, std::optional<Output>& out) {
    POLLUX_DCHECK(!done_, "I/O operation polled after it returned Ready");
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return false;
    }
    if (!id_.valid()) {
      // Nothing is held yet (no slot, no pin), so the op is bound to this
      // thread's backend afresh at each attempt to start.
      backend_ = current_backend();
      if (backend_ == nullptr) {
        done_ = true;
        out.emplace(spec_.fail(detail::no_backend_status()));
        return true;
      }
      // A kind the backend may complete at once, without a slot (epoll's
      // try-first on a ready registration; see Backend::try_recv_send_now).
      if constexpr (requires(Spec& sp, Backend& b, std::optional<Output>& o) { sp.try_now(b, o); }) {
        if (spec_.try_now(*backend_, out)) {
          done_ = true;
          return true;
        }
      }
      try {
        id_ = spec_.start(*backend_);
      } catch (const std::bad_alloc&) {
        // The backend could not allocate the op's slot (or its blocking-pool
        // job, its readiness registration): a start that throws has changed
        // nothing and kept nothing (Backend's contract), so this op fails
        // with a status and hands back what it owns, like any other error.
        done_ = true;
        out.emplace(spec_.fail(detail::out_of_memory_status()));
        return true;
      }
      if (!id_.valid()) {
        // No room this tick: try again at the next one.
        cx.waker().wake_by_ref();
        return false;
      }
      pin_ = TaskPin::current();  // the slot is this worker's until finish()
    } else {
      POLLUX_CHECK(current_backend() == backend_,
                   "an I/O operation was polled on a thread other than its backend's");
    }
    OpCore& core = *id_.core;
    // Readiness arrived (epoll): the syscall is made here, in our own poll.
    if (core.state == OpState::kReady) backend_->resume(id_);
    if (core.state != OpState::kCompleted) {
      // The task's own waker is kept without a reference while pin_ is held
      // (TaskPin::keep_waker): the take or cancel comes before pin_ goes back.
      pin_.keep_waker(core.waker, cx.waker());
      cx.budget().refund();
      return false;
    }
    const OpId id = std::exchange(id_, OpId{});
    out.emplace(MadeBy{[&] { return spec_.finish(*backend_, id); }});
    pin_.reset();
    done_ = true;
    return true;
  }

 private:
  [[gnu::noinline]] void cancel_in_flight() noexcept {
    POLLUX_CHECK(current_backend() == backend_,
                 "an I/O operation was dropped on a thread other than its backend's");
    backend_->cancel(id_);
  }

  Spec spec_;
  Backend* backend_ = nullptr;
  OpId id_;
  // Held while id_ is valid: the slot lives in this worker's backend.
  TaskPin pin_;
  bool done_ = false;
};

namespace detail {

struct NopSpec {
  using Output = absl::Status;
  OpId start(Backend& b) { return b.start_nop(); }
  Output finish(Backend& b, OpId id) {
    const int32_t res = b.take_result(id);
    if (res < 0) [[unlikely]] return error(res);
    return absl::OkStatus();
  }
  static Output error(int32_t res);
  static Output fail(absl::Status s) { return s; }
};

enum class DataOpKind { kRead, kWrite, kRecv, kSend };

struct DataSpec {
  using Output = IoResult;
  DataOpKind kind;
  int fd;
  std::vector<char> buf;
  uint64_t offset;  // read/write; -1 for "current position" (pipes, sockets)
  int flags;        // recv/send
  // The part of buf the operation uses: [begin, min(end, buf.size())).
  size_t begin = 0;
  size_t end = SIZE_MAX;

  OpId start(Backend& b) {
    switch (kind) {
      case DataOpKind::kRead:
        return b.start_read(fd, buf, begin, end, offset);
      case DataOpKind::kWrite:
        return b.start_write(fd, buf, begin, end, offset);
      case DataOpKind::kRecv:
        return b.start_recv(fd, buf, begin, end, flags);
      case DataOpKind::kSend:
        return b.start_send(fd, buf, begin, end, flags);
    }
    return OpId{};
  }
  // recv/send only: completed at once, without a slot, when the backend
  // can (Backend::try_recv_send_now); `out` then holds the result.
  bool try_now(Backend& b, std::optional<Output>& out) {
    if (!b.completes_recv_send_now()) return false;
    if (kind != DataOpKind::kRecv && kind != DataOpKind::kSend) return false;
    int32_t res;
    if (!b.try_recv_send_now(kind == DataOpKind::kSend, fd, buf, begin, end, flags, &res)) {
      return false;
    }
    out.emplace(MadeBy{[&] { return result(res, std::move(buf)); }});
    return true;
  }
  // Inline, as result()'s success path: the per-message path of every
  // stream; only the error, which builds its message, is out of line.
  Output finish(Backend& b, OpId id) {
    const int32_t res = b.take_data(id, buf);
    return result(res, std::move(buf));
  }
  // The buffer comes back even when the operation never started.
  Output fail(absl::Status s) { return IoResult{std::move(s), std::move(buf)}; }
  // A syscall result (-errno on failure) as the IoResult naming the op.
  Output result(int32_t res, std::vector<char>&& b) const {
    if (res < 0) [[unlikely]] return error_result(res, std::move(b));
    return IoResult{static_cast<size_t>(res), std::move(b)};
  }
  Output error_result(int32_t res, std::vector<char>&& b) const;
};

struct AcceptSpec {
  using Output = absl::StatusOr<Accepted>;
  int fd;
  OpId start(Backend& b) { return b.start_accept(fd); }
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};

struct ConnectSpec {
  using Output = absl::Status;
  int fd;
  sockaddr_storage addr;
  socklen_t len;
  OpId start(Backend& b) { return b.start_connect(fd, addr, len); }
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};

struct CloseSpec {
  using Output = absl::Status;
  int fd;
  OpId start(Backend& b) { return b.start_close(fd); }
  Output finish(Backend& b, OpId id);
  // Never started: the fd is still ours to close.
  Output fail(absl::Status s) {
    ::close(fd);
    return s;
  }
};

struct PollAddSpec {
  using Output = absl::StatusOr<uint32_t>;
  int fd;
  uint32_t events;
  OpId start(Backend& b) { return b.start_poll(fd, events); }
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};

// sendmsg(2) of buf[offset..] (one iovec), to `addr` when addrlen > 0.
struct SendMsgSpec {
  using Output = IoResult;
  int fd;
  std::vector<char> buf;
  size_t offset;
  sockaddr_storage addr;
  socklen_t addrlen;
  int flags;
  OpId start(Backend& b) { return b.start_sendmsg(fd, buf, offset, addr, addrlen, flags); }
  Output finish(Backend& b, OpId id);
  Output fail(absl::Status s) { return IoResult{std::move(s), std::move(buf)}; }
};

// recvmsg(2) into all of buf (one iovec), recording the sender's address.
struct RecvMsgSpec {
  using Output = RecvMsgResult;
  int fd;
  std::vector<char> buf;
  int flags;
  OpId start(Backend& b) { return b.start_recvmsg(fd, buf, flags); }
  Output finish(Backend& b, OpId id);
  Output fail(absl::Status s) {
    RecvMsgResult r;
    r.n = std::move(s);
    r.buf = std::move(buf);
    return r;
  }
};

struct TimeoutSpec {
  using Output = absl::Status;
  absl::Duration d;
  OpId start(Backend& b) { return b.start_timeout(d); }
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};

struct OpenAtSpec {
  using Output = absl::StatusOr<OwnedFd>;
  int dirfd;
  std::string path;
  int flags;
  mode_t mode;
  OpId start(Backend& b) { return b.start_openat(dirfd, path, flags, mode); }
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};

struct FsyncSpec {
  using Output = absl::Status;
  int fd;
  bool datasync;
  OpId start(Backend& b) { return b.start_fsync(fd, datasync); }
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};

struct StatxSpec {
  using Output = absl::StatusOr<struct statx>;
  int dirfd;
  std::string path;
  int flags;
  unsigned mask;
  OpId start(Backend& b) { return b.start_statx(dirfd, path, flags, mask); }
  Output finish(Backend& b, OpId id);
  static Output fail(absl::Status s) { return s; }
};

}  // namespace detail

// The future types, by what they do (net/ and fs/ name these).

// The future nop() returns.
using NopOp = Op<detail::NopSpec>;
// The future read(), write(), recv(), send(), read_into() and write_from() return.
using DataOp = Op<detail::DataSpec>;
// The future accept() returns.
using AcceptOp = Op<detail::AcceptSpec>;
// The future connect() returns.
using ConnectOp = Op<detail::ConnectSpec>;
// The future close() returns.
using CloseOp = Op<detail::CloseSpec>;
// The future poll_add() returns.
using PollAddOp = Op<detail::PollAddSpec>;
// The future sendmsg() returns.
using SendMsgOp = Op<detail::SendMsgSpec>;
// The future recvmsg() returns.
using RecvMsgOp = Op<detail::RecvMsgSpec>;
// The future timeout() returns.
using TimeoutOp = Op<detail::TimeoutSpec>;
// The future openat() returns.
using OpenAtOp = Op<detail::OpenAtSpec>;
// The future fsync() returns.
using FsyncOp = Op<detail::FsyncSpec>;
// The future statx() returns.
using StatxOp = Op<detail::StatxSpec>;

// A no-op round trip through the backend (epoll: completes in its first
// poll, no syscall). Output: OK or the error. Cancellation: nothing to undo.
[[nodiscard]] inline NopOp nop() { return NopOp({}); }

// read(2) into `buf` (up to buf.size() bytes) at `offset` (-1: the fd's
// current position). Output: IoResult; 0 bytes means end of file. On epoll
// a read at an offset (or of a regular file) is a file operation on the
// blocking pool; at -1 it is tried at once with preadv2(RWF_NOWAIT), so a
// pipe or eventfd without O_NONBLOCK never blocks the thread either. An
// offset on a file that cannot seek (a FIFO) is ignored, as io_uring does.
// Cancellation: see the header comment (epoll: at -1, no effect; at an
// offset, the read may still happen on the pool).
[[nodiscard]] inline DataOp read(int fd, std::vector<char> buf, uint64_t offset = uint64_t(-1)) {
  return DataOp({detail::DataOpKind::kRead, fd, std::move(buf), offset, 0});
}
// write(2) of all of `buf` at `offset` (-1: current position). Output:
// IoResult; a short write is possible (n < buf.size()). Backends: as read().
// Cancellation: see the header comment (epoll: at -1, no effect).
[[nodiscard]] inline DataOp write(int fd, std::vector<char> buf, uint64_t offset = uint64_t(-1)) {
  return DataOp({detail::DataOpKind::kWrite, fd, std::move(buf), offset, 0});
}
// recv(2) into buf[begin, min(end, buf.size())). Output: bytes received
// there (the rest of buf untouched); 0 means the peer shut down its write
// side. The whole buffer comes back. Cancellation: io_uring: data may have
// been consumed (lost); epoll: no effect.
[[nodiscard]] inline DataOp recv(int fd, std::vector<char> buf, int flags = 0, size_t begin = 0,
                                 size_t end = SIZE_MAX) {
  return DataOp({detail::DataOpKind::kRecv, fd, std::move(buf), 0, flags, begin, end});
}
// send(2) of buf[begin, min(end, buf.size())) with MSG_NOSIGNAL (a closed
// peer gives EPIPE, never SIGPIPE). Output: bytes sent from `begin` (a short
// send is possible); the whole buffer comes back. Cancellation: io_uring: a
// prefix may have been sent; epoll: no effect.
[[nodiscard]] inline DataOp send(int fd, std::vector<char> buf, int flags = 0, size_t begin = 0,
                                 size_t end = SIZE_MAX) {
  return DataOp({detail::DataOpKind::kSend, fd, std::move(buf), 0, flags | MSG_NOSIGNAL, begin,
                 end});
}
// sendmsg(2) of buf[offset..] with MSG_NOSIGNAL, to `addr` (datagram
// sockets) or, with addr == nullptr, to the connected peer. Output: IoResult
// whose n counts bytes sent from `offset`; the whole buffer comes back.
// Cancellation: as send().
[[nodiscard]] inline SendMsgOp sendmsg(int fd, std::vector<char> buf, size_t offset = 0,
                                       const sockaddr* addr = nullptr, socklen_t len = 0,
                                       int flags = 0) {
  detail::SendMsgSpec s{fd, std::move(buf), offset, {}, 0, flags | MSG_NOSIGNAL};
  if (addr != nullptr && len > 0 && len <= sizeof(s.addr)) {
    std::memcpy(&s.addr, addr, len);
    s.addrlen = len;
  }
  return SendMsgOp(std::move(s));
}
// recvmsg(2) into `buf`. Output: RecvMsgResult with the sender's address.
// Cancellation: as recv() (a datagram io_uring had received is lost).
[[nodiscard]] inline RecvMsgOp recvmsg(int fd, std::vector<char> buf, int flags = 0) {
  return RecvMsgOp({fd, std::move(buf), flags});
}
// accept4(2) with SOCK_CLOEXEC|SOCK_NONBLOCK. Output: the connection (owned)
// and peer address. When another accept on the same socket is dropped, the
// io_uring backend may cancel and resubmit this one behind the scenes
// (reactor/uring/io_uring_backend.cc says why); only if it cannot do so does
// it end with ECANCELED (kCancelled), which is safe to retry.
// Cancellation: io_uring: a dropped accept may have accepted (that fd is
// closed); epoll: no effect (the connection stays in the backlog).
[[nodiscard]] inline AcceptOp accept(int listen_fd) { return AcceptOp({listen_fd}); }
// connect(2) of socket `fd` to `addr` (epoll: EINPROGRESS, then writable,
// then SO_ERROR). Cancellation (both backends): a dropped connect may still
// have connected; the socket stays the caller's.
[[nodiscard]] inline ConnectOp connect(int fd, const sockaddr* addr, socklen_t len) {
  detail::ConnectSpec s{fd, {}, len};
  std::memcpy(&s.addr, addr, len);
  return ConnectOp(s);
}
// close(2) through the backend (epoll: at once, in the first poll). The
// caller must not use `fd` afterwards. Cancellation: the fd is closed either
// way.
[[nodiscard]] inline CloseOp close(OwnedFd fd) { return CloseOp({fd.release()}); }
// Waits until `fd` is ready for `events` (POLLIN, POLLOUT, ...). Output:
// revents. One-shot; for an fd you wait on again and again, AsyncFd
// (reactor/async_fd.h) keeps one registration. Cancellation: no effect on
// either backend.
[[nodiscard]] inline PollAddOp poll_add(int fd, uint32_t events) {
  return PollAddOp({fd, events});
}
// A timer in the backend (IORING_OP_TIMEOUT on io_uring, a heap bounding
// epoll_wait on epoll). Prefer timer::sleep, which needs no syscall to arm;
// this exists to measure and test the backend itself. Cancellation: none
// needed.
[[nodiscard]] inline TimeoutOp timeout(absl::Duration d) { return TimeoutOp({d}); }

// ---- File operations (used by fs/) ----

// openat(2) of `path` relative to `dirfd` (AT_FDCWD: the working directory),
// always with O_CLOEXEC. Output: the fd (owned); ENOENT is kNotFound and every
// error message names the path. The path is owned by the op's slot (epoll:
// by its blocking-pool job).
// Cancellation (both backends): a dropped open may still open the file; the
// backend closes that fd, so it never leaks (a file it created with O_CREAT
// stays). On epoll the open runs on the blocking pool, and one that has not
// started yet when dropped never runs.
[[nodiscard]] inline OpenAtOp openat(int dirfd, std::string path, int flags, mode_t mode = 0) {
  return OpenAtOp({dirfd, std::move(path), flags, mode});
}
// fsync(2) (fdatasync(2) when `datasync`) of `fd`.
// Cancellation (both backends): a dropped fsync may still have flushed (or
// be flushing: on epoll, on the blocking pool).
[[nodiscard]] inline FsyncOp fsync(int fd, bool datasync = false) {
  return FsyncOp({fd, datasync});
}
// statx(2) of `path` relative to `dirfd` with `flags` (AT_EMPTY_PATH and an
// empty path: `dirfd` itself) for the fields in `mask`. The result buffer
// lives in the op's slot (epoll: its blocking-pool job). Cancellation:
// nothing to undo on either backend.
[[nodiscard]] inline StatxOp statx(int dirfd, std::string path, int flags,
                                   unsigned mask = STATX_BASIC_STATS) {
  return StatxOp({dirfd, std::move(path), flags, mask});
}
// read(2) into buf[from, buf.size()) at `offset`. Output: IoResult with the
// bytes read into that part and the whole buffer (buf[0, from) untouched).
// Cancellation: as read() at an offset: on epoll a file operation (it may
// still run on the blocking pool; what it read is lost).
[[nodiscard]] inline DataOp read_into(int fd, std::vector<char> buf, size_t from,
                                      uint64_t offset) {
  return DataOp({detail::DataOpKind::kRead, fd, std::move(buf), offset, 0, from});
}
// write(2) of buf[from, buf.size()) at `offset`. Output: IoResult with the
// bytes written from that part and the whole buffer. Cancellation: as
// write() at an offset: on epoll it may still run on the blocking pool.
[[nodiscard]] inline DataOp write_from(int fd, std::vector<char> buf, size_t from,
                                       uint64_t offset) {
  return DataOp({detail::DataOpKind::kWrite, fd, std::move(buf), offset, 0, from});
}

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_OPS_H_
