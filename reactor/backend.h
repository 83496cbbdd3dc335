// Backend: the I/O backend of one thread, behind the backend-neutral
// operation futures of ops.h and accept_stream.h (DESIGN §5).
//
// Every operation kind has its own entry point (start_recv, start_send,
// start_accept_multi, start_connect, start_read, ..., DESIGN's "one virtual
// call per op is noise next to a syscall; a generic op description would
// rebuild a superset slot"). A backend owns its slot slabs, one per payload
// shape, and derives each slot's flags from op_traits() (op_traits.h).
//
// The life of an operation, as its future drives it:
//   OpId id = backend.start_recv(fd, buf, ...);   // invalid: cannot start
//                                                 // this tick, try the next
//   id.core->state == OpState::kCompleted ?       // no: keep a clone of the
//                                                 // task's waker in core->waker
//   ... the backend completes it and wakes that waker ...
//   int32_t res = backend.take_data(id, buf);     // result, buffer back; slot freed
// A readiness backend (epoll) may instead wake the future with the state
// kReady: the fd became ready, and the future's next poll calls
// backend.resume(id), which makes the syscall right there (completing the
// op, or waiting again). So on epoll a read, write, send, recv or accept
// takes effect only inside its future's poll, whose result that poll
// returns: an op dropped before Ready has had no effect. io_uring never
// sets kReady.
//
// A start_* may complete the op at once (epoll's try-the-syscall-first, or
// a nop): the state is then kCompleted before start_* returns, and the
// future takes the result in the same poll.
// Before starting a recv or send, the future first asks try_recv_send_now:
// a readiness backend whose registration of the fd says ready makes the
// syscall right there, in the future's poll, and hands the result back
// without a slot (no start, take, or free). False: nothing happened (the
// syscall, if made, said EAGAIN), and the future starts the op as usual.
// io_uring always says false.
// or, if the future is dropped first, backend.cancel(id): the backend keeps
// everything the kernel may still touch until the operation is really over,
// and closes any fd it still delivers (op_traits().returns_fd).
//
// OpCore is the part of every backend's slot that the futures read and write
// themselves (DESIGN §5: a future holds {backend, slot, generation}): its
// state and its waker. Checking for completion and keeping the waker is then
// no virtual call and no lookup; only starting, taking the result and
// cancelling go through the backend. The waker may own no reference (the
// op's own task's, TaskPin::keep_waker): a backend wakes it only before the
// result is taken or cancel() returns, never after.
//
// Buffers: a start_* that takes `std::vector<char>& buf` moves it into the
// operation only when it returns a valid id; otherwise the caller keeps it.
// A take_* hands it back, whatever the result.
// Out of memory: a start_* may throw std::bad_alloc (a new slab chunk, a
// registration, a blocking-pool job). It then has changed nothing: no slot
// is live, the buffer and path are still the caller's, no SQE is taken.
// The future turns it into kResourceExhausted (ops.h). cancel() and the
// completion paths never allocate: what they may need (the list of cancels
// that found no SQE) is reserved when the op starts.
//
// Errors: a completion's `res` is the syscall's result, -errno on failure;
// the futures turn it into an absl::Status naming the operation.
//
// Thread-safety: a Backend, its ids and its slots belong to the thread whose
// RuntimeContext names it (the futures are polled and dropped there); only
// unparker() is thread-safe.
#ifndef POLLUX_REACTOR_BACKEND_H_
#define POLLUX_REACTOR_BACKEND_H_

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "executor/driver.h"
#include "future/internal/owner_counter.h"
#include "future/waker.h"
#include "reactor/op_traits.h"

