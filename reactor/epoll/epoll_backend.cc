#include "reactor/epoll/epoll_backend.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "executor/internal/park_state.h"
#include "future/assert.h"
#include "future/internal/mutex.h"
#include "reactor/epoll/internal/epoll_syscalls.h"
#include "reactor/errno_status.h"
#include "reactor/internal/fd_records.h"

namespace pollux::reactor {

using epoll::AddrPayload;
using epoll::BarePayload;
using epoll::DataPayload;
using epoll::Dir;
using epoll::FileJob;
using epoll::MsgPayload;
using epoll::MultiPayload;
using epoll::PathPayload;
using epoll::ScheduledIo;
using epoll::SlabId;
using epoll::SlotHeader;
using epoll::TimeoutPayload;
using epoll::kNoSio;

namespace {

// epoll_data of the unparker's eventfd: generation 0 is never a
// registration's.
constexpr uint64_t kUnparkTag = 1;
// DESIGN §5: accept4 until EAGAIN, at most 64 per wake.
constexpr int kAcceptBurst = 64;
constexpr uint32_t kEpollEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr int kSocketFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;
constexpr uint64_t kNoOffset = uint64_t(-1);
// A data op moves at most this much per syscall (as the io_uring backend).
constexpr size_t kMaxTransfer = size_t{1} << 30;

int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

uint64_t sio_data(uint32_t index, uint32_t generation) {
  return (uint64_t{generation} << 32) | index;
}

uint32_t bits_of(uint32_t events) {
  uint32_t b = 0;
  if (events & (EPOLLIN | EPOLLPRI)) b |= epoll::kReadable;
  if (events & EPOLLOUT) b |= epoll::kWritable;
  if (events & EPOLLRDHUP) b |= epoll::kReadClosed;
  if (events & EPOLLHUP) b |= epoll::kHangUp;
  if (events & EPOLLERR) b |= epoll::kError;
  return b;
}

Dir dir_of(OpKind kind) {
  switch (kind) {
    case OpKind::kWrite:
    case OpKind::kSend:
    case OpKind::kSendMsg:
    case OpKind::kConnect:
      return Dir::kWrite;
    case OpKind::kPoll:
      return Dir::kAny;
    default:
      return Dir::kRead;
  }
}

// What an op waits for and what its EAGAIN clears. poll() names its own
// events; clearing a direction it did not look at would lose the other
// direction's edge.
struct Interest {
  uint32_t ready;
  uint32_t clear;
};
Interest interest_of(const SlotHeader& s, uint32_t poll_events) {
  if (s.kind != OpKind::kPoll) return {epoll::ready_mask(s.dir), epoll::clear_mask(s.dir)};
  Interest i{epoll::kHangUp | epoll::kError, 0};
  if (poll_events & (POLLIN | POLLPRI | POLLRDHUP)) {
    i.ready |= epoll::ready_mask(Dir::kRead);
    i.clear |= epoll::kReadable;
  }
  if (poll_events & POLLOUT) {
    i.ready |= epoll::ready_mask(Dir::kWrite);
    i.clear |= epoll::kWritable;
  }
  return i;
}

// A poll(2) look that never blocks: is `fd` ready for `events` right now?
bool look(int fd, short events) {
  pollfd p{fd, events, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  return n > 0;
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
}

template <class S>
using PayloadOf = std::decay_t<decltype(std::declval<S&>().p)>;

// Kinds whose syscall has no per-call "don't wait" flag (recv and send have
// MSG_DONTWAIT, read and write RWF_NOWAIT): on an fd without O_NONBLOCK they
// would block, so an fd nobody owns is asked for its flags first.
bool needs_nonblocking_fd(OpKind k) {
  return k == OpKind::kAccept || k == OpKind::kAcceptMulti || k == OpKind::kConnect;
}

bool is_fd_blocking(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  return fl >= 0 && (fl & O_NONBLOCK) == 0;
}

}  // namespace

// ---- The completion queue and the file jobs ----

namespace epoll {

// Where pool threads hand finished file jobs back: an intrusive stack under
// a lock (pushing allocates nothing), drained by the backend every tick.
class CompletionQueue {
 public:
  explicit CompletionQueue(std::shared_ptr<Unparker> unparker) : unparker_(std::move(unparker)) {}

  // Pool thread. The caller holds a reference to the queue (the job's), so
  // it stays alive through the unpark even once the backend has taken and
  // freed the job.
  void post(FileJob* job) noexcept {
    {
      pollux::detail::MutexLock lock(mu_);
      if (closed_) {
        // The backend gave up on this job at shutdown: the job never frees
        // its memory (DESIGN §5), it stays reachable for the process's life.
        detail::keep_forever(job);
        return;
      }
      job->next = head_;
      head_ = job;
      // release: pairs with take_all's acquire load (a hint; the lock
      // carries the job itself).
      pending_.store(true, std::memory_order_release);
    }
    unparker_->unpark();
  }

  // Backend thread: every job posted so far, oldest first.
  FileJob* take_all() noexcept {
    // acquire: pairs with post's release store.
    if (!pending_.load(std::memory_order_acquire)) return nullptr;
    FileJob* list;
    {
      pollux::detail::MutexLock lock(mu_);
      list = head_;
      head_ = nullptr;
      // relaxed: under the lock, which the next post takes.
      pending_.store(false, std::memory_order_relaxed);
    }
    FileJob* oldest_first = nullptr;
    while (list != nullptr) {
      FileJob* next = list->next;
      list->next = oldest_first;
      oldest_first = list;
      list = next;
    }
    return oldest_first;
  }

  // Backend thread, at shutdown: jobs that finish later are kept, not freed.
  void close() noexcept {
    pollux::detail::MutexLock lock(mu_);
    closed_ = true;
  }

 private:
  pollux::detail::Mutex mu_;
  FileJob* head_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  pollux::detail::Atomic<bool> pending_{false};
  std::shared_ptr<Unparker> unparker_;
};

namespace {
int32_t retry_eintr(long (*f)(FileJob&), FileJob& j) {
  long r;
  do {
    r = f(j);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : static_cast<int32_t>(r);
}
}  // namespace

void FileJob::run() noexcept {
  // acquire: pairs with the backend's release store when the future is
  // dropped (cancel), so a job cancelled before it started does nothing.
  if (cancelled.load(std::memory_order_acquire)) {
    res = -ECANCELED;
  } else {
    switch (kind) {
      case OpKind::kOpenAt:
        res = retry_eintr(
            [](FileJob& j) -> long {
              return ::openat(j.use_fd(), j.path.c_str(), j.flags | O_CLOEXEC, j.mode);
            },
            *this);
        break;
      case OpKind::kStatx:
        res = retry_eintr(
            [](FileJob& j) -> long {
              return ::statx(j.use_fd(), j.path.c_str(), j.flags, j.mask, &j.stx);
            },
            *this);
        break;
      case OpKind::kFsync:
        res = retry_eintr(
            [](FileJob& j) -> long { return j.datasync ? ::fdatasync(j.use_fd()) : ::fsync(j.use_fd()); },
            *this);
        break;
      case OpKind::kRead:
      case OpKind::kWrite:
        res = retry_eintr(
            [](FileJob& j) -> long {
              const size_t stop = std::min(j.end, j.buf.size());
              const size_t from = std::min(j.begin, stop);
              const size_t len = std::min(stop - from, kMaxTransfer);
              char* data = j.buf.data() + from;
              if (j.kind == OpKind::kRead) {
                return j.offset == kNoOffset ? ::read(j.use_fd(), data, len)
                                             : ::pread(j.use_fd(), data, len, static_cast<off_t>(j.offset));
              }
              return j.offset == kNoOffset ? ::write(j.use_fd(), data, len)
                                           : ::pwrite(j.use_fd(), data, len, static_cast<off_t>(j.offset));
            },
            *this);
        break;
      case OpKind::kConnect:
        // A blocking socket pollux did not create: its connect blocks, so
        // it blocks a pool thread instead of the runtime's.
        res = retry_eintr(
            [](FileJob& j) -> long {
              // SAFETY: sockaddr_storage may be viewed as a sockaddr.
              return ::connect(j.use_fd(), reinterpret_cast<const sockaddr*>(&j.addr), j.addr_len);
            },
            *this);
        if (res == -EISCONN) res = 0;
        break;
      default:
        res = -EINVAL;
        break;
    }
  }
  std::shared_ptr<CompletionQueue> q = queue;  // keeps the queue alive through post
  q->post(this);
}

void FileJob::abandon() noexcept {
  res = -ECANCELED;
  std::shared_ptr<CompletionQueue> q = queue;
  q->post(this);
}

}  // namespace epoll

// ---- Unparker ----

class EpollBackend::EventFdUnparker final : public Unparker {
 public:
  explicit EventFdUnparker(int efd) : efd_(efd) {}
  ~EventFdUnparker() override { ::close(efd_); }

