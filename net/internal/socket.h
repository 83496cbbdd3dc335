// Shared plumbing of net/'s socket types (not a public API): the shared
// socket state, the future that wraps a reactor operation on a socket, and
// helpers that make sockets and name them in error messages.
//
// SocketState is held by shared_ptr so that the halves of a split stream,
// and every operation future in flight, keep the fd open: the fd is closed
// only when the last of them is gone, never while an operation of ours can
// still be submitted on it. It also owns the fd in the backends' sense
// (reactor/fd_owner.h): a readiness backend (epoll) keeps one registration
// for the socket's life, shared by both halves, and the state's teardown
// removes it (EPOLL_CTL_DEL) before the fd closes. On io_uring that costs an
// atomic or two per socket.
//
// Thread-safety: as the reactor's operations (polled and dropped on their
// backend's thread). SocketState is immutable after construction, except for
// the fd's own kernel state; its teardown may run on any thread.
#ifndef POLLUX_NET_INTERNAL_SOCKET_H_
#define POLLUX_NET_INTERNAL_SOCKET_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "future/future.h"
#include "future/poll_into.h"
#include "net/socket_addr.h"
#include "reactor/fd_owner.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"

namespace pollux::net::detail {

struct SocketState {
  explicit SocketState(OwnedFd f) noexcept : fd(std::move(f)), owner(fd.get()) {}
  OwnedFd fd;
  // Declared after fd, so destroyed before it: every backend that registered
  // the socket forgets it before the fd is closed.
  reactor::FdOwner owner;
  SocketAddr peer;        // the connected peer (streams, connected datagram sockets)
  std::string unix_name;  // Unix sockets: the path named in errors instead of `peer`
};

// How errors name the peer: the Unix path, or the IP address.
inline std::string peer_name(const SocketState& s) {
  return s.unix_name.empty() ? s.peer.to_string() : s.unix_name;
}

inline int fd_of(const std::shared_ptr<SocketState>& s) noexcept {
  return s ? s->fd.get() : -1;
}

// `s` re-labelled as happening while doing `what` (e.g. "read from
// 127.0.0.1:80"), keeping its code and errno payload.
absl::Status annotate(const absl::Status& s, absl::string_view what);
// "<what> <addr>".
absl::Status annotate(const absl::Status& s, absl::string_view verb, const SocketAddr& addr);

// socket(2) with SOCK_NONBLOCK|SOCK_CLOEXEC for `addr`'s family (every
// socket pollux creates is non-blocking: DESIGN §5).
absl::StatusOr<OwnedFd> new_socket(const SocketAddr& addr, int type, absl::string_view what);
// getsockname / getpeername as a SocketAddr.
absl::StatusOr<SocketAddr> local_addr_of(int fd);
absl::StatusOr<SocketAddr> peer_addr_of(int fd);
// setsockopt of an int option.
absl::Status set_int_option(int fd, int level, int name, int value, absl::string_view what);
absl::StatusOr<int> get_int_option(int fd, int level, int name, absl::string_view what);

// Converters from a reactor operation's output to net's, naming the socket
// in errors. `Conv` provides `using Output;` and either `static Output
// convert(In&&, const std::shared_ptr<SocketState>&, const SocketAddr& where,
// const char* verb)` or, when Output is the op's own, `static void
// amend(Output&, <the same three>)`, which fixes the result up where it is.
struct IoConv {
  using Output = reactor::IoResult;
  // The result stays where it is: only an error's message changes.
  static void amend(reactor::IoResult& r, const std::shared_ptr<SocketState>& s,
                    const SocketAddr& where, const char* verb) {
    if (!r.n.ok()) [[unlikely]] annotate_error(r, s, where, verb);
  }
  static void annotate_error(reactor::IoResult& r, const std::shared_ptr<SocketState>& s,
                             const SocketAddr& where, const char* verb);
};

// A reactor operation future (reactor/ops.h: reactor::DataOp, AcceptOp, ...)
// on a socket. It shares ownership of the socket, so the fd stays open for
// as long as the operation can be submitted, and it names the socket's
// address in its error statuses.
// Cancellation: as the wrapped reactor operation (reactor/ops.h).
template <class InnerOp, class Conv>
class [[nodiscard]] SocketOp {
 public:
  using Output = typename Conv::Output;

  SocketOp(std::shared_ptr<SocketState> state, InnerOp op, const SocketAddr& where,
           const char* verb)
      : state_(std::move(state)), op_(std::move(op)), where_(where), verb_(verb) {}

  Poll<Output> poll(Context& cx) {
    std::optional<Output> out;
    return poll_from(poll_into(cx, out), out);
  }

  // poll(), with the output built in `out` (future/poll_into.h): a Conv
  // with amend() fixes the op's own result up in place, any other converts
  // it with one move.
  bool poll_into(Context& cx, std::optional<Output>& out) {
    if constexpr (requires(Output& o) { Conv::amend(o, state_, where_, verb_); }) {
      if (!pollux::poll_into(op_, cx, out)) return false;
      Conv::amend(*out, state_, where_, verb_);
    } else {
      std::optional<typename InnerOp::Output> r;
      if (!pollux::poll_into(op_, cx, r)) return false;
      out.emplace(MadeBy{[&] { return Conv::convert(std::move(*r), state_, where_, verb_); }});
    }
    return true;
  }

 private:
  // Declared before op_, so destroyed after it: the op's cancellation is
  // queued while the fd is still open.
  std::shared_ptr<SocketState> state_;
  InnerOp op_;
  SocketAddr where_;
  const char* verb_;
};

}  // namespace pollux::net::detail

#endif  // POLLUX_NET_INTERNAL_SOCKET_H_
