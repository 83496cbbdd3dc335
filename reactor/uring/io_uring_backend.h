// IoUringBackend: the Backend (reactor/backend.h) on one io_uring: its slot
// slabs, the eventfd that lets other threads wake it, and its kernel entry.
// This folder, with bench/'s hand-written baselines, is the only place that
// includes <liburing.h> (a test greps for it).
//
// Setup (create()): flags are tried in order SINGLE_ISSUER|DEFER_TASKRUN|
// TASKRUN_FLAG, SINGLE_ISSUER|COOP_TASKRUN|TASKRUN_FLAG, COOP_TASKRUN, none;
// SQ 256, CQ 4096 (IORING_SETUP_CQSIZE). The ring is created disabled
// (IORING_SETUP_R_DISABLED) so setup errors surface in create() on any
// thread, and enable_on_current_thread() binds it to its thread (a
// SINGLE_ISSUER ring belongs to the thread that enables it).
//
// A tick (driven by the executor): tasks start operations (SQEs prepared in
// their slots); then the backend makes at most one io_uring_enter. park():
// io_uring_submit_and_wait_timeout for one CQE or the timeout (-ETIME is
// normal). poll_now(): io_uring_submit_and_get_events only if SQEs are
// pending or the SQ flags show IORING_SQ_TASKRUN / IORING_SQ_CQ_OVERFLOW,
// else no syscall. Then it reaps the whole CQ. A full SQ is flushed with
// io_uring_submit (counted).
//
// Sockets (DESIGN §5): sockets use the RECV/SEND opcode family, which handles
// O_NONBLOCK sockets itself; accepted sockets are SOCK_NONBLOCK|SOCK_CLOEXEC.
// A -EAGAIN result (an op punted to a worker on an O_NONBLOCK fd) is retried
// after readiness, never surfaced: recv/send/sendmsg/recvmsg with
// IORING_RECVSEND_POLL_FIRST, anything else after a poll for readiness.
// Counted in stats().eagain_retries.
//
// Unpark: ParkState (executor/internal/park_state.h). park() arms a read of
// its eventfd (a blocking eventfd: an O_NONBLOCK one read with IORING_OP_READ
// returns -EAGAIN on some kernels and would spin every park), moves
// EMPTY->PARKED (a pending NOTIFIED is consumed and park returns at once),
// then enters. unpark() exchanges NOTIFIED in and writes the eventfd only
// when it saw PARKED.
//
// CQ overflow: rings are used with IORING_FEAT_NODROP; an overflow is seen
// in the SQ flags, counted, and flushed by the next enter. Never lost.
//
// Errors that repeat end the backend: a kernel entry that fails with
// anything but EINTR, EAGAIN, EBUSY or ETIME three times in a row sets
// status(), and the executor stops with it instead of spinning.
//
// Multishot recv (DESIGN §5): one provided-buffer ring per backend (group
// kRecvBufGroup; IoUringOptions::recv_buffers x recv_buffer_bytes),
// registered with io_uring_register_buf_ring on the ring's thread the first
// time supports_recv_multi() is asked (liburing 2.3 has no
// io_uring_setup_buf_ring; the ring and the buffers are page-aligned mmaps
// the backend owns). A recv multishot's CQEs queue {bytes, buffer id} in its
// slot like a multishot accept's fds. A final -ENOBUFS (the ring ran dry)
// is not surfaced: the op is re-armed as soon as a buffer is back in the
// ring (return_buffer), or at once if one already is. A recv whose results
// queue IoUringOptions::recv_queued_max deep is paused: an ASYNC_CANCEL, after
// which every CQE still queues as usual; its final -ECANCELED ends the
// multishot (kEnded) and the stream re-arms it once it has drained the
// queue, so no byte is lost. Buffers of results
// nobody took (a cancel, a CQE for a dropped op) go straight back.
// Buffers handed out (RecvBuf leases) must all be back before the backend
// is destroyed (a CHECK: a lease returned later would write into freed
// memory); leases belong to the backend's thread.
//
// Shutdown (the destructor): every operation still in flight is cancelled
// and the kernel is given IoUringOptions::drain_timeout to hand back its
// memory; slots it still holds then are leaked on purpose, counted in
// stats().leaked_ops and reported on stderr, never freed under the kernel.
//
// Thread-safety: everything but unparker() belongs to the backend's thread.
#ifndef POLLUX_REACTOR_URING_IO_URING_BACKEND_H_
#define POLLUX_REACTOR_URING_IO_URING_BACKEND_H_

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "reactor/backend.h"
#include "reactor/internal/slab.h"
#include "reactor/uring/internal/slots.h"
#include "reactor/uring/internal/uring_syscalls.h"
#include "reactor/uring/io_uring_options.h"

