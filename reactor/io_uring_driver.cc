#include "reactor/io_uring_driver.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "executor/context.h"
#include "executor/internal/park_state.h"
#include "future/assert.h"
#include "reactor/errno_status.h"

namespace pollux::reactor {

namespace {
// user_data tags outside the slot encoding (slot generations start at 1 and
// never reach these values in practice: 2^32 reuses of one slot).
constexpr uint64_t kCancelTag = ~uint64_t{0};
constexpr uint64_t kUnparkTag = ~uint64_t{0} - 1;

__kernel_timespec to_timespec(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  __kernel_timespec ts;
  ts.tv_sec = absl::ToInt64Seconds(d);
  ts.tv_nsec = absl::ToInt64Nanoseconds(d - absl::Seconds(ts.tv_sec));
  return ts;
}
}  // namespace

UringSyscalls& UringSyscalls::real() {
  static UringSyscalls instance;
  return instance;
}

// ---- Unparker ----

class IoUringDriver::EventFdUnparker final : public Unparker {
 public:
  explicit EventFdUnparker(int efd) : efd_(efd) {}
  ~EventFdUnparker() override { ::close(efd_); }

  void unpark() noexcept override {
    if (!state_.unpark()) return;  // the driver is running: it sees the work next tick
    uint64_t one = 1;
    ssize_t n = ::write(efd_, &one, sizeof(one));
    (void)n;  // EAGAIN only if the counter is saturated: the driver wakes anyway
    // relaxed: a statistic read by tests after joining.
    writes_.fetch_add(1, std::memory_order_relaxed);
  }
  // EMPTY -> PARKED; false (and the notification consumed) if one was pending.
  bool try_park() noexcept { return state_.try_park(); }
  // After the wait; an eventfd count written meanwhile is drained by the next read.
  void unparked() noexcept { state_.unparked(); }
  int fd() const noexcept { return efd_; }
  uint64_t writes() const noexcept { return writes_.load(std::memory_order_relaxed); }

 private:
  detail::ParkState state_;
  std::atomic<uint64_t> writes_{0};
  int efd_;
};

// ---- Setup ----

absl::StatusOr<std::unique_ptr<IoUringDriver>> IoUringDriver::create(IoUringOptions options) {
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
  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    int err = errno;
    io_uring_queue_exit(&ring);
    return errno_status(err, "eventfd for the driver's unparker");
  }
  auto unparker = std::make_shared<EventFdUnparker>(efd);
  return std::unique_ptr<IoUringDriver>(
      new IoUringDriver(ring, used, options, std::move(unparker)));
}

IoUringDriver::IoUringDriver(io_uring ring, unsigned flags, IoUringOptions options,
                             std::shared_ptr<EventFdUnparker> unparker)
    : ring_(ring),
      setup_flags_(flags),
      options_(options),
      sys_(options.syscalls != nullptr ? options.syscalls : &UringSyscalls::real()),
      unparker_(std::move(unparker)) {}

IoUringDriver::~IoUringDriver() {
  if (enabled_) drain();
  io_uring_queue_exit(&ring_);
}

