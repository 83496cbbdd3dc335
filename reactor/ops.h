// Operations as futures: nop, read, write, recv, send, sendmsg, recvmsg,
// accept, connect, close, poll_add and timeout on the current thread's io_uring driver.
//
//   auto [n, buf] = co_await reactor::read(fd, std::vector<char>(4096));
//
// Ownership: an operation that hands memory to the kernel owns it. The data
// buffer moves into the operation and comes back with the result (IoResult),
// as in monoio and tokio-uring, because the kernel may write into it until
// the final completion, which can come after the future is gone.
//
// Lifecycle: the first poll takes an SQE and an op-table slot and moves the
// buffer (and any sockaddr, timespec) into the slot; the driver submits it at
// the end of the tick. Leaf futures keep the coop budget protocol.
//
// Cancellation: dropping an operation before Ready queues an ASYNC_CANCEL for
// it; the slot keeps the buffer until the kernel's final completion and then
// frees it. The operation may still have happened: a dropped write may have
// written, a dropped read may have consumed data (it is lost), a dropped
// accept may have accepted a connection (its fd is closed by the driver, so
// it never leaks), a dropped connect may have connected (the socket stays the
// caller's). Retry only what your protocol can repeat.
//
// Thread-safety: an operation is polled and dropped on the thread of the
// driver it was submitted to (checked in debug builds). Using one with no
// io_uring driver on the thread yields FailedPrecondition, never a crash.
#ifndef POLLUX_REACTOR_OPS_H_
#define POLLUX_REACTOR_OPS_H_

#include <fcntl.h>
#include <liburing.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "future/assert.h"
#include "future/future.h"
#include "reactor/errno_status.h"
#include "reactor/io_uring_driver.h"
#include "reactor/op_table.h"
#include "reactor/owned_fd.h"

namespace pollux::reactor {

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
absl::Status no_driver_status();
}  // namespace detail

// The shared state machine of every single-shot operation. `Spec` provides:
//   using Output; static constexpr bool kReturnsFd;
//   void prep(io_uring_sqe*, OpStorage&)   // moves owned memory into the slot
//   Output finish(int32_t res, OpStorage&) // builds the result from the CQE
//   Output fail(absl::Status)              // when the op cannot start (hands
//                                          // back any memory it owns)
template <class Spec>
class [[nodiscard]] Op {
 public:
  using Output = typename Spec::Output;

  explicit Op(Spec spec) : spec_(std::move(spec)) {}
  Op(Op&& o) noexcept : spec_(std::move(o.spec_)), driver_(o.driver_), index_(o.index_) {
    POLLUX_DCHECK(o.index_ == OpTable::kNone, "an I/O operation was moved after its first poll");
    o.driver_ = nullptr;
  }
  Op& operator=(Op&&) = delete;
  ~Op() {
    if (index_ == OpTable::kNone) return;
    POLLUX_DCHECK(current_driver() == driver_,
                  "an I/O operation was dropped on a thread other than its driver's");
    OpSlot& slot = driver_->ops().at(index_);
    if (slot.state == SlotState::kCompleted) {
      if (slot.returns_fd && slot.result.res >= 0) ::close(slot.result.res);
      driver_->ops().release(index_);
    } else {
      driver_->cancel_op(index_);
    }
  }

  Poll<Output> poll(Context& cx) {
    POLLUX_DCHECK(!done_, "I/O operation polled after it returned Ready");
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    if (index_ == OpTable::kNone) return start(cx);
    POLLUX_DCHECK(current_driver() == driver_,
                  "an I/O operation was polled on a thread other than its driver's");
    OpSlot& slot = driver_->ops().at(index_);
    if (slot.state != SlotState::kCompleted) {
      if (!slot.waker.will_wake(cx.waker())) slot.waker = cx.waker();
      cx.budget().refund();
      return Pending{};
    }
    Output out = spec_.finish(slot.result.res, slot.storage);
    driver_->ops().release(index_);
    index_ = OpTable::kNone;
    done_ = true;
    return Ready<Output>(std::move(out));
  }

