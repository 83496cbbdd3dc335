// IoUringDriver: the Driver behind a runtime thread: one io_uring, its op
// table, its timer queue, and the eventfd that lets other threads wake it.
//
// Setup (create()): flags are tried in order SINGLE_ISSUER|DEFER_TASKRUN|
// TASKRUN_FLAG, SINGLE_ISSUER|COOP_TASKRUN|TASKRUN_FLAG, COOP_TASKRUN, none;
// SQ 256, CQ 4096 (IORING_SETUP_CQSIZE). The ring is created disabled
// (IORING_SETUP_R_DISABLED) so setup errors surface in create() on any
// thread, and enable_on_current_thread() binds it to its driver thread (a
// SINGLE_ISSUER ring belongs to the thread that enables it).
//
// A tick (driven by the executor): tasks queue SQEs; then the driver makes at
// most one io_uring_enter. park(): io_uring_submit_and_wait_timeout for one
// CQE or the earliest timer (-ETIME is normal). poll_nonblocking():
// io_uring_submit_and_get_events only if SQEs are pending or the SQ flags show
// IORING_SQ_TASKRUN / IORING_SQ_CQ_OVERFLOW, else no syscall. Then it reaps
// the whole CQ, reads the clock once and fires due timers. A full SQ is
// flushed with io_uring_submit (counted in stats().sq_full_flushes).
//
// Unpark: a state word {EMPTY, PARKED, NOTIFIED}. park() arms its eventfd
// read, moves EMPTY->PARKED (seq_cst; a NOTIFIED found there is consumed and
// park returns at once), then enters. unpark() exchanges NOTIFIED in
// (seq_cst) and writes the eventfd only when it saw PARKED.
//
// CQ overflow: rings are used with IORING_FEAT_NODROP; an overflow is seen as
// IORING_SQ_CQ_OVERFLOW, counted, and flushed by the next enter. Never lost.
//
// Thread-safety: everything but unparker() belongs to the driver thread.
#ifndef POLLUX_REACTOR_IO_URING_DRIVER_H_
#define POLLUX_REACTOR_IO_URING_DRIVER_H_

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "executor/driver.h"
#include "reactor/backend.h"
#include "reactor/internal/uring_syscalls.h"
#include "reactor/op_table.h"
#include "timer/timer_queue.h"

namespace pollux::reactor {

struct IoUringOptions {
  unsigned sq_entries = 256;
  unsigned cq_entries = 4096;
  // The seam for fault injection; null means the real liburing calls.
  UringSyscalls* syscalls = nullptr;
  // Skip the SINGLE_ISSUER/DEFER_TASKRUN attempts (for tests of the fallback).
  bool force_basic_setup = false;
};

struct DriverStats {
  uint64_t enters = 0;           // io_uring_enter calls made by park/poll_nonblocking
  uint64_t sq_full_flushes = 0;  // submits forced by a full SQ
  uint64_t submit_errors = 0;    // -EAGAIN/-EBUSY/-ENOMEM etc. from submit (retried)
  uint64_t cq_overflows = 0;     // kernel entries made with IORING_SQ_CQ_OVERFLOW set
  uint64_t completions = 0;      // CQEs handled for live slots
  uint64_t stale_cqes = 0;       // CQEs for slots already reused or freed
  uint64_t unpark_writes = 0;    // eventfd writes made by unpark()
};

class IoUringDriver final : public Backend {
 public:
  // Creates a disabled ring with the best flags the kernel accepts.
  static absl::StatusOr<std::unique_ptr<IoUringDriver>> create(IoUringOptions options = {});
  ~IoUringDriver() override;

  // Binds the ring to the calling thread; call once, on the driver thread.
  absl::Status enable_on_current_thread();

  void park() override;
  void poll_nonblocking() override;
  std::shared_ptr<Unparker> unparker() override;

  // An SQE for a new operation, flushing the SQ if it is full. Null only when
  // the kernel refuses submissions right now (the caller retries next tick).
  io_uring_sqe* get_sqe();
  // A future dropped its in-flight op: queue an ASYNC_CANCEL and let the slot
  // keep its storage until the final CQE. When no SQE can be had right now,
  // the cancel is queued again at the start of every later tick (and at
  // shutdown) until it gets one.
  void cancel_op(uint32_t index);

  // Prepares `sqe` as the (multishot, when the slot says so) accept of slot
  // `index` on `listen_fd`, SOCK_CLOEXEC, with its user_data. Every accept
  // goes through here so the driver can re-arm it (see rearm_accepts_on).
  void prep_accept(io_uring_sqe* sqe, uint32_t index, int listen_fd);

  OpTable& ops() noexcept { return ops_; }
  timer::TimerQueue& timers() noexcept { return timers_; }
  unsigned setup_flags() const noexcept { return setup_flags_; }
  // A snapshot (unpark_writes is read from the thread-safe unparker).
  DriverStats stats() const noexcept;
  bool has_pending_sqes() const noexcept { return io_uring_sq_ready(&ring_) > 0; }

 private:
  class EventFdUnparker;
  IoUringDriver(io_uring ring, unsigned flags, IoUringOptions options,
                std::shared_ptr<EventFdUnparker> unparker);

  // One io_uring_enter that submits and waits for a CQE or `timeout`
  // (null: no limit; zero: do not wait).
  void enter_and_wait(__kernel_timespec* timeout);
  void enter_nonblocking();
  void reap();
  void handle_cqe(const io_uring_cqe& cqe);
  void arm_unpark_read();
  // Rewrites the op's SQE as a NOP when it has not been submitted yet
  // (io_uring_driver.cc says why). False when it was already submitted.
  bool neutralize_unsubmitted(OpSlot& slot, uint64_t user_data);
  // Queues an ASYNC_CANCEL for the op with `user_data`; false if no SQE.
  bool queue_cancel(uint64_t user_data);
  // Queues the cancels that found no SQE before, for slots still Ignored
  // (or being re-armed).
  void retry_cancels();
  // A dropped accept on `listen_fd` has ended: re-arm the other accepts on it.
  void rearm_accepts_on(int listen_fd);
  void fire_timers();
  // Drains the ring: cancels every in-flight op and waits for its final CQE.
  void drain();

  io_uring ring_;
  unsigned setup_flags_;
  IoUringOptions options_;
  UringSyscalls* sys_;
  std::shared_ptr<EventFdUnparker> unparker_;
  bool unpark_read_armed_ = false;
  uint64_t unpark_buf_ = 0;  // the armed eventfd read's target
  bool enabled_ = false;
  std::vector<uint64_t> unsent_cancels_;  // user_data of Ignored ops not yet cancelled
  OpTable ops_;
  timer::TimerQueue timers_;
  DriverStats stats_;
};

// The io_uring driver of this thread's RuntimeContext, or null.
IoUringDriver* current_driver() noexcept;

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_IO_URING_DRIVER_H_