absl::Status IoUringDriver::enable_on_current_thread() {
  if (enabled_) return absl::OkStatus();
  // liburing 2.3's shared library does not export io_uring_enable_rings;
  // the register call is what it does.
  int ret = io_uring_register(ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  if (ret < 0) return errno_status(-ret, "enabling the io_uring on its driver thread");
  enabled_ = true;
  return absl::OkStatus();
}

std::shared_ptr<Unparker> IoUringDriver::unparker() { return unparker_; }

DriverStats IoUringDriver::stats() const noexcept {
  DriverStats s = stats_;
  s.unpark_writes = unparker_->writes();
  return s;
}

// ---- Submission ----

io_uring_sqe* IoUringDriver::get_sqe() {
  POLLUX_DCHECK(enabled_, "io_uring driver used before enable_on_current_thread()");
  io_uring_sqe* sqe = sys_->get_sqe(&ring_);
  if (sqe != nullptr) return sqe;
  // SQ full: flush it (one syscall) and try again.
  ++stats_.sq_full_flushes;
  ++stats_.enters;
  int ret = sys_->submit(&ring_);
  if (ret < 0) ++stats_.submit_errors;
  return sys_->get_sqe(&ring_);
}

void IoUringDriver::cancel_op(uint32_t index) {
  OpSlot& slot = ops_.at(index);
  POLLUX_DCHECK(slot.state == SlotState::kInFlight, "cancel_op on a slot not in flight");
  slot.state = SlotState::kIgnored;
  slot.waker.reset();
  const uint64_t ud = OpTable::user_data(index, slot.generation);
  if (neutralize_unsubmitted(slot, ud)) return;
  // No SQE right now (the kernel refuses submissions): without a cancel a
  // read that never gets data would hold its slot (and the kernel its
  // buffer) forever, so retry at the next tick.
  if (!queue_cancel(ud)) unsent_cancels_.push_back(ud);
}

// Why an op dropped before its SQE was submitted is turned into a NOP
// rather than cancelled: the caller may close the op's fd as soon as the op
// is dropped (a failed connect's socket, the last half of a split stream),
// and a socket() made later in the same tick can get the same fd number.
// The kernel only looks the fd up when the SQE is submitted at the end of
// the tick, so the stale SQE would run on the new socket: a dropped send
// would write into an unrelated connection, a dropped connect would connect
// it. A NOP touches no fd; its CQE frees the slot like any final CQE.
bool IoUringDriver::neutralize_unsubmitted(OpSlot& slot, uint64_t user_data) {
  io_uring_sqe* sqe = slot.sqe;
  if (sqe == nullptr) return false;
  // SQEs from sqe_head up to sqe_tail are prepared but not handed to the
  // kernel yet (liburing moves sqe_head to sqe_tail when it flushes).
  const unsigned mask = ring_.sq.ring_mask;
  const unsigned pos = static_cast<unsigned>(sqe - ring_.sq.sqes);
  const unsigned unsubmitted = ring_.sq.sqe_tail - ring_.sq.sqe_head;
  if (((pos - ring_.sq.sqe_head) & mask) >= unsubmitted) return false;
  // The position may have been reused by a later op after ours was sent.
  if (sqe->user_data != user_data) return false;
  io_uring_prep_nop(sqe);  // clears flags, fd and addresses
  io_uring_sqe_set_data64(sqe, user_data);
  // The NOP's result (0) is not an fd: closing it would close fd 0. And no
  // accept ran, so there is nothing to re-arm (rearm_accepts_on).
  slot.returns_fd = false;
  slot.accept_fd = -1;
  return true;
}

bool IoUringDriver::queue_cancel(uint64_t user_data) {
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return false;
  io_uring_prep_cancel64(sqe, user_data, 0);
  io_uring_sqe_set_data64(sqe, kCancelTag);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  return true;
}

void IoUringDriver::prep_accept(io_uring_sqe* sqe, uint32_t index, int listen_fd) {
  OpSlot& slot = ops_.at(index);
  slot.accept_fd = listen_fd;
  slot.returns_fd = true;
  slot.sqe = sqe;
  if (slot.multishot) {
    // No address: one buffer cannot hold the peer of every CQE.
    io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    slot.storage.addrlen = sizeof(slot.storage.addr);
    // SAFETY: sockaddr_storage may be viewed as a sockaddr.
    io_uring_prep_accept(sqe, listen_fd, reinterpret_cast<sockaddr*>(&slot.storage.addr),
                         &slot.storage.addrlen, SOCK_CLOEXEC);
  }
  io_uring_sqe_set_data64(sqe, OpTable::user_data(index, slot.generation));
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
void IoUringDriver::rearm_accepts_on(int listen_fd) {
  for (uint32_t i = 0; i < ops_.capacity(); ++i) {
    OpSlot& s = ops_.at(i);
    if (s.state != SlotState::kInFlight || s.accept_fd != listen_fd || s.rearming) continue;
    s.rearming = true;
    const uint64_t ud = OpTable::user_data(i, s.generation);
    if (!queue_cancel(ud)) unsent_cancels_.push_back(ud);
  }
}

void IoUringDriver::retry_cancels() {
  if (unsent_cancels_.empty()) return;
  std::vector<uint64_t> pending = std::move(unsent_cancels_);
  unsent_cancels_.clear();
  for (uint64_t ud : pending) {
    uint32_t index;
    OpSlot* slot = ops_.lookup(ud, &index);
    // Completed (and freed) meanwhile: nothing left to cancel.
    if (slot == nullptr) continue;
    if (slot->state != SlotState::kIgnored && !slot->rearming) continue;
    if (!queue_cancel(ud)) unsent_cancels_.push_back(ud);
  }
}

void IoUringDriver::arm_unpark_read() {
  if (unpark_read_armed_) return;
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) return;  // parks with a bounded wait below instead
  io_uring_prep_read(sqe, unparker_->fd(), &unpark_buf_, sizeof(unpark_buf_), 0);
  io_uring_sqe_set_data64(sqe, kUnparkTag);
  unpark_read_armed_ = true;
}

// ---- Ticks ----

// Overflow is counted where the kernel is entered, before the entry flushes
// it: a tick enters at most once, so one overflow is counted once.
void IoUringDriver::enter_and_wait(__kernel_timespec* timeout) {
  io_uring_cqe* cqe = nullptr;
  if (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) ++stats_.cq_overflows;
  ++stats_.enters;
  int ret = sys_->submit_and_wait_timeout(&ring_, &cqe, 1, timeout);
  if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN) ++stats_.submit_errors;
}