  void unpark() noexcept override {
    if (!state_.unpark()) return;  // the backend is running: it sees the work next tick
    // The eventfd is in the set edge-triggered and never read: every write
    // is an edge (eventfd wakes its waiters on each write). It only fails
    // when the counter would overflow (after 2^64 writes).
    uint64_t one = 1;
    ssize_t n = ::write(efd_, &one, sizeof(one));
    (void)n;
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
  pollux::detail::Atomic<uint64_t> writes_{0};
  int efd_;
};

// ---- The owners' side of registrations ----

// Hears, on whatever thread an FdOwner is released, that one of our
// registered fds is about to close: removes it from the set right there
// (the fd is still open, and epoll_ctl is thread-safe) and leaves a note
// for the backend's thread, which frees the ScheduledIo at its next tick.
class EpollBackend::Link final : public detail::FdCloseListener {
 public:
  explicit Link(int epfd) : epfd_(epfd) {}

  void fd_closing(int fd, uint32_t epoch) noexcept override {
    pollux::detail::MutexLock lock(mu_);
    if (epfd_ < 0) return;  // the backend is gone, and its set with it
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    // May allocate under the lock: the only other user of this lock is the
    // backend taking the notes, once a tick when there are any.
    released_.push_back({fd, epoch});
    // release: pairs with take()'s acquire load (a hint; the lock carries
    // the notes).
    pending_.store(true, std::memory_order_release);
  }

  // Backend thread.
  std::vector<std::pair<int, uint32_t>> take() {
    // acquire: pairs with fd_closing's release store.
    if (!pending_.load(std::memory_order_acquire)) return {};
    std::vector<std::pair<int, uint32_t>> out;
    pollux::detail::MutexLock lock(mu_);
    out.swap(released_);
    // relaxed: under the lock.
    pending_.store(false, std::memory_order_relaxed);
    return out;
  }

  // Backend thread, before the set is closed: later releases find no set
  // (never an epoll_ctl on a closed, maybe reused, epfd number).
  void detach() {
    pollux::detail::MutexLock lock(mu_);
    epfd_ = -1;
    released_.clear();
  }

 private:
  pollux::detail::Mutex mu_;
  int epfd_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<int, uint32_t>> released_ ABSL_GUARDED_BY(mu_);
  pollux::detail::Atomic<bool> pending_{false};
};

// ---- Setup ----

EpollSyscalls& EpollSyscalls::real() {
  static EpollSyscalls instance;
  return instance;
}

absl::StatusOr<std::unique_ptr<EpollBackend>> EpollBackend::create(EpollOptions options) {
  const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return errno_status(errno, "epoll_create1 for the epoll backend");
  // Non-blocking: it is never read (see EventFdUnparker::unpark), and a
  // write must never block the waking thread.
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    const int err = errno;
    ::close(epfd);
    return errno_status(err, "eventfd for the epoll backend's unparker");
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kUnparkTag;
  if (::epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev) != 0) {
    const int err = errno;
    ::close(efd);
    ::close(epfd);
    return errno_status(err, "epoll_ctl adding the unparker's eventfd");
  }
  auto unparker = std::make_shared<EventFdUnparker>(efd);
  return std::unique_ptr<EpollBackend>(new EpollBackend(epfd, options, std::move(unparker)));
}

EpollBackend::EpollBackend(int epfd, EpollOptions options,
                           std::shared_ptr<EventFdUnparker> unparker)
    : Backend(/*completes_recv_send_now=*/true),
      epfd_(epfd),
      options_(options),
      sys_(options.syscalls != nullptr ? options.syscalls : &EpollSyscalls::real()),
      unparker_(std::move(unparker)),
      link_(std::make_shared<Link>(epfd)),
      completions_(std::make_shared<epoll::CompletionQueue>(unparker_)) {
  if (options_.pool == nullptr) {
    own_pool_ = std::make_unique<blocking::BlockingPool>();
    pool_ = own_pool_.get();
  } else {
    pool_ = options_.pool;
  }
  events_.resize(static_cast<size_t>(std::max(1, options_.max_events)));
}

EpollBackend::~EpollBackend() {
  shutdown();
  ::close(epfd_);
}

std::shared_ptr<Unparker> EpollBackend::unparker() { return unparker_; }

EpollStats EpollBackend::epoll_stats() const noexcept {
  EpollStats s;
  stats_.snapshot_into(s);
  s.events = stats_.events.load();
  s.stale_events = stats_.stale_events.load();
  s.deregistrations = stats_.deregistrations.load();
  s.file_jobs = stats_.file_jobs.load();
  s.short_clears = stats_.short_clears.load();
  s.unpark_writes = unparker_->writes();
  return s;
}

size_t EpollBackend::live_ops() const noexcept {
  return bare_.live() + data_.live() + msg_.live() + addr_.live() + multi_.live() +
         timeout_.live() + path_.live();
}

// ---- Slots ----

template <>
EpollBackend::SlabOf<BarePayload>& EpollBackend::slab<BarePayload>() noexcept {
  return bare_;
}
template <>
EpollBackend::SlabOf<DataPayload>& EpollBackend::slab<DataPayload>() noexcept {
  return data_;
}
template <>
EpollBackend::SlabOf<MsgPayload>& EpollBackend::slab<MsgPayload>() noexcept {
  return msg_;
}
template <>
EpollBackend::SlabOf<AddrPayload>& EpollBackend::slab<AddrPayload>() noexcept {
  return addr_;
}
template <>
EpollBackend::SlabOf<MultiPayload>& EpollBackend::slab<MultiPayload>() noexcept {
  return multi_;
}
template <>
EpollBackend::SlabOf<TimeoutPayload>& EpollBackend::slab<TimeoutPayload>() noexcept {
  return timeout_;
}
template <>
EpollBackend::SlabOf<PathPayload>& EpollBackend::slab<PathPayload>() noexcept {
  return path_;
}

template <class P>
OpId EpollBackend::allocate(OpKind kind, P** payload) {
  SlabOf<P>& sl = slab<P>();
  const uint32_t index = sl.allocate();
  SlotOf<P>& s = sl.at(index);
  s.state = OpState::kInFlight;
  s.kind = kind;
  s.dir = dir_of(kind);
  s.linked = false;
  s.sio = kNoSio;
  s.sio_gen = 0;
  s.wprev = s.wnext = nullptr;
  s.job = nullptr;
  s.res = 0;
  *payload = &s.p;
  ++stats_.ops_submitted;
  return OpId{&s, epoll::encode(slab_id_for<P>(), index, s.generation)};
}

template <class V>
bool EpollBackend::on_slab(SlabId id, V&& visit) {
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
  }
  return false;
}

template <class F>
bool EpollBackend::with_slot(uint64_t bits, F&& f) {
  const uint32_t gen = epoll::generation_of(bits);
  const uint32_t index = epoll::index_of(bits);
  if (gen == 0) return false;
  auto visit = [&](auto& sl) {
    auto* s = sl.find(index, gen);
    if (s == nullptr) return false;
    f(*s);
    return true;
  };
  return on_slab(epoll::slab_id_of(bits), visit);
}

template <class F>
void EpollBackend::with_id(OpId id, F&& f) {
  auto visit = [&](auto& sl) {
    using S = std::decay_t<decltype(sl.at(0))>;
    // SAFETY: the backend made `id` for a slot of this slab (allocate<P>),
    // and every Slot<P> starts with its OpCore (Slot<P> : SlotHeader : OpCore).
    S& s = static_cast<S&>(*id.core);
    POLLUX_DCHECK(sl.find(epoll::index_of(id.bits), epoll::generation_of(id.bits)) == &s,
                  "an operation id used after its slot was freed");
    f(s);
    return true;
  };
  on_slab(epoll::slab_id_of(id.bits), visit);
}

template <class F>
void EpollBackend::for_each_live_slot(F&& f) {
  auto walk = [&](auto& sl) {
    using P = PayloadOf<std::decay_t<decltype(sl.at(0))>>;
    for (uint32_t i = 0; i < sl.capacity(); ++i) {
      auto& s = sl.at(i);
      if (s.live) f(s, epoll::encode(slab_id_for<P>(), i, s.generation));
    }
  };
  walk(bare_);
  walk(data_);
  walk(msg_);
  walk(addr_);
  walk(multi_);
  walk(timeout_);
  walk(path_);
}

template <class S>
void EpollBackend::free_slot(S& s, uint64_t bits) noexcept {
  detach(s);
  s.waker.reset();
  s.job = nullptr;
  s.p = PayloadOf<S>{};
  slab<PayloadOf<S>>().release(epoll::index_of(bits));
}

template <class P, class F>
OpId EpollBackend::guarded_start(OpId id, std::vector<char>* caller_buf, F&& drive_it) {
  // SAFETY: allocate<P> made `id` for a Slot<P>.
  auto& s = static_cast<SlotOf<P>&>(*id.core);
  try {
    drive_it(s);
  } catch (const std::bad_alloc&) {
    if constexpr (requires { s.p.buf; }) {
      if (caller_buf != nullptr) *caller_buf = std::move(s.p.buf);
    }
    free_slot(s, id.bits);
    throw;
  }
  return id;
}

// ---- Registrations ----

// sio_of, lookup and detach run several times per operation: their common
// paths are small and inline, their rare ones out of line.
inline ScheduledIo* EpollBackend::sio_of(SlotHeader& s) {
  if (s.sio == kNoSio) return nullptr;
  ScheduledIo* io = sios_.find(s.sio, s.sio_gen);
  if (io == nullptr) s.sio = kNoSio;  // dropped under us (its owner released the fd)
  return io;
}

inline ScheduledIo* EpollBackend::lookup(int fd) {
  // A negative fd becomes huge: out of range.
  if (static_cast<size_t>(fd) >= by_fd_.size()) return nullptr;
  const FdEntry e = by_fd_[static_cast<size_t>(fd)];
  if (e.sio == kNoSio) return nullptr;
  if (detail::fd_epoch(fd) == e.epoch) return &sios_.at(e.sio);
  drop_stale(fd);
  return nullptr;
}

void EpollBackend::drop_stale(int fd) {
  // The number now names another file (its owner released it, which took
  // it out of the set, and a new owner or nobody holds it): never use the
  // old registration for it.
  drop_sio(by_fd_[static_cast<size_t>(fd)].sio, /*remove_from_set=*/false);
}

ScheduledIo* EpollBackend::register_fd(int fd, Dir waiting, int* err) {
  if (fd < 0) {
    *err = EBADF;
    return nullptr;
  }
  const uint32_t epoch = detail::fd_epoch(fd);
  const bool owned = (epoch & 1) != 0;
  int type = 0;
  socklen_t type_len = sizeof(type);
  const bool is_socket = ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) == 0;
  bool blocking = false;
  // The sockets pollux owns are O_NONBLOCK (net/ makes them so); anything
  // else is asked.
  if (!owned || !is_socket) {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) {
      *err = errno;
      return nullptr;
    }
    blocking = (fl & O_NONBLOCK) == 0;
  }
  // Memory first (std::bad_alloc here leaves nothing behind): the slot
  // and the by_fd_ entry; fd_listen's may still throw, undone below.
  sios_.reserve_one();
  if (by_fd_.size() <= static_cast<size_t>(fd)) by_fd_.resize(static_cast<size_t>(fd) + 1);
  const uint32_t index = sios_.allocate();
  ScheduledIo& io = sios_.at(index);
  io.fd = fd;
  io.epoch = epoch;
  io.owned = owned;
  io.stream = !is_socket || type == SOCK_STREAM;
  io.blocking = blocking;
  io.users = 0;
  io.index = index;
  // The direction that just said EAGAIN starts not ready; the other one
  // starts ready ("try the syscall first"), except on a blocking fd, where
  // nothing is tried before the kernel says so (EPOLL_CTL_ADD reports the
  // fd's current readiness as a first event).
  uint32_t start = 0;
  if (!blocking) {
    start = waiting == Dir::kRead ? epoll::kWritable : waiting == Dir::kWrite ? epoll::kReadable : 0;
  }
  // relaxed: a fresh registration nobody else can see yet.
  io.word.store(start, std::memory_order_relaxed);
  epoll_event ev{};
  ev.events = kEpollEvents;
  ev.data.u64 = sio_data(index, io.generation);
  if (sys_->epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int e = errno;
    // EEXIST: this file is in the set under this number already, from a
    // registration we no longer hold (a dup of it closed elsewhere): take
    // it over.
    if (e != EEXIST || sys_->epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
      sios_.release(index);
      *err = e;
      return nullptr;
    }
  }
  ++stats_.registrations;
  bool listening = true;
  try {
    listening = !owned || detail::fd_listen(fd, epoch, link_);
  } catch (const std::bad_alloc&) {
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    sios_.release(index);
    throw;
  }
  if (!listening) {
    // Its owner released it while we registered (on another thread).
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    sios_.release(index);
    *err = EBADF;
    return nullptr;
  }
  if (by_fd_.size() <= static_cast<size_t>(fd)) by_fd_.resize(static_cast<size_t>(fd) + 1);
  FdEntry& entry = by_fd_[static_cast<size_t>(fd)];
  if (entry.sio != kNoSio && entry.sio != index) drop_sio(entry.sio, /*remove_from_set=*/false);
  by_fd_[static_cast<size_t>(fd)] = FdEntry{index, epoch};
  return &io;
}