namespace pollux::reactor {

// io_uring's own counters, beside the ones every backend keeps.
struct UringStats : BackendStats {
  uint64_t sq_full_flushes = 0;  // submits forced by a full SQ
  uint64_t cq_overflows = 0;     // kernel entries made with IORING_SQ_CQ_OVERFLOW set
  uint64_t stale_cqes = 0;       // CQEs for slots already reused or freed
};

// Where the backend keeps UringStats (owner-written, readable anywhere).
struct UringCounters : BackendCounters {
  pollux::detail::OwnerCounter sq_full_flushes;
  pollux::detail::OwnerCounter cq_overflows;
  pollux::detail::OwnerCounter stale_cqes;
};

// The Backend on one io_uring (see above); owned by the thread that enables it.
class IoUringBackend final : public Backend {
 public:
  // Creates a disabled ring with the best flags the kernel accepts.
  static absl::StatusOr<std::unique_ptr<IoUringBackend>> create(IoUringOptions options = {});
  ~IoUringBackend() override;

  // Binds the ring to the calling thread; call once, on the backend's thread.
  absl::Status enable_on_current_thread();

  // ---- Park ----
  bool park(std::optional<absl::Duration> timeout) override;
  void poll_now() override;
  std::shared_ptr<Unparker> unparker() override;
  absl::Status status() const override { return fatal_; }

  // ---- Backend ----
  OpId start_nop() override;
  OpId start_read(int fd, std::vector<char>& buf, size_t begin, size_t end,
                  uint64_t offset) override;
  OpId start_write(int fd, std::vector<char>& buf, size_t begin, size_t end,
                   uint64_t offset) override;
  OpId start_recv(int fd, std::vector<char>& buf, size_t begin, size_t end, int flags) override;
  OpId start_send(int fd, std::vector<char>& buf, size_t begin, size_t end, int flags) override;
  OpId start_sendmsg(int fd, std::vector<char>& buf, size_t offset, const sockaddr_storage& to,
                     socklen_t to_len, int flags) override;
  OpId start_recvmsg(int fd, std::vector<char>& buf, int flags) override;
  OpId start_accept(int listen_fd) override;
  OpId start_accept_multi(int listen_fd) override;
  OpId start_connect(int fd, const sockaddr_storage& addr, socklen_t len) override;
  OpId start_close(int fd) override;
  OpId start_poll(int fd, uint32_t events) override;
  OpId start_timeout(absl::Duration d) override;
  OpId start_openat(int dirfd, std::string& path, int flags, mode_t mode) override;
  OpId start_fsync(int fd, bool datasync) override;
  OpId start_statx(int dirfd, std::string& path, int flags, unsigned mask) override;
  OpId start_ready_register(int fd) override;
  OpId start_ready_wait(OpId reg, uint32_t interest) override;
  void clear_ready(OpId reg, uint32_t interest, uint32_t tick) override;
  bool supports_recv_multi() noexcept override;
  OpId start_recv_multi(int fd) override;
  std::span<const char> provided_buffer(int32_t buf) const noexcept override;
  void return_buffer(int32_t buf) noexcept override;

