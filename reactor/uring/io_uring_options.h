// IoUringOptions: how the io_uring backend is set up (Runtime::Builder::
// io_uring_options). A header of its own, without <liburing.h>, so that
// runtime/'s public header can name it.
#ifndef POLLUX_REACTOR_URING_IO_URING_OPTIONS_H_
#define POLLUX_REACTOR_URING_IO_URING_OPTIONS_H_

#include "absl/time/time.h"

namespace pollux::reactor {

class UringSyscalls;

// How the io_uring backend is set up: ring sizes, setup fallback, shutdown
// drain, a shared io-wq.
struct IoUringOptions {
  unsigned sq_entries = 256;
  unsigned cq_entries = 4096;
  // The seam for fault injection; null means the real liburing calls.
  UringSyscalls* syscalls = nullptr;
  // Skip the SINGLE_ISSUER/DEFER_TASKRUN attempts (for tests of the fallback).
  bool force_basic_setup = false;
  // At shutdown, how long to wait for the kernel to hand back the memory of
  // cancelled operations; what is still in the kernel then is leaked on
  // purpose (never freed under the kernel) and counted (DESIGN §9: 10 s).
  absl::Duration drain_timeout = absl::Seconds(10);
  // Share the kernel worker threads (io-wq) of the ring with this fd
  // (IORING_SETUP_ATTACH_WQ): the rings of one multi-worker runtime do.
  // -1: a ring of its own.
  int attach_wq_fd = -1;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_URING_IO_URING_OPTIONS_H_
