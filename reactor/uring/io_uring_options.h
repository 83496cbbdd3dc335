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
  // The provided-buffer ring multishot recvs (RecvStream) receive into: one
  // per ring, set up on first use. Each buffer is out of the ring from the
  // CQE that fills it until its RecvBuf is dropped, so the count bounds
  // the messages queued or leased at once on this worker; a connection that
  // finds the ring dry waits (-ENOBUFS re-arms when a buffer comes back),
  // it does not fail. 512 x 4 KiB (2 MiB a worker, only once a RecvStream
  // runs): 4 KiB holds a typical request and is a page; 512 lets hundreds
  // of connections each have a message in hand. recv_buffers must be a
  // power of two (the kernel's ring mask), at most 32768.
  unsigned recv_buffers = 512;
  unsigned recv_buffer_bytes = 4096;
  // Backpressure: a multishot recv whose arrivals queue unread this deep is
  // paused (cancelled, keeping every result the kernel still delivers) and
  // armed again once its stream has drained them. Without it a connection
  // whose reader stalls (an echo blocked on a peer that never reads) keeps
  // draining its socket into the shared ring: the peer never feels the
  // stall, and the other connections on the worker wait for buffers.
  unsigned recv_queued_max = 16;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_URING_IO_URING_OPTIONS_H_