  // io_uring never sets kReady: the kernel makes the syscall itself.
  void resume(OpId) override {}
  MultiNext poll_multi(OpId id, const Waker& waker) override;
  size_t queued(OpId id) const override;
  int32_t take_result(OpId id) override;
  int32_t take_data(OpId id, std::vector<char>& buf) override;
  MsgCompletion take_msg(OpId id) override;
  AcceptCompletion take_accept(OpId id) override;
  PathCompletion take_path(OpId id) override;
  void cancel(OpId id) noexcept override;

  size_t live_ops() const noexcept override;
  BackendStats stats() const noexcept override { return uring_stats(); }
  const char* name() const noexcept override { return "io_uring"; }

  // ---- io_uring specifics ----
  unsigned setup_flags() const noexcept { return setup_flags_; }
  // Whether enters go by the registered ring index (io_uring_register_ring_fd).
  bool ring_fd_registered() const noexcept { return ring_fd_registered_; }
  // The ring's fd, for IoUringOptions::attach_wq_fd of sibling rings.
  // (liburing 2.3 has no accessor; ring_fd is the documented public member
  // io_uring_queue_init fills in, not one of the private ring pointers.)
  int ring_fd() const noexcept { return ring_.ring_fd; }
  UringStats uring_stats() const noexcept;
  // Cancels every operation in flight and waits (at most
  // IoUringOptions::drain_timeout) for the kernel to give their memory back,
  // keeping what it does not (stats().leaked_ops). Idempotent; the
  // destructor calls it. Every future must be gone first.
  void shutdown() { shutdown(options_.drain_timeout); }
  // As shutdown(), waiting at most `drain_timeout` (Runtime::shutdown_timeout).
  void shutdown(absl::Duration drain_timeout);
  // Provided buffers in the ring (the kernel may fill them), and out of it
  // (queued in a slot or leased). Tests.
  unsigned recv_buffers_in_ring() const noexcept { return bufs_in_ring_; }
  unsigned recv_buffers_leased() const noexcept { return bufs_leased_; }
  // The buffer group id of the provided-buffer ring.
  static constexpr int kRecvBufGroup = 0;
  // SQEs prepared and not yet consumed by the kernel.
  bool has_pending_sqes() const noexcept { return io_uring_sq_ready(&ring_) > 0; }

 private:
  class EventFdUnparker;
  template <class P>
  using SlabOf = detail::Slab<uring::Slot<P>>;

  IoUringBackend(io_uring ring, unsigned flags, IoUringOptions options,
                 std::shared_ptr<EventFdUnparker> unparker);

  // The slab holding payload P, and its id.
  template <class P>
  SlabOf<P>& slab() noexcept;
  // Calls visit(slab) on the slab `id` names and returns what it returns
  // (false for an id no slab has): the one map from SlabId to slab.
  template <class V>
  bool on_slab(uring::SlabId id, V&& visit);
  // Calls f(slot, slab, index) with the typed slot `ud` names, or returns
  // false when `ud` is stale.
  template <class F>
  bool with_slot(uint64_t ud, F&& f);
  template <class F>
  void for_each_live_slot(F&& f);
  // Calls f(slot, slab, index) with the typed slot of a live id (the
  // future's: no lookup, debug-checked).
  template <class F>
  void with_id(OpId id, F&& f);

  // An SQE, flushing a full SQ once; null when the kernel refuses now.
  io_uring_sqe* get_sqe();
  // get_sqe's rare path, out of line: the SQ was full.
  [[gnu::noinline]] io_uring_sqe* get_sqe_after_flush();
  // Starts an op of `kind` whose payload `fill` writes: takes an SQE, a slot,
  // fills and prepares it. Invalid id (nothing taken) when no SQE.
  template <class P, class Fill>
  OpId start(OpKind kind, Fill&& fill);
  // Writes the op's SQE from its slot (the one place each kind is prepared).
  template <class P>
  void prep(io_uring_sqe* sqe, uring::Slot<P>& slot, uint64_t ud);
  // Prepares `slot` again into a new SQE (a retry, a re-armed accept).
  // False when no SQE can be had now (queued for the next tick).
  template <class P>
  bool resubmit(uring::Slot<P>& slot, uint64_t ud);