namespace pollux::reactor {

// Where an operation is in its life; the op future reads it.
enum class OpState : uint8_t {
  kInFlight,   // started; `waker` is woken when it completes
  kCompleted,  // the result is in the slot, waiting to be taken
  kIgnored,    // its future is gone; the backend waits for the kernel (backend-internal)
  kReady,      // readiness arrived: the future's poll calls Backend::resume (epoll only)
};

// The start of every backend's operation slot. Owned by the backend's
// thread; the future that holds the slot reads `state` and writes `waker`.
struct OpCore {
  uint32_t generation = 1;  // bumped on every reuse (never 0 for a live slot)
  OpState state = OpState::kInFlight;
  Waker waker;
};

// A started operation, as its future knows it: its slot's core, and the
// backend's encoding of {slab, index, generation} (so a stale id never
// reaches a reused slot, which debug builds check).
struct OpId {
  OpCore* core = nullptr;
  uint64_t bits = 0;
  bool valid() const noexcept { return core != nullptr; }
};

// The result of a sendmsg or recvmsg: res, the buffer and the address.
struct MsgCompletion {
  int32_t res;
  std::vector<char> buf;
  sockaddr_storage addr;  // recvmsg: the sender
  socklen_t addr_len;
  int msg_flags;          // recvmsg: MSG_TRUNC and friends
};
// The result of an accept: the new fd (or -errno) and the peer.
struct AcceptCompletion {
  int32_t res;  // the new fd (owned by the caller), or -errno
  sockaddr_storage peer;
  socklen_t peer_len;
};
// The result of an openat or statx: res, and the path back.
struct PathCompletion {
  int32_t res;
  std::string path;  // handed back for error messages
  struct statx stx;  // statx only
};

// Readiness, as AsyncFd (reactor/async_fd.h) reports it: a kReadyWait's
// result is these bits | (tick << kReadyTickShift). Both backends keep an
// edge-triggered word per registration whose tick moves on every event, so
// clear_ready(tick) never clears an edge that arrived after the caller looked.
namespace ready {
inline constexpr uint32_t kReadable = 1u << 0;
inline constexpr uint32_t kWritable = 1u << 1;
inline constexpr uint32_t kReadClosed = 1u << 2;  // the peer shut down its writing
inline constexpr uint32_t kHangUp = 1u << 3;
inline constexpr uint32_t kError = 1u << 4;
inline constexpr uint32_t kAll = 0x1F;
inline constexpr int kReadyTickShift = 8;
// What makes an interest (kReadable and/or kWritable) ready: its own bit,
// and the final ones (closed, hang-up, error) that no wait could outlast.
constexpr uint32_t wakes(uint32_t interest) {
  uint32_t m = kHangUp | kError;
  if (interest & kReadable) m |= kReadable | kReadClosed;
  if (interest & kWritable) m |= kWritable;
  return m;
}
}  // namespace ready

// The next result of a multishot operation.
struct MultiNext {
  // kItem: a result; kPending: none yet; kEnded: the multishot is over.
  enum class Kind { kItem, kPending, kEnded } kind;
  int32_t res = 0;  // kItem: the result (an fd for accepts, bytes for recvs, or -errno)
  // kItem of a multishot recv with data: the provided buffer holding its
  // `res` bytes (provided_buffer), now the caller's until return_buffer.
  // -1: none.
  int32_t buf = -1;
};

// Counters every backend keeps (a snapshot of BackendCounters).
//
// The op counters count the operations the futures start (never the
// backend's own: the eventfd read io_uring arms for unparks, cancels, re-arms
// after EAGAIN). Every started op ends exactly one way, so at any moment
//   ops_submitted == ops_completed + ops_cancelled + ops still held by futures.
// completed: its result was taken (take_*), or a multishot op that had ended
// was released; cancelled: released by cancel() before its result was taken
// (dropped in flight or with its result unclaimed; a multishot accept or an
// AsyncFd registration that is still live ends this way). epoll's slotless fast path (try_recv_send_now that
// completes) counts as one submitted and one completed op.
struct BackendStats {
  uint64_t kernel_entries = 0;   // syscalls that submit or wait (io_uring_enter, epoll_wait)
  uint64_t completions = 0;      // results delivered to live slots
  uint64_t eagain_retries = 0;   // -EAGAIN results retried after readiness (never surfaced)
  uint64_t enter_errors = 0;     // failed kernel entries (transient ones are retried)
  uint64_t leaked_ops = 0;       // ops still in the kernel when shutdown gave up (memory kept)
  uint64_t unpark_writes = 0;    // unparks that found the owner parked and made a syscall
  uint64_t registrations = 0;    // fds added to a readiness set (epoll_ctl ADD)
  uint64_t ops_submitted = 0;    // ops started by futures (see above)
  uint64_t ops_completed = 0;    // ... that delivered their result
  uint64_t ops_cancelled = 0;    // ... that were cancelled before it was taken
};

// Where a backend keeps BackendStats' counters: written by the backend's
// thread only, readable from any (Runtime::metrics() while the runtime runs;
// see detail::OwnerCounter for why that costs no locked instruction).
struct BackendCounters {
  pollux::detail::OwnerCounter kernel_entries;
  pollux::detail::OwnerCounter completions;
  pollux::detail::OwnerCounter eagain_retries;
  pollux::detail::OwnerCounter enter_errors;
  pollux::detail::OwnerCounter leaked_ops;
  pollux::detail::OwnerCounter registrations;
  pollux::detail::OwnerCounter ops_submitted;
  pollux::detail::OwnerCounter ops_completed;
  pollux::detail::OwnerCounter ops_cancelled;