 private:
  Poll<Output> start(Context& cx) {
    driver_ = current_driver();
    if (driver_ == nullptr) {
      done_ = true;
      return Ready<Output>(spec_.fail(detail::no_driver_status()));
    }
    io_uring_sqe* sqe = driver_->get_sqe();
    if (sqe == nullptr) {
      // The kernel refuses submissions this tick: try again next tick.
      cx.waker().wake_by_ref();
      return Pending{};
    }
    index_ = driver_->ops().allocate();
    OpSlot& slot = driver_->ops().at(index_);
    slot.returns_fd = Spec::kReturnsFd;
    slot.sqe = sqe;
    if constexpr (requires { Spec::kIsAccept; }) {
      // The driver may have to submit an accept again (see rearm_accepts_on).
      driver_->prep_accept(sqe, index_, spec_.fd);
    } else {
      spec_.prep(sqe, slot.storage);
      io_uring_sqe_set_data64(sqe, OpTable::user_data(index_, slot.generation));
    }
    slot.waker = cx.waker();
    cx.budget().refund();
    return Pending{};
  }

  Spec spec_;
  IoUringDriver* driver_ = nullptr;
  uint32_t index_ = OpTable::kNone;
  bool done_ = false;
};

namespace detail {

struct NopSpec {
  using Output = absl::Status;
  static constexpr bool kReturnsFd = false;
  void prep(io_uring_sqe* sqe, OpStorage&) { io_uring_prep_nop(sqe); }
  Output finish(int32_t res, OpStorage&) {
    return res < 0 ? errno_status(-res, "nop") : absl::OkStatus();
  }
  static Output fail(absl::Status s) { return s; }
};

enum class DataOpKind { kRead, kWrite, kRecv, kSend };

struct DataSpec {
  using Output = IoResult;
  static constexpr bool kReturnsFd = false;
  DataOpKind kind;
  int fd;
  std::vector<char> buf;
  uint64_t offset;  // read/write; -1 for "current position" (pipes, sockets)
  int flags;        // recv/send
  // The part of buf the operation uses: [begin, min(end, buf.size())).
  size_t begin = 0;
  size_t end = SIZE_MAX;

