#include "reactor/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pollux {

namespace {
constexpr absl::string_view kErrnoPayload = "pollux/errno";

absl::StatusCode code_for(int err) {
  switch (err) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EAGAIN:
      return absl::StatusCode::kUnavailable;
    case ECONNRESET:
    case ECONNABORTED:
      return absl::StatusCode::kAborted;
    case EADDRINUSE:
    case EEXIST:
    case EISCONN:
      return absl::StatusCode::kAlreadyExists;
    case EPIPE:
    case ENOTCONN:
    case EBADF:
    case ENOTSOCK:
      return absl::StatusCode::kFailedPrecondition;
    case EINVAL:
    case EAFNOSUPPORT:
    case EADDRNOTAVAIL:
    case ENAMETOOLONG:
      return absl::StatusCode::kInvalidArgument;
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case ENOMEM:
    case ENOBUFS:
    case EMFILE:
    case ENFILE:
    case ENOSPC:
      return absl::StatusCode::kResourceExhausted;
    case ECANCELED:
      return absl::StatusCode::kCancelled;
    case ETIME:
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case EOPNOTSUPP:
    case ENOSYS:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kUnknown;
  }
}
}  // namespace

absl::Status errno_status(int err, absl::string_view what) {
  char buf[128];
  // GNU strerror_r returns the message (possibly not in buf).
  const char* msg = strerror_r(err, buf, sizeof(buf));
  absl::Status s(code_for(err), absl::StrCat(what, ": ", msg, " (errno ", err, ")"));
  s.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(err)));
  return s;
}

int errno_of(const absl::Status& status) {
  auto payload = status.GetPayload(kErrnoPayload);
  int err = 0;
  if (payload && absl::SimpleAtoi(std::string(*payload), &err)) return err;
  return 0;
}

absl::Status with_context(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  absl::Status s(status.code(), absl::StrCat(context, ": ", status.message()));
  if (const int err = errno_of(status); err != 0) {
    s.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(err)));
  }
  return s;
}

}  // namespace pollux
