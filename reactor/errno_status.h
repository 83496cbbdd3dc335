// Turning a failed syscall's errno into an absl::Status a caller can act on.
//
// Each errno a network or file user branches on maps to its own status code
// (connection refused -> kUnavailable, reset by peer -> kAborted, address in
// use -> kAlreadyExists, broken pipe -> kFailedPrecondition, ...), and the
// errno itself rides along as a payload, so `errno_of(status)` recovers it
// exactly. The message names the operation and what it acted on:
//   "connect to 127.0.0.1:9: Connection refused (errno 111)".
// Thread-safety: pure functions.
#ifndef POLLUX_REACTOR_ERRNO_STATUS_H_
#define POLLUX_REACTOR_ERRNO_STATUS_H_

#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace pollux {

// A status for `err` (a positive errno) while doing `what`.
absl::Status errno_status(int err, absl::string_view what);
// The errno stored by errno_status, or 0 for a status made elsewhere.
int errno_of(const absl::Status& status);
// `status` with `context` in front of its message ("context: message"),
// keeping its code and errno payload. OK stays OK.
absl::Status with_context(const absl::Status& status, absl::string_view context);

}  // namespace pollux

#endif  // POLLUX_REACTOR_ERRNO_STATUS_H_