  void prep(io_uring_sqe* sqe, OpStorage& st) {
    st.buf = std::move(buf);
    const size_t stop = std::min(end, st.buf.size());
    const size_t from = std::min(begin, stop);
    char* data = st.buf.data() + from;
    const unsigned len = static_cast<unsigned>(std::min<size_t>(stop - from, 1u << 30));
    switch (kind) {
      case DataOpKind::kRead:
        io_uring_prep_read(sqe, fd, data, len, offset);
        break;
      case DataOpKind::kWrite:
        io_uring_prep_write(sqe, fd, data, len, offset);
        break;
      case DataOpKind::kRecv:
        io_uring_prep_recv(sqe, fd, data, len, flags);
        break;
      case DataOpKind::kSend:
        io_uring_prep_send(sqe, fd, data, len, flags);
        break;
    }
  }
  Output finish(int32_t res, OpStorage& st);
  // The buffer comes back even when the operation never started.
  Output fail(absl::Status s) { return IoResult{std::move(s), std::move(buf)}; }
};

struct AcceptSpec {
  using Output = absl::StatusOr<Accepted>;
  static constexpr bool kReturnsFd = true;
  static constexpr bool kIsAccept = true;  // prepared by IoUringDriver::prep_accept
  int fd;
  Output finish(int32_t res, OpStorage& st);
  static Output fail(absl::Status s) { return s; }
};

struct ConnectSpec {
  using Output = absl::Status;
  static constexpr bool kReturnsFd = false;
  int fd;
  sockaddr_storage addr;
  socklen_t len;
  void prep(io_uring_sqe* sqe, OpStorage& st) {
    st.addr = addr;
    st.addrlen = len;
    io_uring_prep_connect(sqe, fd, reinterpret_cast<const sockaddr*>(&st.addr), st.addrlen);
  }
  Output finish(int32_t res, OpStorage&);
  static Output fail(absl::Status s) { return s; }
};

struct CloseSpec {
  using Output = absl::Status;
  static constexpr bool kReturnsFd = false;
  int fd;
  void prep(io_uring_sqe* sqe, OpStorage&) { io_uring_prep_close(sqe, fd); }
  Output finish(int32_t res, OpStorage&);
  static Output fail(absl::Status s) { return s; }
};

struct PollAddSpec {
  using Output = absl::StatusOr<uint32_t>;
  static constexpr bool kReturnsFd = false;
  int fd;
  uint32_t events;
  void prep(io_uring_sqe* sqe, OpStorage&) { io_uring_prep_poll_add(sqe, fd, events); }
  Output finish(int32_t res, OpStorage&);
  static Output fail(absl::Status s) { return s; }
};

// sendmsg(2) of buf[offset..] (one iovec), to `addr` when addrlen > 0.
struct SendMsgSpec {
  using Output = IoResult;
  static constexpr bool kReturnsFd = false;
  int fd;
  std::vector<char> buf;
  size_t offset;
  sockaddr_storage addr;
  socklen_t addrlen;
  int flags;
  void prep(io_uring_sqe* sqe, OpStorage& st) {
    st.buf = std::move(buf);
    st.addr = addr;
    st.addrlen = addrlen;
    const size_t off = offset < st.buf.size() ? offset : st.buf.size();
    st.iov = iovec{st.buf.data() + off, st.buf.size() - off};
    st.msg = msghdr{};
    if (st.addrlen > 0) {
      st.msg.msg_name = &st.addr;
      st.msg.msg_namelen = st.addrlen;
    }
    st.msg.msg_iov = &st.iov;
    st.msg.msg_iovlen = 1;
    io_uring_prep_sendmsg(sqe, fd, &st.msg, static_cast<unsigned>(flags));
  }
  Output finish(int32_t res, OpStorage& st);
  Output fail(absl::Status s) { return IoResult{std::move(s), std::move(buf)}; }
};

// recvmsg(2) into all of buf (one iovec), recording the sender's address.
struct RecvMsgSpec {
  using Output = RecvMsgResult;
  static constexpr bool kReturnsFd = false;
  int fd;
  std::vector<char> buf;
  int flags;
  void prep(io_uring_sqe* sqe, OpStorage& st) {
    st.buf = std::move(buf);
    st.addr = sockaddr_storage{};
    st.iov = iovec{st.buf.data(), st.buf.size()};
    st.msg = msghdr{};
    st.msg.msg_name = &st.addr;
    st.msg.msg_namelen = sizeof(st.addr);
    st.msg.msg_iov = &st.iov;
    st.msg.msg_iovlen = 1;
    io_uring_prep_recvmsg(sqe, fd, &st.msg, static_cast<unsigned>(flags));
  }
  Output finish(int32_t res, OpStorage& st);
  Output fail(absl::Status s) {
    RecvMsgResult r;
    r.n = std::move(s);
    r.buf = std::move(buf);
    return r;
  }
};

struct TimeoutSpec {
  using Output = absl::Status;
  static constexpr bool kReturnsFd = false;
  absl::Duration d;
  void prep(io_uring_sqe* sqe, OpStorage& st);
  Output finish(int32_t res, OpStorage&);
  static Output fail(absl::Status s) { return s; }
};

}  // namespace detail

// A no-op round trip through the ring. Output: OK or the error.
[[nodiscard]] inline Op<detail::NopSpec> nop() { return Op<detail::NopSpec>({}); }