  // One io_uring_enter that submits and waits for a CQE or `timeout`
  // (null: no limit; zero: do not wait).
  void enter_and_wait(__kernel_timespec* timeout);
  // Enters only when the kernel has work (SQEs, task work, an overflow).
  void enter_if_needed();
  // Counts a kernel entry's result; the third non-transient error in a row
  // ends the backend (status()).
  void note_enter_result(int ret, const char* what) {
    if (ret >= 0) {
      consecutive_enter_errors_ = 0;
      return;
    }
    note_enter_error(-ret, what);
  }
  void note_enter_error(int err, const char* what);
  // Reaps the whole CQ; returns the CQEs handled.
  size_t reap();
  void handle_cqe(const io_uring_cqe& cqe);
  // Every CQE complete_plainly leaves: tags, retries, multishot results,
  // failures, ops whose future is gone.
  [[gnu::noinline]] void handle_cqe_generally(const io_uring_cqe& cqe);
  // The common CQE, without handle_slot_cqe's dispatch: the final success
  // of a single-shot op whose future still waits for it (nothing to retry,
  // re-arm, queue or close). False: nothing done; the general path decides.
  bool complete_plainly(uint64_t ud, int32_t res, uint32_t flags) noexcept;
  // The live slot `ud` names in a slab of single-shot ops, or null (a tag,
  // a stale id, a multishot or readiness slot).
  uring::SlotHeader* single_shot_slot(uint64_t ud) noexcept;
  // The other common CQE: data from a multishot recv whose stream still
  // reads (more to come, nothing to retry), handed to handle_recv_multi_cqe
  // without the general dispatch. False: nothing done.
  bool deliver_recv_plainly(uint64_t ud, int32_t res, uint32_t flags);
  template <class P>
  void handle_slot_cqe(uring::Slot<P>& slot, SlabOf<P>& slab, uint32_t index, uint64_t ud,
                       int32_t res, uint32_t flags);
  // A -EAGAIN result: retry after readiness. True when handled.
  template <class P>
  bool retry_after_eagain(uring::Slot<P>& slot, uint64_t ud, int32_t res);
  void arm_unpark_read();
  // Rewrites the op's SQE as a NOP when the kernel has not consumed it yet
  // (io_uring_backend.cc says why). False when it was already consumed.
  bool neutralize_unsubmitted(uring::SlotHeader& slot, uint64_t ud);
  // Queues an ASYNC_CANCEL for the op with `ud`; false if no SQE.
  bool queue_cancel(uint64_t ud);
  // Work that found no SQE before: cancels, resubmissions.
  void run_deferred() {
    if (!unsent_cancels_.empty() || !unsent_resubmits_.empty()) run_deferred_slow();
  }
  void run_deferred_slow();
  // AsyncFd: a multishot poll's CQE (an edge, or its end).
  void handle_ready_cqe(uring::Slot<uring::ReadyPayload>& s, uint64_t ud, int32_t res,
                        bool final);
  // Completes the readiness waits on `reg` that its word now satisfies
  // (all of them, with `res`, when it is < 0).
  void wake_ready_waits(uring::Slot<uring::ReadyPayload>& reg, int32_t res);
  void unlink_ready_wait(uring::Slot<uring::BarePayload>& w);
  uring::Slot<uring::ReadyPayload>* ready_registration(uint64_t ud);
  // A dropped accept on `listen_fd` has ended: re-arm the other accepts on it.
  void rearm_accepts_on(int listen_fd);
  // Cancels every op in flight and waits (bounded) for the kernel.
  void drain(absl::Duration drain_timeout);
  // Registers the provided-buffer ring; false when the kernel refuses.
  bool setup_buf_ring() noexcept;
  // Puts provided buffer `buf` back in the ring (the kernel sees it at once).
  void refill_buffer(int32_t buf) noexcept;
  // Hands back what a multishot op queued and nobody took: closes accepted
  // fds, puts recv buffers back in the ring.
  void release_queued(uring::Slot<uring::MultiPayload>& s) noexcept;
  // A multishot recv's CQE (not for an ignored slot).
  void handle_recv_multi_cqe(uring::Slot<uring::MultiPayload>& s, uint64_t ud, int32_t res,
                             uint32_t flags);

