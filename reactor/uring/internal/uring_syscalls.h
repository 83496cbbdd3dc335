// UringSyscalls: the thin seam between the io_uring backend and the liburing
// calls that can fail or block, so tests can inject faults (-EAGAIN, -EBUSY,
// -ENOMEM from submit, a full SQ, short reads, a kernel entry refused every
// time) without a special kernel.
//
// The default implementation calls liburing directly. Every call is made on
// the backend's thread only. A virtual call costs a few ns next to the ~1 us
// of the syscall most of these make; the per-SQE and per-CQE hooks (get_sqe,
// on_prep, on_cqe) make none, so with the default (real()) the backend calls
// io_uring_get_sqe itself and skips the other two.
#ifndef POLLUX_REACTOR_URING_INTERNAL_URING_SYSCALLS_H_
#define POLLUX_REACTOR_URING_INTERNAL_URING_SYSCALLS_H_

#include <liburing.h>

namespace pollux::reactor {

class UringSyscalls {
 public:
  virtual ~UringSyscalls() = default;
  // io_uring_get_sqe: null when the SQ is full.
  virtual io_uring_sqe* get_sqe(io_uring* ring) { return io_uring_get_sqe(ring); }
  // Sees each SQE once the backend has prepared it (user_data set), before
  // the kernel does; a test may rewrite it (e.g. cut a read's length).
  virtual void on_prep(io_uring_sqe*) {}
  // io_uring_submit: SQEs submitted, or -errno.
  virtual int submit(io_uring* ring) { return io_uring_submit(ring); }
  // io_uring_submit_and_get_events: submits and runs deferred task work.
  virtual int submit_and_get_events(io_uring* ring) { return io_uring_submit_and_get_events(ring); }
  // io_uring_submit_and_wait_timeout: submits, then waits for one CQE or the timeout
  // (null: no timeout). 0 or -errno; -ETIME and -EINTR are normal. `*cqe` is
  // not used by the backend (it reaps the whole CQ after), so without a
  // timeout this is the plain io_uring_submit_and_wait: one io_uring_enter,
  // without liburing's CQ peek loop around it (about 100 instructions a tick).
  virtual int submit_and_wait_timeout(io_uring* ring, io_uring_cqe** cqe, unsigned wait_nr,
                                      __kernel_timespec* ts) {
    if (ts == nullptr) {
      *cqe = nullptr;
      const int submitted = io_uring_submit_and_wait(ring, wait_nr);
      return submitted < 0 ? submitted : 0;
    }
    return io_uring_submit_and_wait_timeout(ring, cqe, wait_nr, ts, nullptr);
  }
  // Sees each CQE before the backend handles it; a test may rewrite `res`,
  // or return false to hide it from the backend (as if the kernel had never
  // posted it: an operation the kernel never gives back).
  virtual bool on_cqe(io_uring_cqe*) { return true; }

  // The process-wide default (stateless).
  static UringSyscalls& real();
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_URING_INTERNAL_URING_SYSCALLS_H_
