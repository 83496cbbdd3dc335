#include "reactor/uring/io_uring_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "executor/internal/park_state.h"
#include "future/assert.h"
#include "reactor/errno_status.h"

namespace pollux::reactor {

using uring::AddrPayload;
using uring::BarePayload;
using uring::DataPayload;
using uring::MsgPayload;
using uring::MultiPayload;
using uring::PathPayload;
using uring::ReadyPayload;
using uring::SlabId;
using uring::Slot;
using uring::SlotHeader;
using uring::SlotState;
using uring::TimeoutPayload;

namespace {

// user_data tags: generation 0 is never a live slot's (slab.h).
constexpr uint64_t kCancelTag = 1;
constexpr uint64_t kUnparkTag = 2;

constexpr unsigned kSocketFlags = SOCK_CLOEXEC | SOCK_NONBLOCK;

__kernel_timespec to_timespec(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  __kernel_timespec ts;
  ts.tv_sec = absl::ToInt64Seconds(d);
  ts.tv_nsec = absl::ToInt64Nanoseconds(d - absl::Seconds(ts.tv_sec));
  return ts;
}

// The end of every op that completes here: its result, its state, and the
// wake of the future that waits for it (the waker is spent: it is not needed
// again for this op).
inline void complete_and_wake(uring::SlotHeader& s, int32_t res) {
  s.res = res;
  s.state = SlotState::kCompleted;
  std::move(s.waker).wake();
}

// DESIGN §5: everything else that fails three times in a row is fatal.
bool is_transient(int err) {
  return err == EINTR || err == EAGAIN || err == EBUSY || err == ETIME;
}

// The ops that wait for writability when they must wait for readiness.
bool waits_for_write(OpKind kind) {
  return kind == OpKind::kWrite || kind == OpKind::kSend || kind == OpKind::kSendMsg ||
         kind == OpKind::kConnect;
}

template <class P>
constexpr SlabId slab_id_for() {
  if constexpr (std::is_same_v<P, BarePayload>) return SlabId::kBare;
  if constexpr (std::is_same_v<P, DataPayload>) return SlabId::kData;
  if constexpr (std::is_same_v<P, MsgPayload>) return SlabId::kMsg;
  if constexpr (std::is_same_v<P, AddrPayload>) return SlabId::kAddr;
  if constexpr (std::is_same_v<P, MultiPayload>) return SlabId::kMulti;
  if constexpr (std::is_same_v<P, TimeoutPayload>) return SlabId::kTimeout;
  if constexpr (std::is_same_v<P, PathPayload>) return SlabId::kPath;
  if constexpr (std::is_same_v<P, ReadyPayload>) return SlabId::kReady;
}

// A multishot poll's revents as AsyncFd's readiness bits.
uint32_t ready_bits_of(uint32_t revents) {
  uint32_t b = 0;
  if (revents & (POLLIN | POLLPRI)) b |= ready::kReadable;
  if (revents & POLLOUT) b |= ready::kWritable;
  if (revents & POLLRDHUP) b |= ready::kReadClosed;
  if (revents & POLLHUP) b |= ready::kHangUp;
  if (revents & POLLERR) b |= ready::kError;
  return b;
}
constexpr uint32_t kReadyTickShift = 16;  // in ReadyPayload::word

// What a readiness wait completes with: the ready bits of a registration's
// word and the tick of the edge that set them (ready::kReadyTickShift).
int32_t ready_result(uint32_t word) {
  return static_cast<int32_t>((word & ready::kAll) |
                              ((word >> kReadyTickShift) << ready::kReadyTickShift));
}

template <class S>
using PayloadOf = std::decay_t<decltype(std::declval<S&>().p)>;

// Closes the fds a multishot accept delivered and nobody took.
void close_queued(MultiPayload& p) noexcept {
  for (const uring::QueuedCqe& c : p.results) {
    if (c.res >= 0) ::close(c.res);
  }
  p.results.clear();
}

// The provided buffer a CQE consumed, or -1.
int32_t buffer_of(uint32_t cqe_flags) {
  if (!(cqe_flags & IORING_CQE_F_BUFFER)) return -1;
  return static_cast<int32_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
}

size_t round_up_to_page(size_t n) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

}  // namespace

UringSyscalls& UringSyscalls::real() {
  static UringSyscalls instance;
  return instance;
}

// ---- Unparker ----

class IoUringBackend::EventFdUnparker final : public Unparker {
 public:
  explicit EventFdUnparker(int efd) : efd_(efd) {}
  ~EventFdUnparker() override { ::close(efd_); }

  void unpark() noexcept override {
    if (!state_.unpark()) return;  // the backend is running: it sees the work next tick
    uint64_t one = 1;
    ssize_t n = ::write(efd_, &one, sizeof(one));
    (void)n;  // only fails if the counter would overflow: the read completes anyway
    // relaxed: a statistic read by tests after joining.
    writes_.fetch_add(1, std::memory_order_relaxed);
  }
  bool try_park() noexcept { return state_.try_park(); }
  void unparked() noexcept { state_.unparked(); }
  bool take_notified() noexcept { return state_.take_notified(); }
  int fd() const noexcept { return efd_; }
  uint64_t writes() const noexcept { return writes_.load(std::memory_order_relaxed); }