void IoUringDriver::enter_nonblocking() {
  unsigned sq_flags = IO_URING_READ_ONCE(*ring_.sq.kflags);
  if (sq_flags & IORING_SQ_CQ_OVERFLOW) ++stats_.cq_overflows;
  if (!has_pending_sqes() && !(sq_flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) return;
  ++stats_.enters;
  int ret = sys_->submit_and_get_events(&ring_);
  if (ret < 0) ++stats_.submit_errors;
}

void IoUringDriver::poll_nonblocking() {
  retry_cancels();
  enter_nonblocking();
  reap();
  fire_timers();
}

void IoUringDriver::park() {
  retry_cancels();
  // Timers already due (or a paused clock with work to jump to) need no wait.
  timers_.update_now();
  if (timers_.process() > 0) {
    poll_nonblocking();
    return;
  }
  if (timers_.is_paused()) {
    // Paused clock: poll the backend first; jump to the next timer only when
    // no I/O completed, so a timeout around real I/O does not fire early.
    size_t before = stats_.completions;
    __kernel_timespec zero{0, 0};
    enter_and_wait(&zero);
    reap();
    if (stats_.completions == before && !has_pending_sqes()) {
      if (timers_.auto_advance()) timers_.process();
    }
    return;
  }
  arm_unpark_read();
  if (!unparker_->try_park()) {
    poll_nonblocking();
    return;
  }
  std::optional<Instant> deadline = timers_.next_deadline();
  __kernel_timespec ts{};
  __kernel_timespec* tsp = nullptr;
  if (deadline) {
    ts = to_timespec(*deadline - timers_.now());
    tsp = &ts;
  } else if (!unpark_read_armed_) {
    ts = to_timespec(absl::Milliseconds(1));  // no eventfd read: poll for unparks
    tsp = &ts;
  }
  enter_and_wait(tsp);
  unparker_->unparked();
  reap();
  fire_timers();
}

void IoUringDriver::fire_timers() {
  timers_.update_now();
  timers_.process();
}

void IoUringDriver::reap() {
  for (;;) {
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      sys_->on_cqe(cqe);
      handle_cqe(*cqe);
      ++seen;
    }
    if (seen == 0) return;
    io_uring_cq_advance(&ring_, seen);
  }
}