// read(2) into `buf` (up to buf.size() bytes) at `offset` (-1: the fd's
// current position). Output: IoResult; 0 bytes means end of file.
[[nodiscard]] inline Op<detail::DataSpec> read(int fd, std::vector<char> buf,
                                              uint64_t offset = uint64_t(-1)) {
  return Op<detail::DataSpec>({detail::DataOpKind::kRead, fd, std::move(buf), offset, 0});
}
// write(2) of all of `buf` at `offset` (-1: current position). Output:
// IoResult; a short write is possible (n < buf.size()).
[[nodiscard]] inline Op<detail::DataSpec> write(int fd, std::vector<char> buf,
                                               uint64_t offset = uint64_t(-1)) {
  return Op<detail::DataSpec>({detail::DataOpKind::kWrite, fd, std::move(buf), offset, 0});
}
// recv(2) into `buf`. 0 bytes means the peer shut down its write side.
[[nodiscard]] inline Op<detail::DataSpec> recv(int fd, std::vector<char> buf, int flags = 0) {
  return Op<detail::DataSpec>({detail::DataOpKind::kRecv, fd, std::move(buf), 0, flags});
}
// send(2) of buf[begin, min(end, buf.size())) with MSG_NOSIGNAL (a closed
// peer gives EPIPE, never SIGPIPE). Output: bytes sent from `begin`; the
// whole buffer comes back. With MSG_WAITALL the kernel retries a short send
// itself until every byte is sent or an error occurs.
[[nodiscard]] inline Op<detail::DataSpec> send(int fd, std::vector<char> buf, int flags = 0,
                                               size_t begin = 0, size_t end = SIZE_MAX) {
  return Op<detail::DataSpec>({detail::DataOpKind::kSend, fd, std::move(buf), 0,
                               flags | MSG_NOSIGNAL, begin, end});
}
// sendmsg(2) of buf[offset..] with MSG_NOSIGNAL, to `addr` (datagram
// sockets) or, with addr == nullptr, to the connected peer. Output: IoResult
// whose n counts bytes sent from `offset`; the whole buffer comes back.
[[nodiscard]] inline Op<detail::SendMsgSpec> sendmsg(int fd, std::vector<char> buf,
                                                    size_t offset = 0,
                                                    const sockaddr* addr = nullptr,
                                                    socklen_t len = 0, int flags = 0) {
  detail::SendMsgSpec s{fd, std::move(buf), offset, {}, 0, flags | MSG_NOSIGNAL};
  if (addr != nullptr && len > 0 && len <= sizeof(s.addr)) {
    std::memcpy(&s.addr, addr, len);
    s.addrlen = len;
  }
  return Op<detail::SendMsgSpec>(std::move(s));
}
// recvmsg(2) into `buf`. Output: RecvMsgResult with the sender's address.
[[nodiscard]] inline Op<detail::RecvMsgSpec> recvmsg(int fd, std::vector<char> buf,
                                                    int flags = 0) {
  return Op<detail::RecvMsgSpec>({fd, std::move(buf), flags});
}
// accept4(2) with SOCK_CLOEXEC. Output: the connection (owned) and peer address.
// When another accept on the same socket is dropped, the driver may cancel
// and resubmit this one behind the scenes (io_uring_driver.cc says why);
// only if no SQE is free for that does it end with ECANCELED (kCancelled),
// which is safe to retry.
[[nodiscard]] inline Op<detail::AcceptSpec> accept(int listen_fd) {
  return Op<detail::AcceptSpec>({listen_fd});
}
// connect(2) of socket `fd` to `addr`.
[[nodiscard]] inline Op<detail::ConnectSpec> connect(int fd, const sockaddr* addr, socklen_t len) {
  detail::ConnectSpec s{fd, {}, len};
  std::memcpy(&s.addr, addr, len);
  return Op<detail::ConnectSpec>(s);
}
// close(2) through the ring. The caller must not use `fd` afterwards.
[[nodiscard]] inline Op<detail::CloseSpec> close(OwnedFd fd) {
  return Op<detail::CloseSpec>({fd.release()});
}
// Waits until `fd` is ready for `events` (POLLIN, POLLOUT, ...). Output: revents.
[[nodiscard]] inline Op<detail::PollAddSpec> poll_add(int fd, uint32_t events) {
  return Op<detail::PollAddSpec>({fd, events});
}
// A kernel timer (IORING_OP_TIMEOUT). Prefer timer::sleep, which needs no
// syscall to arm; this exists to measure and test the ring itself.
[[nodiscard]] inline Op<detail::TimeoutSpec> timeout(absl::Duration d) {
  return Op<detail::TimeoutSpec>({d});
}