void EpollBackend::attach(SlotHeader& s, ScheduledIo* io) {
  s.sio = io->index;
  s.sio_gen = io->generation;
  if (!io->owned) ++io->users;
}

inline void EpollBackend::detach(SlotHeader& s) {
  if (s.sio == kNoSio) {
    s.linked = false;
    return;
  }
  ScheduledIo* io = sio_of(s);
  if (io == nullptr) {
    s.linked = false;
    return;
  }
  if (s.linked) unlink(s);
  s.sio = kNoSio;
  if (!io->owned && --io->users == 0) drop_sio(io->index, /*remove_from_set=*/true);
}

void EpollBackend::drop_sio(uint32_t index, bool remove_from_set) {
  ScheduledIo& io = sios_.at(index);
  POLLUX_DCHECK(io.live, "dropping a registration twice");
  // Only while the number still names the file we registered (no owner
  // came and went): a DEL on a reused number would remove someone else's.
  if (remove_from_set && detail::fd_epoch(io.fd) == io.epoch) {
    sys_->epoll_ctl(epfd_, EPOLL_CTL_DEL, io.fd, nullptr);
  }
  // Ops still waiting on it are woken to retry (on a closed fd their
  // syscall reports EBADF); they see the registration is gone.
  for (epoll::WaitList& l : io.waiters) wake_list(l);
  if (static_cast<size_t>(io.fd) < by_fd_.size() &&
      by_fd_[static_cast<size_t>(io.fd)].sio == index) {
    by_fd_[static_cast<size_t>(io.fd)] = FdEntry{};
  }
  io.fd = -1;
  io.users = 0;
  // relaxed: owner thread; the generation bump makes every id stale.
  io.word.store(0, std::memory_order_relaxed);
  ++stats_.deregistrations;
  sios_.release(index);
}

void EpollBackend::link(SlotHeader& s, ScheduledIo* io, Dir d) {
  POLLUX_DCHECK(!s.linked, "an op linked twice");
  epoll::WaitList& l = io->waiters[static_cast<int>(d)];
  s.dir = d;
  s.wnext = nullptr;
  s.wprev = l.tail;
  if (l.tail != nullptr) {
    l.tail->wnext = &s;
  } else {
    l.head = &s;
  }
  l.tail = &s;
  s.linked = true;
}

void EpollBackend::unlink(SlotHeader& s) {
  if (!s.linked) return;
  ScheduledIo* io = sios_.find(s.sio, s.sio_gen);
  POLLUX_DCHECK(io != nullptr, "a linked op whose registration is gone");
  if (io == nullptr) {
    s.linked = false;
    return;
  }
  epoll::WaitList& l = io->waiters[static_cast<int>(s.dir)];
  if (s.wprev != nullptr) {
    s.wprev->wnext = s.wnext;
  } else {
    l.head = s.wnext;
  }
  if (s.wnext != nullptr) {
    s.wnext->wprev = s.wprev;
  } else {
    l.tail = s.wprev;
  }
  s.wprev = s.wnext = nullptr;
  s.linked = false;
}

