// UringSyscalls: the thin seam between the driver and the liburing calls
// that can fail or block, so tests can inject faults (-EAGAIN, -EBUSY,
// -ENOMEM from submit, a full SQ, short reads) without a special kernel.
//
// The default implementation calls liburing directly. Every call is made on
// the driver thread only. A virtual call costs a few ns next to the ~1 us of
// the syscall most of these make.
#ifndef POLLUX_REACTOR_INTERNAL_URING_SYSCALLS_H_
#define POLLUX_REACTOR_INTERNAL_URING_SYSCALLS_H_

#include <liburing.h>

namespace pollux::reactor {

class UringSyscalls {
 public:
  virtual ~UringSyscalls() = default;
  // io_uring_get_sqe: null when the SQ is full.
  virtual io_uring_sqe* get_sqe(io_uring* ring) { return io_uring_get_sqe(ring); }
  // io_uring_submit: SQEs submitted, or -errno.
  virtual int submit(io_uring* ring) { return io_uring_submit(ring); }
  // io_uring_submit_and_get_events: submits and runs deferred task work.
  virtual int submit_and_get_events(io_uring* ring) { return io_uring_submit_and_get_events(ring); }
  // io_uring_submit_and_wait_timeout: submits, then waits for one CQE or the timeout
  // (null: no timeout). -ETIME and -EINTR are normal.
  virtual int submit_and_wait_timeout(io_uring* ring, io_uring_cqe** cqe, unsigned wait_nr,
                                      __kernel_timespec* ts) {
    return io_uring_submit_and_wait_timeout(ring, cqe, wait_nr, ts, nullptr);
  }
  // Sees each CQE before the driver handles it; a test may rewrite `res`.
  virtual void on_cqe(io_uring_cqe*) {}

  // The process-wide default (stateless).
  static UringSyscalls& real();
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_INTERNAL_URING_SYSCALLS_H_