  // Copies the counters into `s` (all but unpark_writes, which the
  // unparker counts).
  void snapshot_into(BackendStats& s) const noexcept {
    s.kernel_entries = kernel_entries.load();
    s.completions = completions.load();
    s.eagain_retries = eagain_retries.load();
    s.enter_errors = enter_errors.load();
    s.leaked_ops = leaked_ops.load();
    s.registrations = registrations.load();
    s.ops_submitted = ops_submitted.load();
    s.ops_completed = ops_completed.load();
    s.ops_cancelled = ops_cancelled.load();
  }
};

// The I/O backend of one thread: starts, completes and cancels operations,
// and is the executor's Park.
class Backend : public Park {
 public:
  // ---- Starting (one entry point per kind; see op_traits.h) ----
  virtual OpId start_nop() = 0;
  // read(2)/write(2) of buf[begin, min(end, size)) at `offset` (-1: the fd's position).
  virtual OpId start_read(int fd, std::vector<char>& buf, size_t begin, size_t end,
                          uint64_t offset) = 0;
  virtual OpId start_write(int fd, std::vector<char>& buf, size_t begin, size_t end,
                           uint64_t offset) = 0;
  // recv(2)/send(2) of buf[begin, min(end, size)) with `flags` (send adds MSG_NOSIGNAL).
  virtual OpId start_recv(int fd, std::vector<char>& buf, size_t begin, size_t end,
                          int flags) = 0;
  virtual OpId start_send(int fd, std::vector<char>& buf, size_t begin, size_t end,
                          int flags) = 0;
  // sendmsg(2) of buf[offset..] to `to` (to_len 0: the connected peer).
  virtual OpId start_sendmsg(int fd, std::vector<char>& buf, size_t offset,
                             const sockaddr_storage& to, socklen_t to_len, int flags) = 0;
  // recvmsg(2) into all of buf, recording the sender.
  virtual OpId start_recvmsg(int fd, std::vector<char>& buf, int flags) = 0;
  // accept4(2) with SOCK_CLOEXEC|SOCK_NONBLOCK, one connection.
  virtual OpId start_accept(int listen_fd) = 0;
  // Every connection on `listen_fd`, from one submission (see poll_multi).
  virtual OpId start_accept_multi(int listen_fd) = 0;
  virtual OpId start_connect(int fd, const sockaddr_storage& addr, socklen_t len) = 0;
  virtual OpId start_close(int fd) = 0;
  // Readiness of `fd` for poll(2) `events`; res is the revents.
  virtual OpId start_poll(int fd, uint32_t events) = 0;
  // A timer in the backend itself (res 0 when it expired).
  virtual OpId start_timeout(absl::Duration d) = 0;
  virtual OpId start_openat(int dirfd, std::string& path, int flags, mode_t mode) = 0;
  virtual OpId start_fsync(int fd, bool datasync) = 0;
  virtual OpId start_statx(int dirfd, std::string& path, int flags, unsigned mask) = 0;

  // recv(2) (send false) or send(2) (send true, adding MSG_NOSIGNAL) of
  // buf[begin, min(end, size)) made at once, without a slot, when the
  // backend knows the fd is ready; true with *res (bytes, or -errno) if it
  // completed. buf is never moved. False: no effect; use start_recv/send.
  // Only called when completes_recv_send_now() is true.
  virtual bool try_recv_send_now(bool send, int fd, std::vector<char>& buf, size_t begin,
                                 size_t end, int flags, int32_t* res) {
    (void)send, (void)fd, (void)buf, (void)begin, (void)end, (void)flags, (void)res;
    return false;
  }
  // Whether try_recv_send_now can ever say true: a plain load, so a
  // completion backend (io_uring) pays no virtual call per recv and send.
  bool completes_recv_send_now() const noexcept { return completes_recv_send_now_; }

