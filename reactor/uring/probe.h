// probe_io_uring(): can pollux run on io_uring here? What Runtime::Builder's
// BackendKind::kAuto asks before it picks a backend (DESIGN §5, "choosing
// the backend"), and what kIoUring checks before it promises one.
//
// Kernels and sandboxes differ in more ways than "io_uring_setup works", so
// the probe exercises what the io_uring backend relies on, with a small
// ring: IORING_FEAT_NODROP and IORING_FEAT_FAST_POLL, every opcode the
// backend submits (IORING_REGISTER_PROBE), registering a provided-buffer
// ring, a NOP through io_uring_enter, and a multishot accept that delivers
// a real loopback connection (the opcode probe cannot see multishot or
// buffer-ring support, which came in later kernels than the opcodes). Any
// failure is the status: the syscall's errno (EPERM and ENOSYS under
// seccomp, EACCES or EPERM with kernel.io_uring_disabled, ENOMEM under a
// low memlock limit) or FailedPrecondition naming the missing feature.
//
// Once per process: the result is cached, and probed again only in a
// forked child (a child may have installed a seccomp filter its parent
// does not have). About a millisecond the first time.
//
// Thread-safety: thread-safe.
#ifndef POLLUX_REACTOR_URING_PROBE_H_
#define POLLUX_REACTOR_URING_PROBE_H_

#include "absl/status/status.h"

namespace pollux::reactor {

absl::Status probe_io_uring();

// The probe itself, uncached (tests).
absl::Status probe_io_uring_uncached();

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_URING_PROBE_H_