 private:
  pollux::detail::ParkState state_;
  std::atomic<uint64_t> writes_{0};
  int efd_;
};

// ---- Setup ----

absl::StatusOr<std::unique_ptr<IoUringBackend>> IoUringBackend::create(IoUringOptions options) {
  static constexpr unsigned kAttempts[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  io_uring ring;
  int ret = -EINVAL;
  unsigned used = 0;
  for (unsigned flags : kAttempts) {
    if (options.force_basic_setup && flags != 0) continue;
    io_uring_params p;
    std::memset(&p, 0, sizeof(p));
    p.flags = flags | IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE;
    p.cq_entries = options.cq_entries;
    if (options.attach_wq_fd >= 0) {
      p.flags |= IORING_SETUP_ATTACH_WQ;
      p.wq_fd = static_cast<unsigned>(options.attach_wq_fd);
    }
    ret = io_uring_queue_init_params(options.sq_entries, &ring, &p);
    if (ret == 0) {
      used = p.flags;
      if (!(p.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&ring);
        return absl::FailedPreconditionError(
            "io_uring lacks IORING_FEAT_NODROP (kernel older than 5.5); pollux needs it so "
            "that no completion is ever lost");
      }
      break;
    }
    if (ret != -EINVAL) break;  // a real error, not an unsupported flag
  }
  if (ret != 0) {
    return errno_status(-ret, absl::StrCat("io_uring_queue_init (sq ", options.sq_entries,
                                           ", cq ", options.cq_entries, ")"));
  }
  // Blocking on purpose: it is only ever read through the ring (DESIGN §5).
  int efd = ::eventfd(0, EFD_CLOEXEC);
  if (efd < 0) {
    int err = errno;
    io_uring_queue_exit(&ring);
    return errno_status(err, "eventfd for the backend's unparker");
  }
  auto unparker = std::make_shared<EventFdUnparker>(efd);
  return std::unique_ptr<IoUringBackend>(
      new IoUringBackend(ring, used, options, std::move(unparker)));
}

IoUringBackend::IoUringBackend(io_uring ring, unsigned flags, IoUringOptions options,
                               std::shared_ptr<EventFdUnparker> unparker)
    : ring_(ring),
      setup_flags_(flags),
      options_(options),
      sys_(options.syscalls != nullptr ? options.syscalls : &UringSyscalls::real()),
      sys_is_real_(sys_ == &UringSyscalls::real()),
      unparker_(std::move(unparker)) {}

IoUringBackend::~IoUringBackend() {
  shutdown();
  POLLUX_CHECK(bufs_leased_ == 0,
               "a RecvBuf outlived its io_uring backend (its buffer would be returned into "
               "freed memory); drop every RecvBuf before the runtime that produced it");
  // Closing the ring unregisters the buffer ring; nothing is in flight any
  // more (drained), so the buffers are then ours alone, unless shutdown left
  // operations in the kernel: their buffers are kept like their slots.
  io_uring_queue_exit(&ring_);
  if (buf_ring_ != nullptr && !leaked_kernel_memory_) {
    ::munmap(buf_ring_, buf_ring_bytes_);
    ::munmap(bufs_, bufs_bytes_);
  }
}

void IoUringBackend::shutdown(absl::Duration drain_timeout) {
  if (!enabled_ || drained_) return;
  drained_ = true;
  drain(drain_timeout);
  if (ring_fd_registered_) {
    // Else the registering thread's table would pin the ring until the thread
    // exits (a current_thread runtime's thread often outlives many runtimes).
    io_uring_unregister_ring_fd(&ring_);
    ring_fd_registered_ = false;
  }
}

absl::Status IoUringBackend::enable_on_current_thread() {
  if (enabled_) return absl::OkStatus();
  int ret = io_uring_enable_rings(&ring_);
  if (ret < 0) return errno_status(-ret, "enabling the io_uring on its thread");
  enabled_ = true;
  // Enters by registered index: the kernel skips a file-table lookup and
  // reference per io_uring_enter (about 8% of a nop round trip here). The
  // registration belongs to this thread; shutdown(), on this thread too,
  // drops it. A kernel without it (before 5.18) or a full table: plain fd.
  ring_fd_registered_ = io_uring_register_ring_fd(&ring_) == 1;
  return absl::OkStatus();
}

std::shared_ptr<Unparker> IoUringBackend::unparker() { return unparker_; }

UringStats IoUringBackend::uring_stats() const noexcept {
  UringStats s;
  stats_.snapshot_into(s);
  s.sq_full_flushes = stats_.sq_full_flushes.load();
  s.cq_overflows = stats_.cq_overflows.load();
  s.stale_cqes = stats_.stale_cqes.load();
  s.unpark_writes = unparker_->writes();
  return s;
}

size_t IoUringBackend::live_ops() const noexcept {
  return bare_.live() + data_.live() + msg_.live() + addr_.live() + multi_.live() +
         timeout_.live() + path_.live() + ready_.live();
}

// ---- Slots ----

template <>
IoUringBackend::SlabOf<BarePayload>& IoUringBackend::slab<BarePayload>() noexcept {
  return bare_;
}
template <>
IoUringBackend::SlabOf<DataPayload>& IoUringBackend::slab<DataPayload>() noexcept {
  return data_;
}
template <>
IoUringBackend::SlabOf<MsgPayload>& IoUringBackend::slab<MsgPayload>() noexcept {
  return msg_;
}
template <>
IoUringBackend::SlabOf<AddrPayload>& IoUringBackend::slab<AddrPayload>() noexcept {
  return addr_;
}
template <>
IoUringBackend::SlabOf<MultiPayload>& IoUringBackend::slab<MultiPayload>() noexcept {
  return multi_;
}
template <>
IoUringBackend::SlabOf<TimeoutPayload>& IoUringBackend::slab<TimeoutPayload>() noexcept {
  return timeout_;
}
template <>
IoUringBackend::SlabOf<PathPayload>& IoUringBackend::slab<PathPayload>() noexcept {
  return path_;
}
template <>
IoUringBackend::SlabOf<ReadyPayload>& IoUringBackend::slab<ReadyPayload>() noexcept {
  return ready_;
}

template <class V>
bool IoUringBackend::on_slab(uring::SlabId id, V&& visit) {
  switch (id) {
    case SlabId::kBare:
      return visit(bare_);
    case SlabId::kData:
      return visit(data_);
    case SlabId::kMsg:
      return visit(msg_);
    case SlabId::kAddr:
      return visit(addr_);
    case SlabId::kMulti:
      return visit(multi_);
    case SlabId::kTimeout:
      return visit(timeout_);
    case SlabId::kPath:
      return visit(path_);
    case SlabId::kReady:
      return visit(ready_);
  }
  return false;
}

template <class F>
bool IoUringBackend::with_slot(uint64_t ud, F&& f) {
  const uint32_t gen = uring::generation_of(ud);
  const uint32_t index = uring::index_of(ud);
  if (gen == 0) return false;
  auto visit = [&](auto& slab) {
    auto* s = slab.find(index, gen);
    if (s == nullptr) return false;
    f(*s, slab, index);
    return true;
  };
  return on_slab(uring::slab_id_of(ud), visit);
}


template <class F>
void IoUringBackend::for_each_live_slot(F&& f) {
  auto walk = [&](auto& slab) {
    using P = PayloadOf<std::decay_t<decltype(slab.at(0))>>;
    for (uint32_t i = 0; i < slab.capacity(); ++i) {
      auto& s = slab.at(i);
      if (s.live) f(s, slab, i, uring::encode(slab_id_for<P>(), i, s.generation));
    }
  };
  walk(bare_);
  walk(data_);
  walk(msg_);
  walk(addr_);
  walk(multi_);
  walk(timeout_);
  walk(path_);
  walk(ready_);
}

namespace {
// Frees a slot whose kernel operation is over and whose result is taken.
template <class S, class Slab>
[[gnu::always_inline]] inline void free_slot(S& s, Slab& slab, uint32_t index) noexcept {
  s.waker.reset();
  s.p = PayloadOf<S>{};
  s.sqe = nullptr;
  s.prep_seq = 0;
  slab.release(s, index);
}
}  // namespace

// ---- Submission ----

io_uring_sqe* IoUringBackend::get_sqe() {
  POLLUX_DCHECK(enabled_, "io_uring backend used before enable_on_current_thread()");
  io_uring_sqe* sqe = sys_is_real_ ? io_uring_get_sqe(&ring_) : sys_->get_sqe(&ring_);
  if (sqe == nullptr) [[unlikely]] {
    sqe = get_sqe_after_flush();
    if (sqe == nullptr) return nullptr;
  }
  ++sqes_prepared_;
  return sqe;
}

io_uring_sqe* IoUringBackend::get_sqe_after_flush() {
  // SQ full: flush it (one syscall) and try again.
  ++stats_.sq_full_flushes;
  ++stats_.kernel_entries;
  note_enter_result(sys_->submit(&ring_), "io_uring_submit");
  return sys_->get_sqe(&ring_);
}

void IoUringBackend::reserve_cancel_room_slow() {
  const size_t need = live_ops() + 1;
  // Room for at least 64 (1.5 KiB in all), so that a backend with a few
  // live ops does not count them again every other start.
  const size_t room = std::max<size_t>(need * 2, 64);
  if (unsent_cancels_.capacity() < need) unsent_cancels_.reserve(room);
  // Likewise for a -EAGAIN retry that finds no SQE (the completion path).
  if (unsent_resubmits_.capacity() < need) unsent_resubmits_.reserve(room);
  // And for a multishot recv starved of buffers (the completion path).
  if (starved_recvs_.capacity() < need) starved_recvs_.reserve(room);
  starts_before_reserve_ =
      std::min({unsent_cancels_.capacity(), unsent_resubmits_.capacity(), starved_recvs_.capacity()}) -
      need;
}

template <class P, class Fill>
OpId IoUringBackend::start(OpKind kind, Fill&& fill) {
  SlabOf<P>& sl = slab<P>();
  // Every allocation before the SQE is taken (a taken SQE is submitted
  // whatever it holds): std::bad_alloc here leaves the backend unchanged.
  // The slot's chunk, and room for its cancel should it find no SQE: cancel()
  // is noexcept and must not allocate (Backend's contract).
  sl.reserve_one();
  reserve_cancel_room();
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return OpId{};  // the kernel refuses submissions right now
  const uint32_t index = sl.allocate();
  Slot<P>& s = sl.at(index);
  s.state = SlotState::kInFlight;
  s.kind = kind;
  s.neutralized = false;
  s.rearming = false;
  s.awaiting_readiness = false;
  s.poll_first = false;
  s.res = 0;
  fill(s.p);
  const uint64_t ud = uring::encode(slab_id_for<P>(), index, s.generation);
  prep(sqe, s, ud);
  ++stats_.ops_submitted;
  return OpId{&s, ud};
}

template <class P>
void IoUringBackend::prep(io_uring_sqe* sqe, Slot<P>& s, uint64_t ud) {
  P& p = s.p;
  if (s.awaiting_readiness) {
    // A -EAGAIN retry: wait for readiness first (then prep the op again).
    io_uring_prep_poll_add(sqe, p.fd, waits_for_write(s.kind) ? POLLOUT : POLLIN);
  } else if constexpr (std::is_same_v<P, BarePayload>) {
    switch (s.kind) {
      case OpKind::kClose:
        io_uring_prep_close(sqe, p.fd);
        break;
      case OpKind::kPoll:
        io_uring_prep_poll_add(sqe, p.fd, p.arg);
        break;
      case OpKind::kFsync:
        io_uring_prep_fsync(sqe, p.fd, p.arg != 0 ? IORING_FSYNC_DATASYNC : 0);
        break;
      default:
        io_uring_prep_nop(sqe);
        break;
    }
  } else if constexpr (std::is_same_v<P, DataPayload>) {
    const size_t stop = std::min(p.end, p.buf.size());
    const size_t from = std::min(p.begin, stop);
    char* data = p.buf.data() + from;
    const unsigned len = static_cast<unsigned>(std::min<size_t>(stop - from, 1u << 30));
    switch (s.kind) {
      case OpKind::kRead:
        io_uring_prep_read(sqe, p.fd, data, len, p.offset);
        break;
      case OpKind::kWrite:
        io_uring_prep_write(sqe, p.fd, data, len, p.offset);
        break;
      case OpKind::kRecv:
        io_uring_prep_recv(sqe, p.fd, data, len, p.flags);
        break;
      default:
        io_uring_prep_send(sqe, p.fd, data, len, p.flags);
        break;
    }
    if (s.poll_first) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  } else if constexpr (std::is_same_v<P, MsgPayload>) {
    p.msg = msghdr{};
    if (s.kind == OpKind::kSendMsg) {
      const size_t off = std::min(p.offset, p.buf.size());
      p.iov = iovec{p.buf.data() + off, p.buf.size() - off};
      if (p.addr_len > 0) {
        p.msg.msg_name = &p.addr;
        p.msg.msg_namelen = p.addr_len;
      }
    } else {
      p.iov = iovec{p.buf.data(), p.buf.size()};
      p.addr = sockaddr_storage{};
      p.msg.msg_name = &p.addr;
      p.msg.msg_namelen = sizeof(p.addr);
    }
    p.msg.msg_iov = &p.iov;
    p.msg.msg_iovlen = 1;
    if (s.kind == OpKind::kSendMsg) {
      io_uring_prep_sendmsg(sqe, p.fd, &p.msg, static_cast<unsigned>(p.flags));
    } else {
      io_uring_prep_recvmsg(sqe, p.fd, &p.msg, static_cast<unsigned>(p.flags));
    }
    if (s.poll_first) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  } else if constexpr (std::is_same_v<P, AddrPayload>) {
    // SAFETY: sockaddr_storage may be viewed as a sockaddr.
    auto* addr = reinterpret_cast<sockaddr*>(&p.addr);
    if (s.kind == OpKind::kAccept) {
      p.addr_len = sizeof(p.addr);
      io_uring_prep_accept(sqe, p.fd, addr, &p.addr_len, kSocketFlags);
    } else {
      io_uring_prep_connect(sqe, p.fd, addr, p.addr_len);
    }
  } else if constexpr (std::is_same_v<P, MultiPayload>) {
    if (s.kind == OpKind::kRecvMulti) {
      // No buffer of its own: each CQE names the provided one it filled.
      io_uring_prep_recv_multishot(sqe, p.fd, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kRecvBufGroup;
      p.starved = false;
    } else {
      // No address: one buffer cannot hold the peer of every CQE.
      io_uring_prep_multishot_accept(sqe, p.fd, nullptr, nullptr, kSocketFlags);
    }
  } else if constexpr (std::is_same_v<P, TimeoutPayload>) {
    io_uring_prep_timeout(sqe, &p.ts, 0, 0);
  } else if constexpr (std::is_same_v<P, ReadyPayload>) {
    io_uring_prep_poll_multishot(sqe, p.fd, POLLIN | POLLOUT | POLLRDHUP | POLLPRI);
  } else if constexpr (std::is_same_v<P, PathPayload>) {
    if (s.kind == OpKind::kOpenAt) {
      io_uring_prep_openat(sqe, p.fd, p.path.c_str(), p.flags | O_CLOEXEC, p.mode);
    } else {
      p.stx = {};
      io_uring_prep_statx(sqe, p.fd, p.path.c_str(), p.flags, p.mask, &p.stx);
    }
  }
  io_uring_sqe_set_data64(sqe, ud);
  s.sqe = sqe;
  s.prep_seq = sqes_prepared_;
  if (!sys_is_real_) sys_->on_prep(sqe);
}

template <class P>
bool IoUringBackend::resubmit(Slot<P>& s, uint64_t ud) {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) {
    // In no SQE until run_deferred finds one.
    s.sqe = nullptr;
    s.prep_seq = 0;
    unsent_resubmits_.push_back(ud);
    return false;
  }
  prep(sqe, s, ud);
  return true;
}

// ---- Entry points ----

OpId IoUringBackend::start_nop() {
  return start<BarePayload>(OpKind::kNop, [](BarePayload&) {});
}

OpId IoUringBackend::start_read(int fd, std::vector<char>& buf, size_t begin, size_t end,
                                uint64_t offset) {
  return start<DataPayload>(OpKind::kRead, [&](DataPayload& p) {
    p.fd = fd;
    p.buf = std::move(buf);
    p.begin = begin;
    p.end = end;
    p.offset = offset;
  });
}

OpId IoUringBackend::start_write(int fd, std::vector<char>& buf, size_t begin, size_t end,
                                 uint64_t offset) {
  return start<DataPayload>(OpKind::kWrite, [&](DataPayload& p) {
    p.fd = fd;
    p.buf = std::move(buf);
    p.begin = begin;
    p.end = end;
    p.offset = offset;
  });
}

OpId IoUringBackend::start_recv(int fd, std::vector<char>& buf, size_t begin, size_t end,
                                int flags) {
  return start<DataPayload>(OpKind::kRecv, [&](DataPayload& p) {
    p.fd = fd;
    p.buf = std::move(buf);
    p.begin = begin;
    p.end = end;
    p.flags = flags;
  });
}

OpId IoUringBackend::start_send(int fd, std::vector<char>& buf, size_t begin, size_t end,
                                int flags) {
  return start<DataPayload>(OpKind::kSend, [&](DataPayload& p) {
    p.fd = fd;
    p.buf = std::move(buf);
    p.begin = begin;
    p.end = end;
    p.flags = flags | MSG_NOSIGNAL;
  });
}

OpId IoUringBackend::start_sendmsg(int fd, std::vector<char>& buf, size_t offset,
                                   const sockaddr_storage& to, socklen_t to_len, int flags) {
  return start<MsgPayload>(OpKind::kSendMsg, [&](MsgPayload& p) {
    p.fd = fd;
    p.buf = std::move(buf);
    p.offset = offset;
    p.addr = to;
    p.addr_len = to_len;
    p.flags = flags | MSG_NOSIGNAL;
  });
}

OpId IoUringBackend::start_recvmsg(int fd, std::vector<char>& buf, int flags) {
  return start<MsgPayload>(OpKind::kRecvMsg, [&](MsgPayload& p) {
    p.fd = fd;
    p.buf = std::move(buf);
    p.flags = flags;
  });
}

OpId IoUringBackend::start_accept(int listen_fd) {
  return start<AddrPayload>(OpKind::kAccept, [&](AddrPayload& p) { p.fd = listen_fd; });
}

OpId IoUringBackend::start_accept_multi(int listen_fd) {
  return start<MultiPayload>(OpKind::kAcceptMulti, [&](MultiPayload& p) { p.fd = listen_fd; });
}

// ---- Multishot recv and its provided-buffer ring ----

bool IoUringBackend::supports_recv_multi() noexcept {
  if (buf_ring_state_ == 0) buf_ring_state_ = setup_buf_ring() ? 1 : -1;
  return buf_ring_state_ > 0;
}

bool IoUringBackend::setup_buf_ring() noexcept {
  POLLUX_DCHECK(enabled_, "the buffer ring is registered on the ring's own thread");
  const unsigned n = options_.recv_buffers;
  const unsigned size = options_.recv_buffer_bytes;
  if (!enabled_ || n == 0 || (n & (n - 1)) != 0 || n > 32768 || size == 0) return false;
  // The kernel reads the ring and writes the buffers: both must stay mapped
  // (and unmoved) until the ring is closed, so they are our own mmaps.
  const size_t ring_bytes = round_up_to_page(n * sizeof(io_uring_buf));
  const size_t bufs_bytes = round_up_to_page(size_t{n} * size);
  void* ring_mem = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring_mem == MAP_FAILED) return false;
  void* bufs_mem = ::mmap(nullptr, bufs_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (bufs_mem == MAP_FAILED) {
    ::munmap(ring_mem, ring_bytes);
    return false;
  }
  io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uintptr_t>(ring_mem);
  reg.ring_entries = n;
  reg.bgid = kRecvBufGroup;
  if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
    // Before 5.19, or no memory to pin the ring: RecvStream falls back.
    ::munmap(ring_mem, ring_bytes);
    ::munmap(bufs_mem, bufs_bytes);
    return false;
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(ring_mem);
  buf_ring_bytes_ = ring_bytes;
  bufs_ = static_cast<char*>(bufs_mem);
  bufs_bytes_ = bufs_bytes;
  io_uring_buf_ring_init(buf_ring_);
  const int mask = io_uring_buf_ring_mask(n);
  for (unsigned i = 0; i < n; ++i) {
    io_uring_buf_ring_add(buf_ring_, bufs_ + size_t{i} * size, size, static_cast<unsigned short>(i),
                          mask, static_cast<int>(i));
  }
  // A store-release of the tail; its partner is the kernel's load-acquire
  // of the tail before it picks a buffer (so it sees the entries above).
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(n));
  bufs_in_ring_ = n;
  return true;
}

OpId IoUringBackend::start_recv_multi(int fd) {
  POLLUX_CHECK(buf_ring_state_ > 0,
               "start_recv_multi before supports_recv_multi() said yes");
  return start<MultiPayload>(OpKind::kRecvMulti, [&](MultiPayload& p) { p.fd = fd; });
}

std::span<const char> IoUringBackend::provided_buffer(int32_t buf) const noexcept {
  POLLUX_DCHECK(buf_ring_ != nullptr && buf >= 0 &&
                    static_cast<unsigned>(buf) < options_.recv_buffers,
                "provided_buffer of a buffer id this backend never handed out");
  const size_t size = options_.recv_buffer_bytes;
  return {bufs_ + static_cast<size_t>(buf) * size, size};
}

void IoUringBackend::refill_buffer(int32_t buf) noexcept {
  const unsigned size = options_.recv_buffer_bytes;
  io_uring_buf_ring_add(buf_ring_, bufs_ + static_cast<size_t>(buf) * size, size,
                        static_cast<unsigned short>(buf),
                        io_uring_buf_ring_mask(options_.recv_buffers), 0);
  // Store-release of the tail; partner: the kernel's load-acquire of it.
  io_uring_buf_ring_advance(buf_ring_, 1);
  ++bufs_in_ring_;
}

void IoUringBackend::return_buffer(int32_t buf) noexcept {
  POLLUX_CHECK(bufs_leased_ > 0, "return_buffer of a buffer that was not handed out");
  --bufs_leased_;
  refill_buffer(buf);
  if (starved_recvs_.empty()) return;
  // Every starved recv is armed again, not just one: one whose socket has
  // no data would sit on the buffer while another with data waited for a
  // return that may never come. One that finds the ring dry again starves
  // again (it costs a CQE).
  for (const uint64_t ud : starved_recvs_) {
    with_slot(ud, [&](auto& s, auto&, uint32_t) {
      using P = PayloadOf<std::decay_t<decltype(s)>>;
      if constexpr (std::is_same_v<P, MultiPayload>) {
        if (!s.p.starved || s.state != SlotState::kInFlight) return;
        s.p.starved = false;
        resubmit(s, ud);  // with no SQE now: at the next tick (unsent_resubmits_)
      }
    });
  }
  starved_recvs_.clear();  // keeps the reserved room
}

void IoUringBackend::release_queued(Slot<MultiPayload>& s) noexcept {
  if (s.kind != OpKind::kRecvMulti) {
    close_queued(s.p);
    return;
  }
  for (const uring::QueuedCqe& c : s.p.results) {
    if (c.buf >= 0) refill_buffer(c.buf);
  }
  s.p.results.clear();
}

void IoUringBackend::handle_recv_multi_cqe(Slot<MultiPayload>& s, uint64_t ud, int32_t res,
                                           uint32_t flags) {
  const bool final = !(flags & IORING_CQE_F_MORE);
  const int32_t buf = buffer_of(flags);
  if (buf >= 0) --bufs_in_ring_;
  if (s.p.paused && final && (res == -ECANCELED || res == -ENOBUFS)) {
    // Our pause ended it: the stream re-arms once it has drained the queue.
    s.p.paused = false;
    s.state = SlotState::kCompleted;
    s.waker.wake_by_ref();
    return;
  }
  if (res == -ENOBUFS) {
    // The ring ran dry: not an error of the stream, only a wait for a
    // buffer (DESIGN §5: -ENOBUFS re-arms the multishot).
    if (!final) return;
    if (bufs_in_ring_ > 0) {
      resubmit(s, ud);  // one came back before this CQE was reaped
    } else {
      s.p.starved = true;
      s.sqe = nullptr;
      s.prep_seq = 0;
      starved_recvs_.push_back(ud);  // room reserved when it started
    }
    return;
  }
  if (res == -EAGAIN) {
    ++stats_.eagain_retries;  // nothing was received: not a result
    if (buf >= 0) refill_buffer(buf);
  } else if (res > 0 && buf < 0) {
    // Data without a buffer cannot happen with IOSQE_BUFFER_SELECT; report
    // it rather than hand out bytes nobody can read.
    s.p.results.push_back(-EIO);
  } else {
    if (res <= 0 && buf >= 0) {
      refill_buffer(buf);  // an end or error carries no data
      s.p.results.push_back(res);
    } else {
      s.p.results.push_back(res, buf);
    }
  }
  if (final) {
    s.p.paused = false;  // ended anyway: the pause's cancel finds nothing
    s.state = SlotState::kCompleted;
  } else if (!s.p.paused && s.p.results.size() >= options_.recv_queued_max) {
    // Backpressure (IoUringOptions::recv_queued_max): stop taking bytes off
    // the socket until the reader catches up. What the kernel delivers
    // before the cancel lands still queues here: nothing is lost.
    s.p.paused = true;
    if (!queue_cancel(ud)) unsent_cancels_.push_back(ud);  // room reserved at start
  }
  s.waker.wake_by_ref();
}

OpId IoUringBackend::start_connect(int fd, const sockaddr_storage& addr, socklen_t len) {
  return start<AddrPayload>(OpKind::kConnect, [&](AddrPayload& p) {
    p.fd = fd;
    p.addr = addr;
    p.addr_len = len;
  });
}

OpId IoUringBackend::start_close(int fd) {
  return start<BarePayload>(OpKind::kClose, [&](BarePayload& p) { p.fd = fd; });
}

OpId IoUringBackend::start_poll(int fd, uint32_t events) {
  return start<BarePayload>(OpKind::kPoll, [&](BarePayload& p) {
    p.fd = fd;
    p.arg = events;
  });
}

OpId IoUringBackend::start_timeout(absl::Duration d) {
  return start<TimeoutPayload>(OpKind::kTimeout,
                               [&](TimeoutPayload& p) { p.ts = to_timespec(d); });
}

OpId IoUringBackend::start_openat(int dirfd, std::string& path, int flags, mode_t mode) {
  return start<PathPayload>(OpKind::kOpenAt, [&](PathPayload& p) {
    p.fd = dirfd;
    p.path = std::move(path);
    p.flags = flags;
    p.mode = mode;
  });
}

OpId IoUringBackend::start_fsync(int fd, bool datasync) {
  return start<BarePayload>(OpKind::kFsync, [&](BarePayload& p) {
    p.fd = fd;
    p.arg = datasync ? 1 : 0;
  });
}

OpId IoUringBackend::start_statx(int dirfd, std::string& path, int flags, unsigned mask) {
  return start<PathPayload>(OpKind::kStatx, [&](PathPayload& p) {
    p.fd = dirfd;
    p.path = std::move(path);
    p.flags = flags;
    p.mask = mask;
  });
}

// ---- AsyncFd ----

OpId IoUringBackend::start_ready_register(int fd) {
  return start<ReadyPayload>(OpKind::kReadyRegister, [&](ReadyPayload& p) { p.fd = fd; });
}

Slot<ReadyPayload>* IoUringBackend::ready_registration(uint64_t ud) {
  if (uring::slab_id_of(ud) != SlabId::kReady) return nullptr;
  return ready_.find(uring::index_of(ud), uring::generation_of(ud));
}

OpId IoUringBackend::start_ready_wait(OpId reg, uint32_t interest) {
  // No SQE: the registration's multishot poll delivers the edges.
  const uint32_t index = bare_.allocate();
  Slot<BarePayload>& s = bare_.at(index);
  s.state = SlotState::kInFlight;
  s.kind = OpKind::kReadyWait;
  s.neutralized = false;
  s.rearming = false;
  s.awaiting_readiness = false;
  s.poll_first = false;
  s.sqe = nullptr;
  s.prep_seq = 0;
  s.res = 0;
  s.p.ref = reg.bits;
  s.p.arg = interest;
  ++stats_.ops_submitted;
  const OpId id{&s, uring::encode(SlabId::kBare, index, s.generation)};
  Slot<ReadyPayload>* r = ready_registration(reg.bits);
  if (r == nullptr || r->state != SlotState::kInFlight) {
    // Gone (its AsyncFd was dropped), or ended with an error.
    s.res = r != nullptr && r->res < 0 ? r->res : -EBADF;
    s.state = SlotState::kCompleted;
    return id;
  }
  const uint32_t word = r->p.word;
  if ((word & ready::wakes(interest)) != 0) {
    s.res = ready_result(word);
    s.state = SlotState::kCompleted;
    return id;
  }
  s.p.wprev = r->p.tail;
  s.p.wnext = nullptr;
  if (r->p.tail != nullptr) {
    // SAFETY: the list holds only Slot<BarePayload> readiness waits.
    static_cast<Slot<BarePayload>*>(r->p.tail)->p.wnext = &s;
  } else {
    r->p.head = &s;
  }
  r->p.tail = &s;
  s.p.linked = true;
  return id;
}

void IoUringBackend::unlink_ready_wait(Slot<BarePayload>& w) {
  if (!w.p.linked) return;
  Slot<ReadyPayload>* r = ready_registration(w.p.ref);
  POLLUX_DCHECK(r != nullptr, "a linked readiness wait whose registration is gone");
  if (r != nullptr) {
    // SAFETY: the list holds only Slot<BarePayload> readiness waits.
    if (w.p.wprev != nullptr) {
      static_cast<Slot<BarePayload>*>(w.p.wprev)->p.wnext = w.p.wnext;
    } else {
      r->p.head = w.p.wnext;
    }
    if (w.p.wnext != nullptr) {
      static_cast<Slot<BarePayload>*>(w.p.wnext)->p.wprev = w.p.wprev;
    } else {
      r->p.tail = w.p.wprev;
    }
  }
  w.p.wprev = w.p.wnext = nullptr;
  w.p.linked = false;
}

void IoUringBackend::wake_ready_waits(Slot<ReadyPayload>& reg, int32_t res) {
  const uint32_t word = reg.p.word;
  SlotHeader* next = reg.p.head;
  while (next != nullptr) {
    // SAFETY: the list holds only Slot<BarePayload> readiness waits.
    auto& w = *static_cast<Slot<BarePayload>*>(next);
    next = w.p.wnext;
    if (res >= 0 && (word & ready::wakes(w.p.arg)) == 0) continue;
    unlink_ready_wait(w);
    ++stats_.completions;
    complete_and_wake(w, res >= 0 ? ready_result(word) : res);
  }
}

void IoUringBackend::handle_ready_cqe(Slot<ReadyPayload>& s, uint64_t ud, int32_t res,
                                      bool final) {
  if (res >= 0) {
    // An edge: OR the bits in and move the tick, even if they were set.
    const uint32_t tick = ((s.p.word >> kReadyTickShift) + 1) & 0xFFFF;
    s.p.word = (tick << kReadyTickShift) |
               ((s.p.word | ready_bits_of(static_cast<uint32_t>(res))) & ready::kAll);
    wake_ready_waits(s, 0);
    // The kernel ended the multishot (an overflowing CQ, say): arm it again.
    if (final) resubmit(s, ud);
    return;
  }
  if (res == -ECANCELED && final) {
    resubmit(s, ud);  // not ours (ours come to an Ignored slot): arm it again
    return;
  }
  // The poll failed (a bad fd, ...): the registration ends with it.
  s.res = res;
  if (final) s.state = SlotState::kCompleted;
  wake_ready_waits(s, res);
}

void IoUringBackend::clear_ready(OpId reg, uint32_t interest, uint32_t tick) {
  Slot<ReadyPayload>* r = ready_registration(reg.bits);
  if (r == nullptr) return;
  if (((r->p.word >> kReadyTickShift) & 0xFFFF) != (tick & 0xFFFF)) return;  // a newer edge
  uint32_t mask = 0;
  if (interest & ready::kReadable) mask |= ready::kReadable;
  if (interest & ready::kWritable) mask |= ready::kWritable;
  r->p.word &= ~mask;
}

// ---- Driving and taking results ----

MultiNext IoUringBackend::poll_multi(OpId id, const Waker& waker) {
  POLLUX_CHECK(id.valid() && uring::slab_id_of(id.bits) == SlabId::kMulti,
               "IoUringBackend::poll_multi on an id that is not a multishot op");
  // SAFETY: as in with_id.
  auto* s = static_cast<Slot<MultiPayload>*>(id.core);
  if (!s->p.results.empty()) {
    const uring::QueuedCqe c = s->p.results.pop_front();
    if (c.buf >= 0) ++bufs_leased_;  // the caller's now, until return_buffer
    return MultiNext{MultiNext::Kind::kItem, c.res, c.buf};
  }
  if (s->state == SlotState::kCompleted) return MultiNext{MultiNext::Kind::kEnded, 0};
  if (!s->waker.will_wake(waker)) s->waker = waker;
  return MultiNext{MultiNext::Kind::kPending, 0};
}

size_t IoUringBackend::queued(OpId id) const {
  if (!id.valid() || uring::slab_id_of(id.bits) != SlabId::kMulti) return 0;
  // SAFETY: as in with_id.
  return static_cast<const Slot<MultiPayload>*>(id.core)->p.results.size();
}

template <class F>
void IoUringBackend::with_id(OpId id, F&& f) {
  const uint32_t index = uring::index_of(id.bits);
  auto visit = [&](auto& slab) {
    using S = std::decay_t<decltype(slab.at(0))>;
    // SAFETY: the backend made `id` for a slot of this slab (start<P>), and
    // every Slot<P> starts with its OpCore (Slot<P> : SlotHeader : OpCore).
    S& s = static_cast<S&>(*id.core);
    POLLUX_DCHECK(slab.find(index, uring::generation_of(id.bits)) == &s,
                  "an operation id used after its slot was freed");
    f(s, slab, index);
    return true;
  };
  on_slab(uring::slab_id_of(id.bits), visit);
}

namespace {
// The completed slot `id` names, checked (a wrong id is a bug in the
// futures, never a user error).
template <class S>
S& completed_slot(OpId id, SlabId expected) {
  POLLUX_CHECK(id.valid() && uring::slab_id_of(id.bits) == expected &&
                   id.core->state == SlotState::kCompleted,
               "taking the result of an operation that is not complete");
  // SAFETY: as in with_id: a slot of the slab `expected` names.
  return static_cast<S&>(*id.core);
}
}  // namespace

int32_t IoUringBackend::take_result(OpId id) {
  POLLUX_CHECK(id.valid() && id.core->state == SlotState::kCompleted,
               "taking the result of an operation that is not complete");
  int32_t res = 0;
  with_id(id, [&](auto& s, auto& slab, uint32_t index) {
    res = s.res;
    free_slot(s, slab, index);
  });
  ++stats_.ops_completed;
  return res;
}

int32_t IoUringBackend::take_data(OpId id, std::vector<char>& buf) {
  auto& s = completed_slot<Slot<DataPayload>>(id, SlabId::kData);
  const int32_t res = s.res;
  buf = std::move(s.p.buf);
  free_slot(s, data_, uring::index_of(id.bits));
  ++stats_.ops_completed;
  return res;
}

MsgCompletion IoUringBackend::take_msg(OpId id) {
  auto& s = completed_slot<Slot<MsgPayload>>(id, SlabId::kMsg);
  MsgCompletion c{s.res, std::move(s.p.buf), s.p.addr, s.p.msg.msg_namelen, s.p.msg.msg_flags};
  free_slot(s, msg_, uring::index_of(id.bits));
  ++stats_.ops_completed;
  return c;
}

AcceptCompletion IoUringBackend::take_accept(OpId id) {
  auto& s = completed_slot<Slot<AddrPayload>>(id, SlabId::kAddr);
  AcceptCompletion c{s.res, s.p.addr, s.p.addr_len};
  free_slot(s, addr_, uring::index_of(id.bits));
  ++stats_.ops_completed;
  return c;
}

PathCompletion IoUringBackend::take_path(OpId id) {
  auto& s = completed_slot<Slot<PathPayload>>(id, SlabId::kPath);
  PathCompletion c{s.res, std::move(s.p.path), s.p.stx};
  free_slot(s, path_, uring::index_of(id.bits));
  ++stats_.ops_completed;
  return c;
}

void IoUringBackend::cancel(OpId id) noexcept {
  POLLUX_DCHECK(id.valid(), "IoUringBackend::cancel of an invalid id");
  with_id(id, [&](auto& s, auto& slab, uint32_t index) {
    using P = PayloadOf<std::decay_t<decltype(s)>>;
    // Counted once (a slot already kIgnored was counted when it was
    // cancelled): a multishot op that has ended is done with, not cancelled.
    if (s.state == SlotState::kCompleted && op_traits(s.kind).multishot) {
      ++stats_.ops_completed;
    } else if (s.state != SlotState::kIgnored) {
      ++stats_.ops_cancelled;
    }
    s.waker.reset();
    if constexpr (std::is_same_v<P, BarePayload>) {
      if (s.kind == OpKind::kReadyWait) {
        // No SQE of its own: it only waits in its registration's list.
        unlink_ready_wait(s);
        free_slot(s, slab, index);
        return;
      }
    }
    if constexpr (std::is_same_v<P, ReadyPayload>) {
      // Waits outliving their AsyncFd (a misuse) end with EBADF.
      wake_ready_waits(s, -EBADF);
    }
    if constexpr (std::is_same_v<P, MultiPayload>) {
      // Delivered and never handed out: nobody owns them.
      release_queued(s);
      if (s.p.starved) {
        // In no SQE (it is freed below): it must not be re-armed later.
        s.p.starved = false;
        starved_recvs_.erase(std::remove(starved_recvs_.begin(), starved_recvs_.end(), id.bits),
                             starved_recvs_.end());
      }
    }
    if (s.state == SlotState::kIgnored) return;
    if (s.state == SlotState::kCompleted) {
      // The result was never taken: an fd in it would leak.
      if (op_traits(s.kind).returns_fd && !op_traits(s.kind).multishot && s.res >= 0) {
        ::close(s.res);
      }
      free_slot(s, slab, index);
      return;
    }
    if (s.sqe == nullptr) {
      // Waiting to be prepared again (no SQE yet): the kernel holds nothing.
      free_slot(s, slab, index);
      return;
    }
    s.state = SlotState::kIgnored;
    if (neutralize_unsubmitted(s, id.bits)) return;
    // No SQE right now (the kernel refuses submissions): without a cancel a
    // read that never gets data would hold its slot (and the kernel its
    // buffer) forever, so retry at the next tick.
    if (!queue_cancel(id.bits)) unsent_cancels_.push_back(id.bits);
  });
}

// Why an op dropped before the kernel consumed its SQE is turned into a NOP
// rather than cancelled: the caller may close the op's fd as soon as the op
// is dropped (a failed connect's socket, the last half of a split stream),
// and a socket() made later in the same tick can get the same fd number.
// The kernel only looks the fd up when it consumes the SQE at the end of the
// tick, so the stale SQE would run on the new socket: a dropped send would
// write into an unrelated connection, a dropped connect would connect it. A
// NOP touches no fd; its CQE frees the slot like any final CQE.
//
// Whether the kernel consumed it: the backend numbers every SQE it prepares
// (sqes_prepared_), and liburing's io_uring_sq_ready() says how many of
// them the kernel has not consumed yet, so the first
// sqes_prepared_ - io_uring_sq_ready() are consumed. (Only the kernel entry
// on this thread consumes SQEs: no SQPOLL.)
bool IoUringBackend::neutralize_unsubmitted(SlotHeader& s, uint64_t ud) {
  if (s.sqe == nullptr || s.prep_seq == 0) return false;
  const uint64_t consumed = sqes_prepared_ - io_uring_sq_ready(&ring_);
  if (s.prep_seq <= consumed) return false;
  POLLUX_DCHECK(s.sqe->user_data == ud, "an unconsumed SQE holds another op");
  io_uring_prep_nop(s.sqe);  // clears flags, fd and addresses
  io_uring_sqe_set_data64(s.sqe, ud);
  s.neutralized = true;
  return true;
}

bool IoUringBackend::queue_cancel(uint64_t ud) {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return false;
  io_uring_prep_cancel64(sqe, ud, 0);
  io_uring_sqe_set_data64(sqe, kCancelTag);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  if (!sys_is_real_) sys_->on_prep(sqe);
  return true;
}

// Why accepts are re-armed. The kernel waits for connections on a listening
// socket with an exclusive wait-queue entry per pending accept, and a new
// connection wakes only the first entry. An accept that was cancelled can
// still sit on the queue until its cancellation finishes; a connection that
// arrives meanwhile wakes it, the wake-up is consumed by a request that no
// longer accepts, and every other accept on that socket sleeps on with the
// connection in the backlog (seen on 6.x kernels: the accept of the next
// connect after a dropped accept hung forever). So when a dropped accept's
// final CQE arrives, every other accept on the same socket is cancelled and
// submitted again: a fresh accept first tries the backlog, and its wait
// entry is then the only one. Dropped accepts are rare; the scan is cheap.
void IoUringBackend::rearm_accepts_on(int listen_fd) {
  auto rearm = [&](auto& slab, SlabId id, OpKind kind) {
    for (uint32_t i = 0; i < slab.capacity(); ++i) {
      auto& s = slab.at(i);
      if (!s.live || s.kind != kind || s.state != SlotState::kInFlight || s.p.fd != listen_fd ||
          s.rearming || s.awaiting_readiness || s.sqe == nullptr) {
        continue;
      }
      s.rearming = true;
      const uint64_t ud = uring::encode(id, i, s.generation);
      if (!queue_cancel(ud)) unsent_cancels_.push_back(ud);
    }
  };
  rearm(addr_, SlabId::kAddr, OpKind::kAccept);
  rearm(multi_, SlabId::kMulti, OpKind::kAcceptMulti);
}

void IoUringBackend::run_deferred_slow() {
  if (!unsent_cancels_.empty()) {
    // In place, keeping the vector's reserved room (see reserve_cancel_room):
    // those that still find no SQE move to the front.
    size_t kept = 0;
    for (size_t i = 0; i < unsent_cancels_.size(); ++i) {
      const uint64_t ud = unsent_cancels_[i];
      // Completed (and freed) meanwhile: nothing left to cancel.
      with_slot(ud, [&](auto& s, auto&, uint32_t) {
        bool pausing = false;
        if constexpr (std::is_same_v<PayloadOf<std::decay_t<decltype(s)>>, MultiPayload>) {
          pausing = s.p.paused && s.state == SlotState::kInFlight;
        }
        if (s.state != SlotState::kIgnored && !s.rearming && !pausing) return;
        if (!queue_cancel(ud)) unsent_cancels_[kept++] = ud;
      });
    }
    unsent_cancels_.resize(kept);  // shrinking: no allocation
  }
  if (!unsent_resubmits_.empty()) {
    std::vector<uint64_t> pending = std::move(unsent_resubmits_);
    unsent_resubmits_.clear();
    starts_before_reserve_ = 0;  // the room went with `pending`: the next start reserves again
    for (uint64_t ud : pending) {
      with_slot(ud, [&](auto& s, auto&, uint32_t) {
        if (s.sqe != nullptr) return;  // prepared already
        resubmit(s, ud);               // queues itself again if there is still no SQE
      });
    }
  }
}

void IoUringBackend::arm_unpark_read() {
  if (unpark_read_armed_) return;
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;  // parks with a bounded wait instead
  io_uring_prep_read(sqe, unparker_->fd(), unpark_buf_.get(), sizeof(uint64_t), 0);
  io_uring_sqe_set_data64(sqe, kUnparkTag);
  if (!sys_is_real_) sys_->on_prep(sqe);
  unpark_read_armed_ = true;
}

// ---- Ticks ----

namespace {
// The one read of liburing's private fields (DESIGN §5): liburing 2.3 has
// no call that reports IORING_SQ_TASKRUN (task work waiting under
// DEFER_TASKRUN/COOP_TASKRUN with TASKRUN_FLAG). The kernel writes this word;
// a relaxed read is enough, the enter that follows synchronises.
unsigned sq_flags_word(const io_uring& ring) { return IO_URING_READ_ONCE(*ring.sq.kflags); }
}  // namespace

void IoUringBackend::note_enter_error(int err, const char* what) {
  if (err != ETIME && err != EINTR) ++stats_.enter_errors;
  if (is_transient(err)) {
    consecutive_enter_errors_ = 0;
    return;
  }
  if (++consecutive_enter_errors_ >= 3 && fatal_.ok()) {
    fatal_ = errno_status(err, absl::StrCat(what, " failed 3 times in a row; the io_uring "
                                                "backend cannot make progress"));
  }
}

// Overflow is counted where the kernel is entered, before the entry flushes
// it: a tick enters at most once, so one overflow is counted once.
void IoUringBackend::enter_and_wait(__kernel_timespec* timeout) {
  io_uring_cqe* cqe = nullptr;
  if (io_uring_cq_has_overflow(&ring_)) ++stats_.cq_overflows;
  ++stats_.kernel_entries;
  note_enter_result(sys_->submit_and_wait_timeout(&ring_, &cqe, 1, timeout),
                    "io_uring_submit_and_wait_timeout");
}

void IoUringBackend::enter_if_needed() {
  const unsigned flags = sq_flags_word(ring_);
  if (flags & IORING_SQ_CQ_OVERFLOW) ++stats_.cq_overflows;
  if (!has_pending_sqes() && !(flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) return;
  ++stats_.kernel_entries;
  note_enter_result(sys_->submit_and_get_events(&ring_), "io_uring_submit_and_get_events");
}

void IoUringBackend::poll_now() {
  run_deferred();
  enter_if_needed();
  reap();
}

bool IoUringBackend::park(std::optional<absl::Duration> timeout) {
  run_deferred();
  const uint64_t completions_before = stats_.completions;
  unpark_read_done_ = false;
  if (timeout && *timeout <= absl::ZeroDuration()) {
    // Look, never block (a paused clock's "anything left?").
    const bool notified = unparker_->take_notified();
    enter_if_needed();
    reap();
    return notified || unpark_read_done_ || stats_.completions != completions_before;
  }
  arm_unpark_read();
  if (!unparker_->try_park()) {
    poll_now();
    return true;
  }
  __kernel_timespec ts{};
  __kernel_timespec* tsp = nullptr;
  absl::Duration wait = timeout ? *timeout : absl::InfiniteDuration();
  // No eventfd read armed (no SQE): poll for unparks instead.
  if (!unpark_read_armed_) wait = std::min(wait, absl::Milliseconds(1));
  if (wait != absl::InfiniteDuration()) {
    ts = to_timespec(wait);
    tsp = &ts;
  }
  enter_and_wait(tsp);
  unparker_->unparked();
  reap();
  return unpark_read_done_ || stats_.completions != completions_before;
}

size_t IoUringBackend::reap() {
  size_t total = 0;
  for (;;) {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (sys_is_real_ || sys_->on_cqe(cqe)) handle_cqe(*cqe);
      ++seen;
    }
    if (seen == 0) return total;
    io_uring_cq_advance(&ring_, seen);
    total += seen;
  }
}

inline uring::SlotHeader* IoUringBackend::single_shot_slot(uint64_t ud) noexcept {
  const uint32_t gen = uring::generation_of(ud);
  const uint32_t index = uring::index_of(ud);
  if (gen == 0) return nullptr;
  uring::SlotHeader* found = nullptr;
  on_slab(uring::slab_id_of(ud), [&](auto& slab) {
    using P = PayloadOf<std::decay_t<decltype(slab.at(0))>>;
    if constexpr (!std::is_same_v<P, MultiPayload> && !std::is_same_v<P, ReadyPayload>) {
      found = slab.find(index, gen);
    }
    return true;
  });
  return found;
}

inline bool IoUringBackend::complete_plainly(uint64_t ud, int32_t res,
                                             uint32_t flags) noexcept {
  // A failure may be a -EAGAIN to retry, a connect in progress, an expired
  // timeout: handle_slot_cqe sorts those out.
  if (res < 0 || (flags & IORING_CQE_F_MORE)) return false;
  uring::SlotHeader* s = single_shot_slot(ud);
  if (s == nullptr || s->state != SlotState::kInFlight || s->awaiting_readiness || s->rearming) {
    return false;
  }
  // What handle_slot_cqe ends with for this case.
  ++stats_.completions;
  complete_and_wake(*s, res);
  return true;
}

inline bool IoUringBackend::deliver_recv_plainly(uint64_t ud, int32_t res, uint32_t flags) {
  // What handle_slot_cqe tests before it reaches handle_recv_multi_cqe, for
  // this case: a final CQE (a re-arm), a -EAGAIN (a retry), a slot whose
  // stream is gone or that waits for readiness go the general way.
  if (res <= 0 || !(flags & IORING_CQE_F_MORE) || uring::slab_id_of(ud) != SlabId::kMulti) {
    return false;
  }
  const uint32_t gen = uring::generation_of(ud);
  if (gen == 0) return false;  // a tag
  Slot<MultiPayload>* s = multi_.find(uring::index_of(ud), gen);
  if (s == nullptr || s->kind != OpKind::kRecvMulti || s->state != SlotState::kInFlight ||
      s->awaiting_readiness) {
    return false;
  }
  ++stats_.completions;
  handle_recv_multi_cqe(*s, ud, res, flags);
  return true;
}

void IoUringBackend::handle_cqe(const io_uring_cqe& cqe) {
  if (complete_plainly(cqe.user_data, cqe.res, cqe.flags)) return;
  if (deliver_recv_plainly(cqe.user_data, cqe.res, cqe.flags)) return;
  handle_cqe_generally(cqe);
}

void IoUringBackend::handle_cqe_generally(const io_uring_cqe& cqe) {
  const uint64_t ud = cqe.user_data;
  if (ud == kCancelTag) return;  // only failed cancels arrive (-ENOENT/-EALREADY): harmless
  if (ud == kUnparkTag) {
    unpark_read_armed_ = false;
    unpark_read_done_ = true;
    return;
  }
  const bool live = with_slot(ud, [&](auto& s, auto& slab, uint32_t index) {
    handle_slot_cqe(s, slab, index, ud, cqe.res, cqe.flags);
  });
  if (!live) {
    ++stats_.stale_cqes;
    // Cannot happen (a recv slot lives until its final CQE), but a buffer
    // dropped here would be gone from the ring for good.
    if (const int32_t buf = buffer_of(cqe.flags); buf >= 0 && buf_ring_ != nullptr) {
      --bufs_in_ring_;
      refill_buffer(buf);
    }
  }
}

template <class P>
void IoUringBackend::handle_slot_cqe(Slot<P>& s, SlabOf<P>& slab, uint32_t index, uint64_t ud,
                                     int32_t res, uint32_t flags) {
  ++stats_.completions;
  const bool final = !(flags & IORING_CQE_F_MORE);
  const OpTraits traits = op_traits(s.kind);
  if (s.state == SlotState::kIgnored) {
    // Nobody wants this result. An fd it delivered would leak: close it.
    const bool ran = !s.neutralized && !s.awaiting_readiness;
    if (ran && traits.returns_fd && res >= 0) ::close(res);
    if (const int32_t buf = buffer_of(flags); buf >= 0) {
      --bufs_in_ring_;
      refill_buffer(buf);  // data nobody will read (the stream was dropped)
    }
    if (final) {
      const bool was_accept = ran && (s.kind == OpKind::kAccept || s.kind == OpKind::kAcceptMulti);
      const int listen_fd = s.p.fd;
      free_slot(s, slab, index);
      if (was_accept) rearm_accepts_on(listen_fd);
    }
    return;
  }
  if constexpr (std::is_same_v<P, ReadyPayload>) {
    handle_ready_cqe(s, ud, res, final);
    return;
  }
  if (s.awaiting_readiness) {
    // The readiness poll of a -EAGAIN retry has ended.
    s.awaiting_readiness = false;
    if constexpr (std::is_same_v<P, AddrPayload>) {
      if (s.kind == OpKind::kConnect && s.p.connect_in_progress && res >= 0) {
        // A non-blocking connect that reported EINPROGRESS: writability
        // means it ended; SO_ERROR says how.
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(s.p.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        complete_and_wake(s, -err);
        return;
      }
    }
    if (res >= 0) {
      resubmit(s, ud);
      return;
    }
    // The poll itself failed: report that as the operation's error.
  } else {
    if (s.rearming && final) {
      s.rearming = false;
      if (res == -ECANCELED) {
        // Our own cancel (rearm_accepts_on) ended it: submit it again,
        // keeping its slot, generation and waker; its future never sees the
        // difference. With no SQE it is prepared at the next tick.
        resubmit(s, ud);
        return;
      }
    }
    if (retry_after_eagain(s, ud, res)) return;
  }
  if constexpr (std::is_same_v<P, MultiPayload>) {
    if (s.kind == OpKind::kRecvMulti) {
      handle_recv_multi_cqe(s, ud, res, flags);
      return;
    }
    if (res == -EAGAIN) {
      ++stats_.eagain_retries;  // nothing was accepted: not a result
    } else {
      s.p.results.push_back(res);
    }
    if (final) s.state = SlotState::kCompleted;
    s.waker.wake_by_ref();
    return;
  }
  complete_and_wake(s, res);
}

template <class P>
bool IoUringBackend::retry_after_eagain(Slot<P>& s, uint64_t ud, int32_t res) {
  if (res != -EAGAIN && !(s.kind == OpKind::kConnect && (res == -EINPROGRESS || res == -EALREADY))) {
    return false;
  }
  switch (s.kind) {
    case OpKind::kRecv:
    case OpKind::kSend:
    case OpKind::kSendMsg:
    case OpKind::kRecvMsg:
      s.poll_first = true;  // the kernel waits for readiness itself
      break;
    case OpKind::kConnect:
      if constexpr (std::is_same_v<P, AddrPayload>) s.p.connect_in_progress = res != -EAGAIN;
      s.awaiting_readiness = true;
      break;
    case OpKind::kAccept:
    case OpKind::kRead:
    case OpKind::kWrite:
      s.awaiting_readiness = true;
      break;
    default:
      return false;  // not a readiness wait (a multishot drops it; others report it)
  }
  ++stats_.eagain_retries;
  resubmit(s, ud);
  return true;
}

void IoUringBackend::drain(absl::Duration drain_timeout) {
  // Cancel everything still in flight and wait until the kernel has returned
  // every operation's memory (ignored slots are freed by their final CQE).
  for_each_live_slot([&](auto& s, auto&, uint32_t, uint64_t ud) {
    if (s.state == SlotState::kInFlight) cancel(OpId{&s, ud});
  });
  if (unpark_read_armed_) {
    // Complete the armed eventfd read by giving it something to read: unlike
    // a cancel, this needs no SQE.
    uint64_t one = 1;
    ssize_t n = ::write(unparker_->fd(), &one, sizeof(one));
    (void)n;
  }
  const absl::Time start = absl::Now();
  const absl::Time give_up = start + drain_timeout;
  for (;;) {
    run_deferred();  // cancels that found no SQE earlier (or just now)
    reap();
    bool busy = unpark_read_armed_;
    for_each_live_slot([&](auto& s, auto&, uint32_t, uint64_t) {
      busy = busy || s.state != SlotState::kCompleted;
    });
    if (!busy && !has_pending_sqes()) break;
    const absl::Time now = absl::Now();
    // A backend whose kernel entry keeps failing cannot drain at all.
    if (!fatal_.ok() || now >= give_up) break;
    __kernel_timespec ts = to_timespec(std::min(absl::Milliseconds(10), give_up - now));
    enter_and_wait(&ts);
  }
  // Completed results nobody took: close what they delivered, free them.
  // Anything else is still the kernel's: its memory must outlive us.
  uint64_t stuck = 0;
  for_each_live_slot([&](auto& s, auto& slab, uint32_t index, uint64_t) {
    if (s.state != SlotState::kCompleted) {
      ++stuck;
      return;
    }
    using P = PayloadOf<std::decay_t<decltype(s)>>;
    if constexpr (std::is_same_v<P, MultiPayload>) {
      release_queued(s);
    } else if (op_traits(s.kind).returns_fd && s.res >= 0) {
      ::close(s.res);
    }
    free_slot(s, slab, index);
  });
  if (stuck == 0 && !unpark_read_armed_) return;
  stats_.leaked_ops += stuck;
  leaked_kernel_memory_ = true;  // a stuck recv may still fill provided buffers
  bare_.leak();
  data_.leak();
  msg_.leak();
  addr_.leak();
  multi_.leak();
  timeout_.leak();
  path_.leak();
  ready_.leak();
  if (unpark_read_armed_) detail::keep_forever(unpark_buf_.release());
  std::fprintf(stderr,
               "pollux: %llu io_uring operation(s) were still in the kernel when shutdown gave "
               "up after %s%s; their memory is kept for the rest of the process (never freed "
               "under the kernel)\n",
               static_cast<unsigned long long>(stuck),
               absl::FormatDuration(absl::Now() - start).c_str(),
               fatal_.ok() ? "" : " (the kernel entry was failing)");
}

}  // namespace pollux::reactor
