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

IoResult SendMsgSpec::finish(int32_t res, OpStorage& st) {
  if (res < 0) {
    return IoResult{errno_status(-res, absl::StrCat("sendmsg on fd ", fd)), std::move(st.buf)};
  }
  return IoResult{static_cast<size_t>(res), std::move(st.buf)};
}

RecvMsgResult RecvMsgSpec::finish(int32_t res, OpStorage& st) {
  RecvMsgResult r;
  r.buf = std::move(st.buf);
  if (res < 0) {
    r.n = errno_status(-res, absl::StrCat("recvmsg on fd ", fd));
    return r;
  }
  r.n = static_cast<size_t>(res);
  r.from = st.addr;
  r.from_len = st.msg.msg_namelen;
  r.truncated = (st.msg.msg_flags & MSG_TRUNC) != 0;
  return r;
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

// ---- File operations ----

absl::StatusOr<OwnedFd> OpenAtSpec::finish(int32_t res, OpStorage& st) {
  if (res < 0) return errno_status(-res, absl::StrCat("open ", st.path));
  return OwnedFd(res);
}

absl::Status FsyncSpec::finish(int32_t res, OpStorage&) {
  return res < 0 ? errno_status(-res, absl::StrCat("fsync fd ", fd)) : absl::OkStatus();
}

absl::StatusOr<struct statx> StatxSpec::finish(int32_t res, OpStorage& st) {
  if (res < 0) {
    return errno_status(-res, st.path.empty() ? absl::StrCat("statx fd ", dirfd)
                                              : absl::StrCat("statx ", st.path));
  }
  return st.stx;
}

}  // namespace detail
}  // namespace pollux::reactor