// ---- File operations: openat, fsync, statx, and reads/writes into a part
// of a buffer (used by fs/). ----

namespace detail {

struct OpenAtSpec {
  using Output = absl::StatusOr<OwnedFd>;
  // A dropped open whose fd still arrives has it closed by the driver.
  static constexpr bool kReturnsFd = true;
  int dirfd;
  std::string path;
  int flags;
  mode_t mode;
  void prep(io_uring_sqe* sqe, OpStorage& st) {
    st.path = std::move(path);
    io_uring_prep_openat(sqe, dirfd, st.path.c_str(), flags | O_CLOEXEC, mode);
  }
  Output finish(int32_t res, OpStorage& st);
  static Output fail(absl::Status s) { return s; }
};

struct FsyncSpec {
  using Output = absl::Status;
  static constexpr bool kReturnsFd = false;
  int fd;
  bool datasync;
  void prep(io_uring_sqe* sqe, OpStorage&) {
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
  }
  Output finish(int32_t res, OpStorage&);
  static Output fail(absl::Status s) { return s; }
};

struct StatxSpec {
  using Output = absl::StatusOr<struct statx>;
  static constexpr bool kReturnsFd = false;
  int dirfd;
  std::string path;
  int flags;
  unsigned mask;
  void prep(io_uring_sqe* sqe, OpStorage& st) {
    st.path = std::move(path);
    st.stx = {};
    io_uring_prep_statx(sqe, dirfd, st.path.c_str(), flags, mask, &st.stx);
  }
  Output finish(int32_t res, OpStorage& st);
  static Output fail(absl::Status s) { return s; }
};

}  // namespace detail

// openat(2) of `path` relative to `dirfd` (AT_FDCWD: the working directory),
// always with O_CLOEXEC. Output: the fd (owned); ENOENT is kNotFound and every
// error message names the path. The path is owned by the op's slot.
// Cancellation: a dropped open may still open the file; the driver closes
// that fd, so it never leaks (a file it created with O_CREAT stays).
[[nodiscard]] inline Op<detail::OpenAtSpec> openat(int dirfd, std::string path, int flags,
                                                  mode_t mode = 0) {
  return Op<detail::OpenAtSpec>({dirfd, std::move(path), flags, mode});
}
// fsync(2) (fdatasync(2) when `datasync`) of `fd`.
// Cancellation: a dropped fsync may still have flushed (or be flushing).
[[nodiscard]] inline Op<detail::FsyncSpec> fsync(int fd, bool datasync = false) {
  return Op<detail::FsyncSpec>({fd, datasync});
}
// statx(2) of `path` relative to `dirfd` with `flags` (AT_EMPTY_PATH and an
// empty path: `dirfd` itself) for the fields in `mask`. The result buffer
// lives in the op's slot. Cancellation: nothing to undo.
[[nodiscard]] inline Op<detail::StatxSpec> statx(int dirfd, std::string path, int flags,
                                                unsigned mask = STATX_BASIC_STATS) {
  return Op<detail::StatxSpec>({dirfd, std::move(path), flags, mask});
}
// read(2) into buf[from, buf.size()) at `offset`. Output: IoResult with the
// bytes read into that part and the whole buffer (buf[0, from) untouched).
// Cancellation: as read().
[[nodiscard]] inline Op<detail::DataSpec> read_into(int fd, std::vector<char> buf, size_t from,
                                                   uint64_t offset) {
  return Op<detail::DataSpec>({detail::DataOpKind::kRead, fd, std::move(buf), offset, 0, from});
}
// write(2) of buf[from, buf.size()) at `offset`. Output: IoResult with the
// bytes written from that part and the whole buffer. Cancellation: as write().
[[nodiscard]] inline Op<detail::DataSpec> write_from(int fd, std::vector<char> buf, size_t from,
                                                    uint64_t offset) {
  return Op<detail::DataSpec>({detail::DataOpKind::kWrite, fd, std::move(buf), offset, 0, from});
}

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_OPS_H_
