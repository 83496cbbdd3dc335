// OpKind and OpTraits: the one place that says what each kind of I/O
// operation is, read by every backend (DESIGN §5).
//
//   returns_fd   its result is a new fd: a result nobody claims (the future
//                was dropped) is closed by the backend, so an fd never leaks
//   multishot    one submission, many results; the op keeps its slot until
//                the final one
//   owns_buffer  a data buffer moves into the op and comes back with the
//                result (the kernel may use it until the final completion)
//   file_op      a regular-file operation: io_uring runs it like any other,
//                the epoll backend hands it to the blocking pool
//   socket_op    needs readiness on a socket: a -EAGAIN completion is
//                retried after readiness, never surfaced
//
// Adding an operation means adding a kind here, its entry point in
// Backend, and its future in ops.h; the backends derive slot flags from
// these traits, so nobody has to remember to set them.
#ifndef POLLUX_REACTOR_OP_TRAITS_H_
#define POLLUX_REACTOR_OP_TRAITS_H_

#include <cstdint>

namespace pollux::reactor {

// Every kind of I/O operation a backend runs.
enum class OpKind : uint8_t {
  kNop,
  kRead,
  kWrite,
  kRecv,
  kSend,
  kSendMsg,
  kRecvMsg,
  kAccept,
  kAcceptMulti,
  kRecvMulti,  // multishot recv into provided buffers (RecvStream)
  kConnect,
  kClose,
  kPoll,
  kTimeout,
  kOpenAt,
  kFsync,
  kStatx,
  kReadyRegister,  // AsyncFd: an fd's readiness registration (long-lived)
  kReadyWait,      // AsyncFd: one wait for readiness on a registration
};
inline constexpr int kOpKindCount = static_cast<int>(OpKind::kReadyWait) + 1;

// What an OpKind is (see above), read by every backend.
struct OpTraits {
  bool returns_fd = false;
  bool multishot = false;
  bool owns_buffer = false;
  bool file_op = false;
  bool socket_op = false;
  const char* name = "";
};

namespace detail {
inline constexpr OpTraits kOpTraits[kOpKindCount] = {
    /* kNop */ {.name = "nop"},
    /* kRead */ {.owns_buffer = true, .name = "read"},
    /* kWrite */ {.owns_buffer = true, .name = "write"},
    /* kRecv */ {.owns_buffer = true, .socket_op = true, .name = "recv"},
    /* kSend */ {.owns_buffer = true, .socket_op = true, .name = "send"},
    /* kSendMsg */ {.owns_buffer = true, .socket_op = true, .name = "sendmsg"},
    /* kRecvMsg */ {.owns_buffer = true, .socket_op = true, .name = "recvmsg"},
    /* kAccept */ {.returns_fd = true, .socket_op = true, .name = "accept"},
    /* kAcceptMulti */
    {.returns_fd = true, .multishot = true, .socket_op = true, .name = "accept"},
    /* kRecvMulti */ {.multishot = true, .socket_op = true, .name = "recv"},
    /* kConnect */ {.socket_op = true, .name = "connect"},
    /* kClose */ {.name = "close"},
    /* kPoll */ {.name = "poll"},
    /* kTimeout */ {.name = "timeout"},
    /* kOpenAt */ {.returns_fd = true, .file_op = true, .name = "openat"},
    /* kFsync */ {.file_op = true, .name = "fsync"},
    /* kStatx */ {.file_op = true, .name = "statx"},
    /* kReadyRegister */ {.multishot = true, .name = "readiness registration"},
    /* kReadyWait */ {.name = "readiness wait"},
};
}  // namespace detail

// A table lookup: backends read it on every completion.
constexpr const OpTraits& op_traits(OpKind kind) {
  return detail::kOpTraits[static_cast<int>(kind)];
}
static_assert(op_traits(OpKind::kAcceptMulti).multishot &&
                  op_traits(OpKind::kRecvMulti).multishot && !op_traits(OpKind::kConnect).multishot &&
                  op_traits(OpKind::kOpenAt).returns_fd &&
                  op_traits(OpKind::kReadyRegister).multishot,
              "kOpTraits is indexed by OpKind: keep the two in the same order");

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_OP_TRAITS_H_