void IoUringDriver::handle_cqe(const io_uring_cqe& cqe) {
  uint64_t ud = cqe.user_data;
  if (ud == kCancelTag) return;  // only failed cancels arrive (-ENOENT/-EALREADY): harmless
  if (ud == kUnparkTag) {
    unpark_read_armed_ = false;
    return;
  }
  uint32_t index;
  OpSlot* slot = ops_.lookup(ud, &index);
  if (slot == nullptr) {
    ++stats_.stale_cqes;
    return;
  }
  ++stats_.completions;
  const bool final = !(cqe.flags & IORING_CQE_F_MORE);
  if (slot->state == SlotState::kIgnored) {
    // Nobody wants this result. An fd it delivered would leak: close it.
    if (slot->returns_fd && cqe.res >= 0) ::close(cqe.res);
    if (final) {
      const int listen_fd = slot->accept_fd;
      ops_.release(index);
      if (listen_fd >= 0) rearm_accepts_on(listen_fd);
    }
    return;
  }
  if (slot->rearming && final) {
    slot->rearming = false;
    if (cqe.res == -ECANCELED) {
      // Our own cancel (rearm_accepts_on) ended it: submit it again, keeping
      // its slot, generation and waker; its future never sees the difference.
      io_uring_sqe* sqe = get_sqe();
      if (sqe != nullptr) {
        prep_accept(sqe, index, slot->accept_fd);
        return;
      }
      // No SQE: deliver the cancellation as the accept's error instead of
      // stalling; ECANCELED is documented as retryable at accept().
    }
  }
  if (slot->multishot) {
    slot->more.push_back({cqe.res, cqe.flags});
    if (final) slot->state = SlotState::kCompleted;
    slot->waker.wake_by_ref();
    return;
  }
  slot->result = {cqe.res, cqe.flags};
  slot->state = SlotState::kCompleted;
  std::move(slot->waker).wake();
}

void IoUringDriver::drain() {
  // Cancel everything still in flight and wait until the kernel has returned
  // every operation's memory (ignored slots are freed by their final CQE).
  for (uint32_t i = 0; i < ops_.capacity(); ++i) {
    OpSlot& s = ops_.at(i);
    if (s.state == SlotState::kInFlight) cancel_op(i);
  }
  if (unpark_read_armed_) {
    // Complete the armed eventfd read by giving it something to read: unlike
    // a cancel, this needs no SQE.
    uint64_t one = 1;
    ssize_t n = ::write(unparker_->fd(), &one, sizeof(one));
    (void)n;  // EAGAIN only if the counter is saturated: then the read completes anyway
  }
  for (int rounds = 0; rounds < 1000; ++rounds) {
    retry_cancels();  // cancels that found no SQE earlier (or just now)
    reap();
    bool busy = unpark_read_armed_;
    for (uint32_t i = 0; i < ops_.capacity() && !busy; ++i) {
      busy = ops_.at(i).state == SlotState::kIgnored || ops_.at(i).state == SlotState::kInFlight;
    }
    if (!busy && !has_pending_sqes()) break;
    __kernel_timespec ts = to_timespec(absl::Milliseconds(10));
    enter_and_wait(&ts);
  }
  // Completed-but-unclaimed results whose futures are gone cannot exist here
  // (futures are dropped before the driver); free whatever remains.
  for (uint32_t i = 0; i < ops_.capacity(); ++i) {
    OpSlot& s = ops_.at(i);
    if (s.state == SlotState::kFree) continue;
    if (s.state == SlotState::kCompleted && s.returns_fd && !s.multishot && s.result.res >= 0) {
      ::close(s.result.res);
    }
    for (const CqeResult& r : s.more) {
      if (s.returns_fd && r.res >= 0) ::close(r.res);
    }
    ops_.release(i);
  }
}

// ---- Current driver ----

IoUringDriver* current_driver() noexcept {
  // SAFETY: IoUringDriver is the only Backend so far.
  return static_cast<IoUringDriver*>(RuntimeContext::current().backend);
}

}  // namespace pollux::reactor