void EpollBackend::clear_if_tick(ScheduledIo* io, uint32_t mask, uint32_t seen) {
  // relaxed: a first guess; the compare-exchange decides.
  uint32_t cur = io->word.load(std::memory_order_relaxed);
  while (epoll::tick_of(cur) == epoll::tick_of(seen) && (cur & mask) != 0) {
    // acq_rel: pairs with the event's release store of the word; an event
    // that bumped the tick since `seen` makes this fail, and its edge stays.
    if (io->word.compare_exchange_weak(cur, cur & ~mask, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      return;
    }
  }
}

void EpollBackend::wake_list(epoll::WaitList& list) {
  while (SlotHeader* s = list.head) {
    list.head = s->wnext;
    if (list.head != nullptr) {
      list.head->wprev = nullptr;
    } else {
      list.tail = nullptr;
    }
    s->wprev = s->wnext = nullptr;
    s->linked = false;
    // A multishot accept stays armed (its poll_multi accepts); every other
    // op retries its syscall in its next poll (resume).
    if (s->kind != OpKind::kAcceptMulti) s->state = OpState::kReady;
    s->waker.wake_by_ref();
  }
}

void EpollBackend::apply_releases() {
  for (const auto& [fd, epoch] : link_->take()) {
    if (fd < 0 || static_cast<size_t>(fd) >= by_fd_.size()) continue;
    const FdEntry e = by_fd_[static_cast<size_t>(fd)];
    // Already out of the set (the release did the DEL).
    if (e.sio != kNoSio && e.epoch == epoch) drop_sio(e.sio, /*remove_from_set=*/false);
  }
}

// ---- Ops ----

template <class P>
int32_t EpollBackend::attempt_syscall(SlotOf<P>& s, ScheduledIo* io) {
  P& p = s.p;
  long r;
  if constexpr (std::is_same_v<P, DataPayload>) {
    const size_t stop = std::min(p.end, p.buf.size());
    const size_t from = std::min(p.begin, stop);
    size_t len = std::min(stop - from, kMaxTransfer);
    char* data = p.buf.data() + from;
    iovec iov{data, len};
    do {
      switch (s.kind) {
        case OpKind::kRecv:
          r = sys_->recv(p.fd, data, len, p.flags | MSG_DONTWAIT);
          break;
        case OpKind::kSend:
          r = sys_->send(p.fd, data, len, p.flags | MSG_DONTWAIT);
          break;
        case OpKind::kRead:
          // RWF_NOWAIT: the read(2) of an fd whose O_NONBLOCK is not ours to
          // set, that never blocks (pipes, eventfds, sockets; -EOPNOTSUPP
          // where the kernel or the file cannot, see drive()).
          r = p.plain ? ::read(p.fd, data, len) : ::preadv2(p.fd, &iov, 1, -1, RWF_NOWAIT);
          break;
        default:
          if (p.plain) {
            // A blocking fd after a look said writable: room for PIPE_BUF
            // bytes, and a blocking write of more could wait for the reader.
            if (io != nullptr && io->blocking) len = std::min<size_t>(len, PIPE_BUF);
            r = ::write(p.fd, data, len);
          } else {
            r = ::pwritev2(p.fd, &iov, 1, -1, RWF_NOWAIT);
          }
          break;
      }
    } while (r < 0 && errno == EINTR);
  } else if constexpr (std::is_same_v<P, MsgPayload>) {
    iovec iov{};
    msghdr msg{};
    if (s.kind == OpKind::kSendMsg) {
      const size_t off = std::min(p.offset, p.buf.size());
      iov = iovec{p.buf.data() + off, p.buf.size() - off};
      if (p.addr_len > 0) {
        msg.msg_name = &p.addr;
        msg.msg_namelen = p.addr_len;
      }
    } else {
      iov = iovec{p.buf.data(), p.buf.size()};
      p.addr = sockaddr_storage{};
      msg.msg_name = &p.addr;
      msg.msg_namelen = sizeof(p.addr);
    }
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    do {
      r = s.kind == OpKind::kSendMsg ? ::sendmsg(p.fd, &msg, p.flags | MSG_DONTWAIT)
                                     : ::recvmsg(p.fd, &msg, p.flags | MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (s.kind == OpKind::kRecvMsg && r >= 0) {
      p.addr_len = msg.msg_namelen;
      p.msg_flags = msg.msg_flags;
    }
  } else if constexpr (std::is_same_v<P, AddrPayload>) {
    // SAFETY: sockaddr_storage may be viewed as a sockaddr.
    auto* addr = reinterpret_cast<sockaddr*>(&p.addr);
    if (s.kind == OpKind::kAccept) {
      do {
        p.addr_len = sizeof(p.addr);
        r = sys_->accept4(p.fd, addr, &p.addr_len, kSocketFlags);
      } while (r < 0 && errno == EINTR);
    } else if (p.connect_in_progress) {
      // Writable after EINPROGRESS: the handshake ended; SO_ERROR says how.
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      return -err;
    } else {
      r = ::connect(p.fd, addr, p.addr_len);
      if (r < 0 && (errno == EINPROGRESS || errno == EINTR || errno == EALREADY)) {
        // In progress (an interrupted connect goes on in the background).
        p.connect_in_progress = true;
        return -EAGAIN;
      }
    }
  } else if constexpr (std::is_same_v<P, BarePayload>) {
    // poll: a look that never blocks.
    pollfd pf{p.fd, static_cast<short>(p.arg), 0};
    do {
      r = ::poll(&pf, 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return -EAGAIN;
    if (r > 0) return pf.revents;
  } else {
    return -EINVAL;
  }
  if (r < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  return static_cast<int32_t>(r);
}

void EpollBackend::complete(SlotHeader& s, int32_t res) {
  s.res = res;
  s.state = OpState::kCompleted;
  ++stats_.completions;
}

template <class P>
void EpollBackend::complete_now(SlotOf<P>& s, int32_t res, ScheduledIo* io, uint32_t seen) {
  if constexpr (std::is_same_v<P, DataPayload>) {
    // A stream that moved fewer bytes than asked is drained (or full): the
    // next op need not make a syscall only to hear EAGAIN (tokio does the
    // same). Not on a blocking fd, whose look decides every attempt.
    if (res > 0 && io != nullptr && io->stream && !io->blocking) {
      const size_t stop = std::min(s.p.end, s.p.buf.size());
      const size_t asked = std::min(stop - std::min(s.p.begin, stop), kMaxTransfer);
      if (static_cast<size_t>(res) < asked) {
        clear_if_tick(io, epoll::clear_mask(s.dir), seen);
        ++stats_.short_clears;
      }
    }
  }
  detach(s);
  complete(s, res);
}

// drive() is on every socket operation's path; what only fds pollux did not
// create, or old kernels, need is out of line (the cold helpers below), so
// the common loop stays small.

// An fd nobody owns and we have not seen, for an op with no "don't wait"
// flag (accept, connect): a blocking socket's connect runs on the pool, its
// accept waits for a look first. False when the op is done with (handed on,
// or completed with an error); else *io is its registration, or null.
template <class P>
[[gnu::noinline]] bool EpollBackend::prepare_raw(SlotOf<P>& s, uint64_t bits, ScheduledIo** io) {
  const int fd = s.p.fd;
  if (!needs_nonblocking_fd(s.kind) || (detail::fd_epoch(fd) & 1) != 0 || !is_fd_blocking(fd)) {
    return true;
  }
  if constexpr (std::is_same_v<P, AddrPayload>) {
    if (s.kind == OpKind::kConnect) {
      auto job = std::make_unique<FileJob>();
      job->fd = fd;
      job->addr = s.p.addr;
      job->addr_len = s.p.addr_len;
      submit_job(s, bits, std::move(job));
      return false;
    }
  }
  int err = 0;
  *io = register_fd(fd, s.dir, &err);
  if (*io == nullptr) {
    complete_now(s, -err, nullptr, 0);
    return false;
  }
  attach(s, *io);
  return true;
}

// read/write got -EOPNOTSUPP from RWF_NOWAIT (the kernel or the file lacks
// it): read(2)/write(2) it is, which never blocks on an O_NONBLOCK fd; a
// blocking one is read only once a look says it is ready (or, a regular
// file, on the pool). False when the op is done with.
[[gnu::noinline]] bool EpollBackend::without_nowait(SlotOf<DataPayload>& s, uint64_t bits,
                                                    ScheduledIo** io) {
  const int fd = s.p.fd;
  s.p.plain = true;
  if (!is_fd_blocking(fd)) return true;
  struct stat st;
  if (::fstat(fd, &st) == 0 && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) &&
      !S_ISCHR(st.st_mode)) {
    to_job(s, bits);
    return false;
  }
  if (*io == nullptr) {
    int err = 0;
    *io = register_fd(fd, s.dir, &err);
    if (*io == nullptr) {
      complete_now(s, -err, nullptr, 0);
      return false;
    }
    attach(s, *io);
  }
  (*io)->blocking = true;
  return true;
}

// The first EAGAIN on an fd this backend has no registration for:
// register it. False when the op is done with (epoll refused the fd).
template <class P>
[[gnu::noinline]] bool EpollBackend::register_on_eagain(SlotOf<P>& s, uint64_t bits,
                                                        ScheduledIo** io) {
  int err = 0;
  *io = register_fd(s.p.fd, s.dir, &err);
  if (*io == nullptr) {
    if constexpr (std::is_same_v<P, DataPayload>) {
      // A regular file: epoll cannot watch it (it is always "ready"), and
      // RWF_NOWAIT said the read must wait for the disk.
      if (err == EPERM && (s.kind == OpKind::kRead || s.kind == OpKind::kWrite)) {
        to_job(s, bits);
        return false;
      }
    }
    complete_now(s, -err, nullptr, 0);
    return false;
  }
  attach(s, *io);
  return true;
}

template <class P>
void EpollBackend::drive(SlotOf<P>& s, uint64_t bits) {
  if constexpr (std::is_same_v<P, DataPayload> || std::is_same_v<P, MsgPayload> ||
                std::is_same_v<P, AddrPayload> || std::is_same_v<P, BarePayload>) {
    ScheduledIo* io = sio_of(s);
    if (io == nullptr) {
      io = lookup(s.p.fd);
      if (io != nullptr) {
        attach(s, io);
      } else if (!prepare_raw(s, bits, &io)) {
        return;
      }
    }
    uint32_t poll_events = 0;
    if constexpr (std::is_same_v<P, BarePayload>) poll_events = s.p.arg;
    const Interest want = interest_of(s, poll_events);
    int eagains = 0;
    for (;;) {
      // acquire: pairs with the event's release store, as DESIGN §5's
      // attempt protocol reads it (the tick noted here guards the clear).
      const uint32_t seen = io != nullptr ? io->word.load(std::memory_order_acquire)
                                          : epoll::kReadyBits;
      if (io != nullptr && (seen & want.ready) == 0) break;  // wait, without a syscall
      if (io != nullptr && io->blocking) {
        short ev = s.dir == Dir::kWrite ? POLLOUT : POLLIN;
        if constexpr (std::is_same_v<P, BarePayload>) ev = static_cast<short>(poll_events);
        if (!look(s.p.fd, ev)) {
          clear_if_tick(io, want.clear, seen);
          if (++eagains >= 2) break;
          continue;
        }
      }
      const int32_t res = attempt_syscall(s, io);
      if (res != -EAGAIN) {
        if constexpr (std::is_same_v<P, DataPayload>) {
          if (res == -EOPNOTSUPP && !s.p.plain &&
              (s.kind == OpKind::kRead || s.kind == OpKind::kWrite)) {
            if (!without_nowait(s, bits, &io)) return;
            continue;
          }
        }
        complete_now(s, res, io, seen);
        return;
      }
      ++stats_.eagain_retries;
      if (io == nullptr) {
        if (!register_on_eagain(s, bits, &io)) return;
        continue;  // a fresh registration: this direction starts not ready
      }
      clear_if_tick(io, want.clear, seen);
      // The bit may still be set (HUP and ERR are never cleared): one more
      // attempt, then wait for the next event rather than spin.
      if (++eagains >= 2) break;
    }
    link(s, io, s.dir);
  }
}

void EpollBackend::to_job(SlotOf<DataPayload>& s, uint64_t bits) {
  detach(s);
  auto job = std::make_unique<FileJob>();
  job->fd = s.p.fd;
  job->buf = std::move(s.p.buf);
  job->begin = s.p.begin;
  job->end = s.p.end;
  job->offset = s.p.offset;
  submit_job(s, bits, std::move(job));
}

template <class P>
void EpollBackend::submit_job(SlotOf<P>& s, uint64_t bits, std::unique_ptr<FileJob> job) {
  job->kind = s.kind;
  job->op_bits = bits;
  job->queue = completions_;
  // The job's own fd (FileJob::dup_fd says why): one more syscall, next to
  // the pool hand-off's wake-up it is noise. AT_FDCWD and the like: no fd.
  errno = 0;
  if (job->fd >= 0) job->dup_fd = ::fcntl(job->fd, F_DUPFD_CLOEXEC, 0);
  FileJob* raw = job.release();
  s.job = raw;
  if ((raw->fd >= 0 && raw->dup_fd < 0) || !pool_->submit(raw)) {
    // No fd or no thread for it: the job never ran, its memory is ours.
    const int err = errno != 0 ? errno : EAGAIN;
    s.job = nullptr;
    absorb_job(s, *raw);
    delete raw;
    complete(s, -err);
    return;
  }
  ++jobs_in_flight_;
  ++stats_.file_jobs;
}

template <class P>
void EpollBackend::absorb_job(SlotOf<P>& s, FileJob& job) {
  if constexpr (std::is_same_v<P, DataPayload>) {
    s.p.buf = std::move(job.buf);
  } else if constexpr (std::is_same_v<P, PathPayload>) {
    s.p.path = std::move(job.path);
    s.p.stx = job.stx;
  }
}

void EpollBackend::drain_completions() {
  FileJob* j = completions_->take_all();
  while (j != nullptr) {
    FileJob* next = j->next;
    POLLUX_DCHECK(jobs_in_flight_ > 0, "a file job came back twice");
    --jobs_in_flight_;
    const bool found = with_slot(j->op_bits, [&](auto& s) {
      s.job = nullptr;
      if (s.state == OpState::kIgnored) {
        // Its future is gone: an fd the open delivered would leak.
        if (j->kind == OpKind::kOpenAt && j->res >= 0) ::close(j->res);
        free_slot(s, j->op_bits);
        return;
      }
      absorb_job(s, *j);
      using P = PayloadOf<std::decay_t<decltype(s)>>;
      if constexpr (std::is_same_v<P, DataPayload>) {
        if (j->res == -ESPIPE && j->offset != kNoOffset) {
          // Not seekable (a FIFO, a socket): io_uring ignores the offset of
          // such a file, so do we. It is a stream op now, tried from its
          // future's poll like any other.
          s.p.fd = j->fd;
          s.p.begin = j->begin;
          s.p.end = j->end;
          s.p.offset = kNoOffset;
          s.state = OpState::kReady;
          s.waker.wake_by_ref();
          return;
        }
      }
      complete(s, j->res);
      std::move(s.waker).wake();
    });
    POLLUX_DCHECK(found, "a file job came back for a freed slot");
    (void)found;
    delete j;
    j = next;
  }
}

void EpollBackend::accept_burst(SlotOf<MultiPayload>& s) {
  const int fd = s.p.fd;
  ScheduledIo* io = sio_of(s);
  if (io == nullptr) {
    io = lookup(fd);
    if (io != nullptr) {
      attach(s, io);
    } else if ((detail::fd_epoch(fd) & 1) == 0 && is_fd_blocking(fd)) {
      int err = 0;
      io = register_fd(fd, Dir::kRead, &err);
      if (io == nullptr) {
        s.p.results.push_back(-err);
        s.state = OpState::kCompleted;
        return;
      }
      attach(s, io);
    }
  }
  const Interest want{epoll::ready_mask(Dir::kRead), epoll::kReadable};
  bool saw_eagain = false;
  for (int accepted = 0; accepted < kAcceptBurst;) {
    // acquire: as in drive().
    const uint32_t seen = io != nullptr ? io->word.load(std::memory_order_acquire)
                                        : epoll::kReadyBits;
    if (io != nullptr && (seen & want.ready) == 0) {
      link(s, io, Dir::kRead);
      return;
    }
    if (io != nullptr && io->blocking && !look(fd, POLLIN)) {
      clear_if_tick(io, want.clear, seen);
      link(s, io, Dir::kRead);
      return;
    }
    const int conn = sys_->accept4(fd, nullptr, nullptr, kSocketFlags);
    if (conn >= 0) {
      s.p.results.push_back(conn);
      ++accepted;
      continue;
    }
    const int err = errno == EWOULDBLOCK ? EAGAIN : errno;
    if (err == EINTR) continue;
    if (err != EAGAIN) {
      // An error ends the multishot, as on io_uring; AcceptStream hands it
      // out and arms a new one.
      s.p.results.push_back(-err);
      s.state = OpState::kCompleted;
      detach(s);
      return;
    }
    ++stats_.eagain_retries;
    if (io == nullptr) {
      int rerr = 0;
      io = register_fd(fd, Dir::kRead, &rerr);
      if (io == nullptr) {
        s.p.results.push_back(-rerr);
        s.state = OpState::kCompleted;
        return;
      }
      attach(s, io);
      continue;
    }
    clear_if_tick(io, want.clear, seen);
    if (saw_eagain) {
      link(s, io, Dir::kRead);
      return;
    }
    saw_eagain = true;
  }
  // 64 accepted and maybe more waiting: the readiness stays, and the next
  // poll_multi (once these are handed out) accepts again.
}

// ---- Entry points ----

OpId EpollBackend::start_nop() {
  BarePayload* p;
  OpId id = allocate<BarePayload>(OpKind::kNop, &p);
  auto& s = static_cast<SlotOf<BarePayload>&>(*id.core);
  complete(s, 0);
  return id;
}

OpId EpollBackend::start_read(int fd, std::vector<char>& buf, size_t begin, size_t end,
                              uint64_t offset) {
  return start_read_or_write(OpKind::kRead, fd, buf, begin, end, offset);
}

OpId EpollBackend::start_write(int fd, std::vector<char>& buf, size_t begin, size_t end,
                               uint64_t offset) {
  return start_read_or_write(OpKind::kWrite, fd, buf, begin, end, offset);
}

OpId EpollBackend::start_read_or_write(OpKind kind, int fd, std::vector<char>& buf, size_t begin,
                                       size_t end, uint64_t offset) {
  DataPayload* p;
  OpId id = allocate<DataPayload>(kind, &p);
  // SAFETY: allocate<DataPayload> made `id` for a Slot<DataPayload>.
  auto& s = static_cast<SlotOf<DataPayload>&>(*id.core);
  if (offset != kNoOffset) {
    // A positional read or write is a file operation: the pool's.
    std::unique_ptr<FileJob> job;
    try {
      job = std::make_unique<FileJob>();
    } catch (const std::bad_alloc&) {
      free_slot(s, id.bits);  // nothing else happened; buf is still the caller's
      throw;
    }
    job->fd = fd;
    job->buf = std::move(buf);
    job->begin = begin;
    job->end = end;
    job->offset = offset;
    submit_job(s, id.bits, std::move(job));
    return id;
  }
  p->fd = fd;
  p->buf = std::move(buf);
  p->begin = begin;
  p->end = end;
  p->offset = offset;
  return guarded_start<DataPayload>(id, &buf, [&](auto& slot) { drive(slot, id.bits); });
}

OpId EpollBackend::start_recv(int fd, std::vector<char>& buf, size_t begin, size_t end,
                              int flags) {
  DataPayload* p;
  OpId id = allocate<DataPayload>(OpKind::kRecv, &p);
  p->fd = fd;
  p->buf = std::move(buf);
  p->begin = begin;
  p->end = end;
  p->flags = flags;
  return guarded_start<DataPayload>(id, &buf, [&](auto& slot) { drive(slot, id.bits); });
}

OpId EpollBackend::start_send(int fd, std::vector<char>& buf, size_t begin, size_t end,
                              int flags) {
  DataPayload* p;
  OpId id = allocate<DataPayload>(OpKind::kSend, &p);
  p->fd = fd;
  p->buf = std::move(buf);
  p->begin = begin;
  p->end = end;
  p->flags = flags | MSG_NOSIGNAL;
  return guarded_start<DataPayload>(id, &buf, [&](auto& slot) { drive(slot, id.bits); });
}

// The try-first of a recv or send, without a slot: only on a registration
// this backend already has (an unseen fd, or a blocking one, takes the slow
// path, which registers it or looks first) whose word says ready. As in
// drive(): the tick noted before the syscall guards the clear on EAGAIN,
// and a short transfer on a stream clears the direction. The syscall runs
// inside the future's poll, which returns its result, so a dropped op still
// has had no effect.
bool EpollBackend::try_recv_send_now(bool send, int fd, std::vector<char>& buf, size_t begin,
                                     size_t end, int flags, int32_t* res) {
  ScheduledIo* io = lookup(fd);
  if (io == nullptr || io->blocking) return false;
  const Dir dir = send ? Dir::kWrite : Dir::kRead;
  // acquire: as in drive().
  const uint32_t seen = io->word.load(std::memory_order_acquire);
  if ((seen & epoll::ready_mask(dir)) == 0) return false;
  const size_t stop = std::min(end, buf.size());
  const size_t from = std::min(begin, stop);
  const size_t len = std::min(stop - from, kMaxTransfer);
  char* data = buf.data() + from;
  long r;
  do {
    r = send ? sys_->send(fd, data, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT)
             : sys_->recv(fd, data, len, flags | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    ++stats_.eagain_retries;
    clear_if_tick(io, epoll::clear_mask(dir), seen);
    return false;
  }
  if (r < 0) {
    *res = -errno;
  } else {
    *res = static_cast<int32_t>(r);
    if (r > 0 && io->stream && static_cast<size_t>(r) < len) {
      clear_if_tick(io, epoll::clear_mask(dir), seen);
      ++stats_.short_clears;
    }
  }
  ++stats_.completions;
  // A slotless op, started and completed here (BackendStats).
  ++stats_.ops_submitted;
  ++stats_.ops_completed;
  return true;
}

OpId EpollBackend::start_sendmsg(int fd, std::vector<char>& buf, size_t offset,
                                 const sockaddr_storage& to, socklen_t to_len, int flags) {
  MsgPayload* p;
  OpId id = allocate<MsgPayload>(OpKind::kSendMsg, &p);
  p->fd = fd;
  p->buf = std::move(buf);
  p->offset = offset;
  p->addr = to;
  p->addr_len = to_len;
  p->flags = flags | MSG_NOSIGNAL;
  return guarded_start<MsgPayload>(id, &buf, [&](auto& slot) { drive(slot, id.bits); });
}

OpId EpollBackend::start_recvmsg(int fd, std::vector<char>& buf, int flags) {
  MsgPayload* p;
  OpId id = allocate<MsgPayload>(OpKind::kRecvMsg, &p);
  p->fd = fd;
  p->buf = std::move(buf);
  p->flags = flags;
  return guarded_start<MsgPayload>(id, &buf, [&](auto& slot) { drive(slot, id.bits); });
}

OpId EpollBackend::start_accept(int listen_fd) {
  AddrPayload* p;
  OpId id = allocate<AddrPayload>(OpKind::kAccept, &p);
  p->fd = listen_fd;
  return guarded_start<AddrPayload>(id, nullptr, [&](auto& slot) { drive(slot, id.bits); });
}

OpId EpollBackend::start_accept_multi(int listen_fd) {
  MultiPayload* p;
  OpId id = allocate<MultiPayload>(OpKind::kAcceptMulti, &p);
  p->fd = listen_fd;
  return id;  // poll_multi accepts, in the stream's own poll
}

OpId EpollBackend::start_connect(int fd, const sockaddr_storage& addr, socklen_t len) {
  AddrPayload* p;
  OpId id = allocate<AddrPayload>(OpKind::kConnect, &p);
  p->fd = fd;
  p->addr = addr;
  p->addr_len = len;
  return guarded_start<AddrPayload>(id, nullptr, [&](auto& slot) { drive(slot, id.bits); });
}

OpId EpollBackend::start_close(int fd) {
  BarePayload* p;
  OpId id = allocate<BarePayload>(OpKind::kClose, &p);
  p->fd = fd;
  // An op of ours still waiting on this fd (one nobody owns) would never
  // hear of it again once it is closed: take it out of the set first and
  // wake those ops (their retry reports EBADF).
  if (fd >= 0 && static_cast<size_t>(fd) < by_fd_.size()) {
    const FdEntry e = by_fd_[static_cast<size_t>(fd)];
    if (e.sio != kNoSio && !sios_.at(e.sio).owned) drop_sio(e.sio, /*remove_from_set=*/true);
  }
  auto& s = static_cast<SlotOf<BarePayload>&>(*id.core);
  complete(s, ::close(fd) == 0 ? 0 : -errno);
  return id;
}

OpId EpollBackend::start_poll(int fd, uint32_t events) {
  BarePayload* p;
  OpId id = allocate<BarePayload>(OpKind::kPoll, &p);
  p->fd = fd;
  p->arg = events;
  return guarded_start<BarePayload>(id, nullptr, [&](auto& slot) { drive(slot, id.bits); });
}

OpId EpollBackend::start_timeout(absl::Duration d) {
  // Room for the heap entry first: the push below then cannot throw.
  timers_.reserve(timers_.size() + 1);
  TimeoutPayload* p;
  OpId id = allocate<TimeoutPayload>(OpKind::kTimeout, &p);
  auto& s = static_cast<SlotOf<TimeoutPayload>&>(*id.core);
  if (d <= absl::ZeroDuration()) {
    complete(s, -ETIME);  // io_uring's "expired"
    return id;
  }
  const int64_t span = d == absl::InfiniteDuration() ? INT64_MAX / 2 : absl::ToInt64Nanoseconds(d);
  p->deadline_ns = now_ns() + std::min<int64_t>(span, INT64_MAX / 2);
  timers_.push_back(TimerEntry{p->deadline_ns, id.bits});
  std::push_heap(timers_.begin(), timers_.end(),
                 [](const TimerEntry& a, const TimerEntry& b) { return a.deadline_ns > b.deadline_ns; });
  return id;
}

OpId EpollBackend::start_openat(int dirfd, std::string& path, int flags, mode_t mode) {
  // The job before the slot: a start that throws has taken nothing.
  auto job = std::make_unique<FileJob>();
  PathPayload* p;
  OpId id = allocate<PathPayload>(OpKind::kOpenAt, &p);
  job->fd = dirfd;
  job->path = std::move(path);
  job->flags = flags;
  job->mode = mode;
  // SAFETY: allocate<PathPayload> made `id` for a Slot<PathPayload>.
  submit_job(static_cast<SlotOf<PathPayload>&>(*id.core), id.bits, std::move(job));
  return id;
}

OpId EpollBackend::start_fsync(int fd, bool datasync) {
  // The job before the slot: a start that throws has taken nothing.
  auto job = std::make_unique<FileJob>();
  BarePayload* p;
  OpId id = allocate<BarePayload>(OpKind::kFsync, &p);
  p->fd = fd;
  job->fd = fd;
  job->datasync = datasync;
  // SAFETY: allocate<BarePayload> made `id` for a Slot<BarePayload>.
  submit_job(static_cast<SlotOf<BarePayload>&>(*id.core), id.bits, std::move(job));
  return id;
}

OpId EpollBackend::start_statx(int dirfd, std::string& path, int flags, unsigned mask) {
  // The job before the slot: a start that throws has taken nothing.
  auto job = std::make_unique<FileJob>();
  PathPayload* p;
  OpId id = allocate<PathPayload>(OpKind::kStatx, &p);
  job->fd = dirfd;
  job->path = std::move(path);
  job->flags = flags;
  job->mask = mask;
  // SAFETY: allocate<PathPayload> made `id` for a Slot<PathPayload>.
  submit_job(static_cast<SlotOf<PathPayload>&>(*id.core), id.bits, std::move(job));
  return id;
}

// ---- Driving and taking results ----

void EpollBackend::resume(OpId id) {
  with_id(id, [&](auto& s) {
    if (s.state != OpState::kReady) return;
    s.state = OpState::kInFlight;
    using P = PayloadOf<std::decay_t<decltype(s)>>;
    if constexpr (std::is_same_v<P, BarePayload>) {
      if (s.kind == OpKind::kReadyWait) {
        ready_wait_drive(s);
        return;
      }
    }
    drive(s, id.bits);
  });
}

// ---- AsyncFd ----

OpId EpollBackend::start_ready_register(int fd) {
  BarePayload* p;
  OpId id = allocate<BarePayload>(OpKind::kReadyRegister, &p);
  p->fd = fd;
  // SAFETY: allocate<BarePayload> made `id` for a Slot<BarePayload>.
  auto& s = static_cast<SlotOf<BarePayload>&>(*id.core);
  s.dir = Dir::kAny;
  ScheduledIo* io = lookup(fd);
  if (io == nullptr) {
    int err = 0;
    // Both directions start not ready: EPOLL_CTL_ADD reports the fd's
    // current readiness as its first event.
    io = register_fd(fd, Dir::kAny, &err);
    if (io == nullptr) {
      s.res = -err;
      s.state = OpState::kCompleted;  // only a failure completes it
      return id;
    }
  }
  attach(s, io);
  return id;
}

EpollBackend::SlotOf<BarePayload>* EpollBackend::ready_registration(uint64_t bits) {
  if (epoll::slab_id_of(bits) != SlabId::kBare) return nullptr;
  auto* reg = bare_.find(epoll::index_of(bits), epoll::generation_of(bits));
  return reg != nullptr && reg->kind == OpKind::kReadyRegister ? reg : nullptr;
}

OpId EpollBackend::start_ready_wait(OpId reg, uint32_t interest) {
  BarePayload* p;
  OpId id = allocate<BarePayload>(OpKind::kReadyWait, &p);
  p->ref = reg.bits;
  p->arg = interest;
  // SAFETY: allocate<BarePayload> made `id` for a Slot<BarePayload>.
  auto& s = static_cast<SlotOf<BarePayload>&>(*id.core);
  ready_wait_drive(s);
  return id;
}

void EpollBackend::ready_wait_drive(SlotOf<BarePayload>& s) {
  const uint32_t interest = s.p.arg;
  s.dir = interest == ready::kReadable   ? Dir::kRead
          : interest == ready::kWritable ? Dir::kWrite
                                         : Dir::kAny;
  SlotOf<BarePayload>* reg = ready_registration(s.p.ref);
  ScheduledIo* io = reg != nullptr && reg->state != OpState::kCompleted ? sio_of(*reg) : nullptr;
  if (io == nullptr) {
    // A registration that failed says why; one that is gone (its AsyncFd
    // was dropped first) is a closed fd.
    complete_now(s, reg != nullptr && reg->state == OpState::kCompleted ? reg->res : -EBADF,
                 nullptr, 0);
    return;
  }
  if (sio_of(s) == nullptr) attach(s, io);
  // acquire: pairs with the event's release store of the word.
  const uint32_t word = io->word.load(std::memory_order_acquire);
  if ((word & ready::wakes(interest)) != 0) {
    const int32_t res = static_cast<int32_t>((word & ready::kAll) |
                                             (epoll::tick_of(word) << ready::kReadyTickShift));
    complete_now(s, res, nullptr, 0);
    return;
  }
  link(s, io, s.dir);
}

void EpollBackend::clear_ready(OpId reg, uint32_t interest, uint32_t tick) {
  SlotOf<BarePayload>* r = ready_registration(reg.bits);
  if (r == nullptr) return;
  ScheduledIo* io = sio_of(*r);
  if (io == nullptr) return;
  uint32_t mask = 0;
  if (interest & ready::kReadable) mask |= epoll::kReadable;
  if (interest & ready::kWritable) mask |= epoll::kWritable;
  clear_if_tick(io, mask, tick << epoll::kTickShift);
}

MultiNext EpollBackend::poll_multi(OpId id, const Waker& waker) {
  POLLUX_CHECK(id.valid() && epoll::slab_id_of(id.bits) == SlabId::kMulti,
               "EpollBackend::poll_multi on an id that is not a multishot op");
  // SAFETY: as in with_id.
  auto& s = static_cast<SlotOf<MultiPayload>&>(*id.core);
  if (s.p.empty() && s.state != OpState::kCompleted && !s.linked) accept_burst(s);
  if (!s.p.empty()) return MultiNext{MultiNext::Kind::kItem, s.p.pop_front()};
  if (s.state == OpState::kCompleted) return MultiNext{MultiNext::Kind::kEnded, 0};
  if (!s.waker.will_wake(waker)) s.waker = waker;
  return MultiNext{MultiNext::Kind::kPending, 0};
}

size_t EpollBackend::queued(OpId id) const {
  if (!id.valid() || epoll::slab_id_of(id.bits) != SlabId::kMulti) return 0;
  // SAFETY: as in with_id.
  return static_cast<const SlotOf<MultiPayload>*>(id.core)->p.size();
}

namespace {
template <class S>
S& completed_slot(OpId id, SlabId expected) {
  POLLUX_CHECK(id.valid() && epoll::slab_id_of(id.bits) == expected &&
                   id.core->state == OpState::kCompleted,
               "taking the result of an operation that is not complete");
  // SAFETY: as in with_id: a slot of the slab `expected` names.
  return static_cast<S&>(*id.core);
}
}  // namespace

int32_t EpollBackend::take_result(OpId id) {
  POLLUX_CHECK(id.valid() && id.core->state == OpState::kCompleted,
               "taking the result of an operation that is not complete");
  int32_t res = 0;
  with_id(id, [&](auto& s) {
    res = s.res;
    free_slot(s, id.bits);
  });
  ++stats_.ops_completed;
  return res;
}

int32_t EpollBackend::take_data(OpId id, std::vector<char>& buf) {
  auto& s = completed_slot<SlotOf<DataPayload>>(id, SlabId::kData);
  const int32_t res = s.res;
  buf = std::move(s.p.buf);
  free_slot(s, id.bits);
  ++stats_.ops_completed;
  return res;
}

MsgCompletion EpollBackend::take_msg(OpId id) {
  auto& s = completed_slot<SlotOf<MsgPayload>>(id, SlabId::kMsg);
  MsgCompletion c{s.res, std::move(s.p.buf), s.p.addr, s.p.addr_len, s.p.msg_flags};
  free_slot(s, id.bits);
  ++stats_.ops_completed;
  return c;
}

AcceptCompletion EpollBackend::take_accept(OpId id) {
  auto& s = completed_slot<SlotOf<AddrPayload>>(id, SlabId::kAddr);
  AcceptCompletion c{s.res, s.p.addr, s.p.addr_len};
  free_slot(s, id.bits);
  ++stats_.ops_completed;
  return c;
}

PathCompletion EpollBackend::take_path(OpId id) {
  auto& s = completed_slot<SlotOf<PathPayload>>(id, SlabId::kPath);
  PathCompletion c{s.res, std::move(s.p.path), s.p.stx};
  free_slot(s, id.bits);
  ++stats_.ops_completed;
  return c;
}

void EpollBackend::cancel(OpId id) noexcept {
  POLLUX_DCHECK(id.valid(), "EpollBackend::cancel of an invalid id");
  with_id(id, [&](auto& s) {
    using P = PayloadOf<std::decay_t<decltype(s)>>;
    // As io_uring's: a multishot op that has ended is done with, not cancelled.
    if (s.state == OpState::kCompleted && op_traits(s.kind).multishot) {
      ++stats_.ops_completed;
    } else if (s.state != OpState::kIgnored) {
      ++stats_.ops_cancelled;
    }
    if constexpr (std::is_same_v<P, MultiPayload>) {
      // Accepted and never handed out: nobody owns them.
      while (!s.p.empty()) {
        const int32_t fd = s.p.pop_front();
        if (fd >= 0) ::close(fd);
      }
    }
    if (s.job != nullptr) {
      // On the pool: it may still run (its memory is its own). The slot
      // waits for it, to close an fd a dropped open still delivers.
      s.state = OpState::kIgnored;
      s.waker.reset();
      // release: pairs with FileJob::run's acquire load.
      s.job->cancelled.store(true, std::memory_order_release);
      return;
    }
    if (s.state == OpState::kCompleted && op_traits(s.kind).returns_fd &&
        !op_traits(s.kind).multishot && s.res >= 0) {
      ::close(s.res);  // a result never taken: its fd would leak
    }
    // Waiting (or woken) ops have had no effect: nothing to undo.
    free_slot(s, id.bits);
  });
}

// ---- Timers ----

int64_t EpollBackend::next_timer_ns() const noexcept {
  return timers_.empty() ? -1 : timers_.front().deadline_ns;
}

void EpollBackend::fire_timers() {
  if (timers_.empty()) return;
  auto later = [](const TimerEntry& a, const TimerEntry& b) { return a.deadline_ns > b.deadline_ns; };
  const int64_t now = now_ns();
  while (!timers_.empty()) {
    const TimerEntry top = timers_.front();
    bool live = false;
    with_slot(top.bits, [&](auto& s) { live = s.state == OpState::kInFlight; });
    if (live && top.deadline_ns > now) break;
    std::pop_heap(timers_.begin(), timers_.end(), later);
    timers_.pop_back();
    if (!live) continue;  // cancelled: its slot is gone (or reused)
    with_slot(top.bits, [&](auto& s) {
      complete(s, -ETIME);
      std::move(s.waker).wake();
    });
  }
  // Cancelled timers deep in the heap: rebuild when they dominate it.
  if (timers_.size() > 64 && timers_.size() > 4 * timeout_.live()) {
    std::vector<TimerEntry> kept;
    for (const TimerEntry& t : timers_) {
      bool live = false;
      with_slot(t.bits, [&](auto& s) { live = s.state == OpState::kInFlight; });
      if (live) kept.push_back(t);
    }
    timers_.swap(kept);
    std::make_heap(timers_.begin(), timers_.end(), later);
  }
}

// ---- Ticks ----

void EpollBackend::note_wait_error(int err) {
  if (err == EINTR) return;  // a signal: transient, not counted
  ++stats_.enter_errors;
  if (++consecutive_wait_errors_ >= 3 && fatal_.ok()) {
    fatal_ = errno_status(err, "epoll_wait failed 3 times in a row; the epoll backend cannot "
                               "make progress");
  }
}

int EpollBackend::wait_and_dispatch(int timeout_ms) {
  ++stats_.kernel_entries;
  const int n = sys_->epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  if (n < 0) {
    note_wait_error(errno);
    return 0;
  }
  consecutive_wait_errors_ = 0;
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = events_[static_cast<size_t>(i)];
    if (ev.data.u64 == kUnparkTag) {
      unpark_seen_ = true;
      continue;
    }
    ++stats_.events;
    ScheduledIo* io = sios_.find(static_cast<uint32_t>(ev.data.u64),
                                 static_cast<uint32_t>(ev.data.u64 >> 32));
    if (io == nullptr) {
      ++stats_.stale_events;  // for a registration freed since
      continue;
    }
    const uint32_t bits = bits_of(ev.events);
    // OR the bits in and bump the tick, even if they were set already: an
    // attempt that noted the old tick must not clear this edge.
    // relaxed: a first guess; the compare-exchange decides.
    uint32_t cur = io->word.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t next = ((cur & ~epoll::kReadyBits & ~(epoll::kTickOne - 1)) + epoll::kTickOne) |
                            ((cur | bits) & epoll::kReadyBits);
      // release: pairs with the attempts' acquire loads of the word.
      if (io->word.compare_exchange_weak(cur, next, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        break;
      }
    }
    if (bits & epoll::ready_mask(Dir::kRead)) wake_list(io->waiters[static_cast<int>(Dir::kRead)]);
    if (bits & epoll::ready_mask(Dir::kWrite)) wake_list(io->waiters[static_cast<int>(Dir::kWrite)]);
    wake_list(io->waiters[static_cast<int>(Dir::kAny)]);
  }
  return n;
}

bool EpollBackend::housekeeping() {
  const uint64_t before = stats_.completions;
  apply_releases();
  drain_completions();
  fire_timers();
  return stats_.completions != before;
}

void EpollBackend::poll_now() {
  housekeeping();
  wait_and_dispatch(0);
  housekeeping();
}

bool EpollBackend::park(std::optional<absl::Duration> timeout) {
  if (housekeeping()) return true;  // something completed: its task runs first
  if (timeout && *timeout <= absl::ZeroDuration()) {
    // Look, never block (a paused clock's "anything left?").
    const bool notified = unparker_->take_notified();
    unpark_seen_ = false;
    const int n = wait_and_dispatch(0);
    const bool more = housekeeping();
    return notified || n > 0 || more;
  }
  if (!unparker_->try_park()) {
    poll_now();
    return true;
  }
  int64_t wait_ns = -1;  // no limit
  if (timeout && *timeout != absl::InfiniteDuration()) wait_ns = absl::ToInt64Nanoseconds(*timeout);
  if (const int64_t next = next_timer_ns(); next >= 0) {
    const int64_t until = std::max<int64_t>(0, next - now_ns());
    wait_ns = wait_ns < 0 ? until : std::min(wait_ns, until);
  }
  // epoll_wait counts milliseconds: round up, so a timer is never woken for
  // early (which would spin until its deadline).
  int timeout_ms = -1;
  if (wait_ns >= 0) timeout_ms = static_cast<int>(std::min<int64_t>((wait_ns + 999'999) / 1'000'000, INT32_MAX));
  const int n = wait_and_dispatch(timeout_ms);
  unparker_->unparked();
  const bool more = housekeeping();
  return n > 0 || more;
}

// ---- Shutdown ----

void EpollBackend::shutdown(absl::Duration drain_timeout) {
  if (shut_down_) return;
  shut_down_ = true;
  // Every op still here: waiting ones have had no effect; results nobody
  // took are closed if they are fds; file jobs are told to skip their
  // syscall if they have not started.
  for_each_live_slot([&](auto& s, uint64_t bits) {
    using P = PayloadOf<std::decay_t<decltype(s)>>;
    if (s.job != nullptr) {
      s.state = OpState::kIgnored;
      s.waker.reset();
      // release: pairs with FileJob::run's acquire load.
      s.job->cancelled.store(true, std::memory_order_release);
      return;
    }
    if constexpr (std::is_same_v<P, MultiPayload>) {
      while (!s.p.empty()) {
        const int32_t fd = s.p.pop_front();
        if (fd >= 0) ::close(fd);
      }
    } else {
      if (s.state == OpState::kCompleted && op_traits(s.kind).returns_fd && s.res >= 0) {
        ::close(s.res);
      }
    }
    free_slot(s, bits);
  });
  const int64_t give_up = now_ns() + absl::ToInt64Nanoseconds(drain_timeout);
  const int64_t start = now_ns();
  for (;;) {
    drain_completions();
    if (jobs_in_flight_ == 0) break;
    const int64_t left = give_up - now_ns();
    if (left <= 0) break;
    // The completion queue unparks us through the eventfd in the set.
    (void)unparker_->try_park();
    ::epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()),
                 static_cast<int>(std::min<int64_t>((left + 999'999) / 1'000'000, 10)));
    unparker_->unparked();
  }
  if (jobs_in_flight_ > 0) {
    completions_->close();
    drain_completions();  // the ones that made it in before the close
  }
  if (jobs_in_flight_ > 0) {
    // Still running on the pool: each keeps its own memory for good (the
    // closed queue never frees it); their slots hold nothing of theirs.
    const size_t stuck = jobs_in_flight_;
    stats_.leaked_ops += stuck;
    for_each_live_slot([&](auto& s, uint64_t bits) {
      s.job = nullptr;
      free_slot(s, bits);
    });
    std::fprintf(stderr,
                 "pollux: %zu epoll file operation(s) were still running on the blocking pool "
                 "when shutdown gave up after %s; their memory is kept for the rest of the "
                 "process (never freed under them)\n",
                 stuck, absl::FormatDuration(absl::Nanoseconds(now_ns() - start)).c_str());
    jobs_in_flight_ = 0;
  }
  // Registrations die with the set; a release on another thread from now
  // on finds no set to touch.
  link_->detach();
  for (uint32_t i = 0; i < sios_.capacity(); ++i) {
    if (sios_.at(i).live) drop_sio(i, /*remove_from_set=*/false);
  }
  by_fd_.clear();
  timers_.clear();
}

}  // namespace pollux::reactor