  io_uring ring_;
  unsigned setup_flags_;
  IoUringOptions options_;
  UringSyscalls* sys_;
  // No test seam installed: the per-SQE and per-CQE hooks (get_sqe, on_prep,
  // on_cqe) are called directly or skipped, not through sys_'s vtable.
  bool sys_is_real_;
  std::shared_ptr<EventFdUnparker> unparker_;
  bool unpark_read_armed_ = false;
  bool unpark_read_done_ = false;  // the armed read completed in this reap
  // The armed eventfd read's target; heap-held so that a read the kernel
  // still holds at shutdown can be left to it (leaked) with the slots.
  std::unique_ptr<uint64_t> unpark_buf_ = std::make_unique<uint64_t>(0);
  bool ring_fd_registered_ = false;  // io_uring_register_ring_fd on the ring's thread
  bool enabled_ = false;
  bool drained_ = false;
  // Every SQE prepared so far (the next one's sequence number).
  uint64_t sqes_prepared_ = 0;
  // ud of ops whose cancel found no SQE. Each live slot is in it at most
  // once, so room for every live slot (reserved when an op starts) lets the
  // noexcept cancel paths push without allocating.
  std::vector<uint64_t> unsent_cancels_;
  void reserve_cancel_room() {
    // The common case, inline: one decrement per start, no count of the live ops.
    if (starts_before_reserve_ > 0) {
      --starts_before_reserve_;
      return;
    }
    reserve_cancel_room_slow();
  }
  // Counts the live ops and reserves room for them all (and the next) in the
  // three lists; may throw std::bad_alloc, leaving the countdown at zero.
  void reserve_cancel_room_slow();
  // How many more starts the three lists above surely have room for: their
  // smallest capacity less the live ops when it was last counted (a finished
  // op only adds room, so counting down per start stays on the safe side; a
  // ready wait takes a slot without a start, but no SQE, and enters none).
  // They keep their capacity, except where run_deferred_slow moves
  // unsent_resubmits_' storage away, which zeroes this.
  size_t starts_before_reserve_ = 0;
  std::vector<uint64_t> unsent_resubmits_;  // ud of ops to prepare again
  int consecutive_enter_errors_ = 0;
  absl::Status fatal_;

  // The provided-buffer ring (null until set up; see above). buf_ring_state_:
  // 0 not tried, 1 registered, -1 refused.
  int buf_ring_state_ = 0;
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  char* bufs_ = nullptr;
  size_t bufs_bytes_ = 0;
  unsigned bufs_in_ring_ = 0;
  unsigned bufs_leased_ = 0;
  // The kernel kept memory at shutdown: the buffer ring must outlive us too.
  bool leaked_kernel_memory_ = false;
  // ud of recv multishots ended by -ENOBUFS, waiting for a buffer (each live
  // slot at most once: reserved like unsent_cancels_).
  std::vector<uint64_t> starved_recvs_;

  SlabOf<uring::BarePayload> bare_;
  SlabOf<uring::DataPayload> data_;
  SlabOf<uring::MsgPayload> msg_;
  SlabOf<uring::AddrPayload> addr_;
  SlabOf<uring::MultiPayload> multi_;
  SlabOf<uring::TimeoutPayload> timeout_;
  SlabOf<uring::PathPayload> path_;
  SlabOf<uring::ReadyPayload> ready_;
  UringCounters stats_;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_URING_IO_URING_BACKEND_H_