  // ---- Multishot recv into provided buffers (RecvStream, recv_stream.h) ----
  // Whether this backend can run start_recv_multi (io_uring with a
  // provided-buffer ring; the first call sets the ring up, so call it on
  // the backend's thread). False: RecvStream falls back to start_recv.
  virtual bool supports_recv_multi() noexcept { return false; }
  // Every message on the stream socket `fd`, from one submission, each in
  // a buffer the backend provides (see poll_multi; MultiNext::buf). A
  // result of 0 is the end of the stream. Only after supports_recv_multi().
  virtual OpId start_recv_multi(int fd) {
    (void)fd;
    return OpId{};
  }
  // The bytes of provided buffer `buf` (its whole capacity: a result says
  // how many of them are data). Only for a buffer poll_multi handed out
  // and not yet returned.
  virtual std::span<const char> provided_buffer(int32_t buf) const noexcept {
    (void)buf;
    return {};
  }
  // Gives provided buffer `buf` back to the backend, which may at once let
  // the kernel fill it again (and re-arm a multishot recv that ran out).
  virtual void return_buffer(int32_t buf) noexcept { (void)buf; }

  // ---- Readiness of an fd the user owns (AsyncFd) ----
  // Watches `fd` (io_uring: a multishot poll; epoll: the fd's one
  // registration) until cancel(). It completes only on failure (res -errno:
  // epoll cannot watch a regular file, EPERM).
  virtual OpId start_ready_register(int fd) = 0;
  // Completes once `reg` is ready for `interest` (ready::kReadable and/or
  // kWritable), with res = bits | tick << ready::kReadyTickShift, or -errno.
  virtual OpId start_ready_wait(OpId reg, uint32_t interest) = 0;
  // Clears `interest` of `reg` if no event came since the wait that saw
  // `tick` (AsyncFd's ReadyGuard::clear_ready).
  virtual void clear_ready(OpId reg, uint32_t interest, uint32_t tick) = 0;

  // ---- Driving (single-shot ops: through OpCore, see above) ----
  // The op is kReady: make its syscall now, from its future's poll. Leaves
  // it kCompleted, or kInFlight waiting for the next readiness.
  virtual void resume(OpId id) = 0;
  // The next result of a multishot op; on kPending `waker` is kept. After
  // kEnded the id is spent: release it with cancel().
  virtual MultiNext poll_multi(OpId id, const Waker& waker) = 0;
  // Results a multishot op has delivered and nobody has taken yet.
  virtual size_t queued(OpId id) const = 0;

  // ---- Taking the result (once kCompleted; each frees the slot) ----
  // nop, close, poll, timeout, connect, fsync, readiness waits.
  virtual int32_t take_result(OpId id) = 0;
  // read, write, recv, send: the result, and the op's buffer moved back
  // into `buf` (which held nothing: the op had taken it at the start).
  virtual int32_t take_data(OpId id, std::vector<char>& buf) = 0;
  // sendmsg, recvmsg.
  virtual MsgCompletion take_msg(OpId id) = 0;
  virtual AcceptCompletion take_accept(OpId id) = 0;
  // openat, statx.
  virtual PathCompletion take_path(OpId id) = 0;

  // The future of `id` is gone (or a multishot op is done with): stop it,
  // keep its memory until the kernel is done, close fds it still delivers.
  virtual void cancel(OpId id) noexcept = 0;

  // ---- Introspection (tests, benchmarks, metrics) ----
  // Slots not free: in flight, completed but unclaimed, or cancelled and
  // waiting for the kernel.
  virtual size_t live_ops() const noexcept = 0;
  // From any thread (every counter is a relaxed single-writer atomic).
  virtual BackendStats stats() const noexcept = 0;
  // "io_uring" or "epoll".
  virtual const char* name() const noexcept = 0;

 protected:
  // A readiness backend that implements try_recv_send_now sets this.
  explicit Backend(bool completes_recv_send_now = false) noexcept
      : completes_recv_send_now_(completes_recv_send_now) {}

 private:
  const bool completes_recv_send_now_;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_BACKEND_H_
