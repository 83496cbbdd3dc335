#include "reactor/ops.h"

#include "absl/strings/str_cat.h"
#include "executor/context.h"

namespace pollux::reactor {

namespace detail {

absl::Status no_backend_status() {
  return absl::FailedPreconditionError(
      "I/O operation started on a thread with no I/O backend; run it inside a runtime "
      "built with Runtime::Builder().enable_io()");
}

absl::Status out_of_memory_status() {
  return absl::ResourceExhaustedError(
      "I/O operation could not start: out of memory for its slot; free memory or bound the "
      "number of operations in flight, then retry");
}

absl::Status NopSpec::error(int32_t res) { return errno_status(-res, "nop"); }

IoResult DataSpec::error_result(int32_t res, std::vector<char>&& b) const {
  static constexpr const char* kNames[] = {"read from", "write to", "recv from", "send to"};
  return IoResult{errno_status(-res, absl::StrCat(kNames[static_cast<int>(kind)], " fd ", fd)),
                  std::move(b)};
}

IoResult SendMsgSpec::finish(Backend& b, OpId id) {
  MsgCompletion c = b.take_msg(id);
  if (c.res < 0) {
    return IoResult{errno_status(-c.res, absl::StrCat("sendmsg on fd ", fd)), std::move(c.buf)};
  }
  return IoResult{static_cast<size_t>(c.res), std::move(c.buf)};
}

RecvMsgResult RecvMsgSpec::finish(Backend& b, OpId id) {
  MsgCompletion c = b.take_msg(id);
  RecvMsgResult r;
  r.buf = std::move(c.buf);
  if (c.res < 0) {
    r.n = errno_status(-c.res, absl::StrCat("recvmsg on fd ", fd));
    return r;
  }
  r.n = static_cast<size_t>(c.res);
  r.from = c.addr;
  r.from_len = c.addr_len;
  r.truncated = (c.msg_flags & MSG_TRUNC) != 0;
  return r;
}

absl::StatusOr<Accepted> AcceptSpec::finish(Backend& b, OpId id) {
  AcceptCompletion c = b.take_accept(id);
  if (c.res < 0) return errno_status(-c.res, absl::StrCat("accept on fd ", fd));
  Accepted a;
  a.fd = OwnedFd(c.res);
  a.peer = c.peer;
  a.peer_len = c.peer_len;
  return a;
}

absl::Status ConnectSpec::finish(Backend& b, OpId id) {
  const int32_t res = b.take_result(id);
  return res < 0 ? errno_status(-res, absl::StrCat("connect fd ", fd)) : absl::OkStatus();
}

absl::Status CloseSpec::finish(Backend& b, OpId id) {
  const int32_t res = b.take_result(id);
  return res < 0 ? errno_status(-res, absl::StrCat("close fd ", fd)) : absl::OkStatus();
}

absl::StatusOr<uint32_t> PollAddSpec::finish(Backend& b, OpId id) {
  const int32_t res = b.take_result(id);
  if (res < 0) return errno_status(-res, absl::StrCat("poll fd ", fd));
  return static_cast<uint32_t>(res);
}

absl::Status TimeoutSpec::finish(Backend& b, OpId id) {
  const int32_t res = b.take_result(id);
  if (res == -ETIME || res == 0) return absl::OkStatus();
  return errno_status(-res, "backend timeout");
}

absl::StatusOr<OwnedFd> OpenAtSpec::finish(Backend& b, OpId id) {
  PathCompletion c = b.take_path(id);
  if (c.res < 0) return errno_status(-c.res, absl::StrCat("open ", c.path));
  return OwnedFd(c.res);
}

absl::Status FsyncSpec::finish(Backend& b, OpId id) {
  const int32_t res = b.take_result(id);
  return res < 0 ? errno_status(-res, absl::StrCat("fsync fd ", fd)) : absl::OkStatus();
}

absl::StatusOr<struct statx> StatxSpec::finish(Backend& b, OpId id) {
  PathCompletion c = b.take_path(id);
  if (c.res < 0) {
    return errno_status(-c.res, c.path.empty() ? absl::StrCat("statx fd ", dirfd)
                                               : absl::StrCat("statx ", c.path));
  }
  return c.stx;
}

}  // namespace detail
}  // namespace pollux::reactor
