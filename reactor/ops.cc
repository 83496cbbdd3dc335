#include "reactor/ops.h"

#include "absl/strings/str_cat.h"

namespace pollux::reactor {
namespace detail {

absl::Status no_driver_status() {
  return absl::FailedPreconditionError(
      "I/O operation started on a thread with no io_uring driver; run it inside a runtime "
      "built with Runtime::Builder().enable_io()");
}

IoResult DataSpec::finish(int32_t res, OpStorage& st) {
  if (res < 0) {
    static constexpr const char* kNames[] = {"read from", "write to", "recv from", "send to"};
    return IoResult{errno_status(-res, absl::StrCat(kNames[static_cast<int>(kind)], " fd ", fd)),
                    std::move(st.buf)};
  }
  return IoResult{static_cast<size_t>(res), std::move(st.buf)};
}

absl::StatusOr<Accepted> AcceptSpec::finish(int32_t res, OpStorage& st) {
  if (res < 0) return errno_status(-res, absl::StrCat("accept on fd ", fd));
  Accepted a;
  a.fd = OwnedFd(res);
  a.peer = st.addr;
  a.peer_len = st.addrlen;
  return a;
}

absl::Status ConnectSpec::finish(int32_t res, OpStorage&) {
  return res < 0 ? errno_status(-res, absl::StrCat("connect fd ", fd)) : absl::OkStatus();
}

absl::Status CloseSpec::finish(int32_t res, OpStorage&) {
  return res < 0 ? errno_status(-res, absl::StrCat("close fd ", fd)) : absl::OkStatus();
}

absl::StatusOr<uint32_t> PollAddSpec::finish(int32_t res, OpStorage&) {
  if (res < 0) return errno_status(-res, absl::StrCat("poll fd ", fd));
  return static_cast<uint32_t>(res);
}

void TimeoutSpec::prep(io_uring_sqe* sqe, OpStorage& st) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  st.ts.tv_sec = absl::ToInt64Seconds(d);
  st.ts.tv_nsec = absl::ToInt64Nanoseconds(d - absl::Seconds(st.ts.tv_sec));
  io_uring_prep_timeout(sqe, &st.ts, 0, 0);
}

absl::Status TimeoutSpec::finish(int32_t res, OpStorage&) {
  if (res == -ETIME || res == 0) return absl::OkStatus();
  return errno_status(-res, "io_uring timeout");
}

}  // namespace detail
}  // namespace pollux::reactor
