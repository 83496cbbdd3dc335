#include "net/unix.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "reactor/errno_status.h"

namespace pollux::net {

namespace {

// Fills `sun` for `path`; returns the address length or an error.
absl::StatusOr<socklen_t> unix_addr(absl::string_view path, sockaddr_un* sun) {
  std::memset(sun, 0, sizeof(*sun));
  sun->sun_family = AF_UNIX;
  if (path.empty() || path == "@") {
    return absl::InvalidArgumentError(absl::StrCat("invalid unix socket path \"", path,
                                                   "\": empty"));
  }
  if (path.size() >= sizeof(sun->sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid unix socket path \"", path,
                                                   "\": longer than ",
                                                   sizeof(sun->sun_path) - 1, " bytes"));
  }
  std::memcpy(sun->sun_path, path.data(), path.size());
  if (path.front() == '@') {
    sun->sun_path[0] = '\0';  // abstract: the length below delimits the name
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  }
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

}  // namespace

namespace detail {
UnixAcceptConv::Output UnixAcceptConv::convert(absl::StatusOr<reactor::Accepted>&& a,
                                               const std::shared_ptr<SocketState>& s,
                                               const SocketAddr&, const char* verb) {
  const std::string name = s ? s->unix_name : std::string();
  if (!a.ok()) return annotate(a.status(), absl::StrCat(verb, " ", name));
  auto st = std::make_shared<SocketState>(std::move(a->fd));
  st->unix_name = name;
  return UnixStream(std::move(st));
}
}  // namespace detail

Task<absl::StatusOr<UnixStream>> UnixStream::connect(std::string path) {
  sockaddr_un sun;
  absl::StatusOr<socklen_t> len = unix_addr(path, &sun);
  if (!len.ok()) co_return len.status();
  OwnedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) co_return errno_status(errno, absl::StrCat("connect to ", path, ": socket"));
  auto st = std::make_shared<detail::SocketState>(std::move(fd));
  st->unix_name = path;
  // SAFETY: sockaddr_un is a sockaddr for AF_UNIX.
  absl::Status s =
      co_await reactor::connect(st->fd.get(), reinterpret_cast<const sockaddr*>(&sun), *len);
  if (!s.ok()) co_return detail::annotate(s, absl::StrCat("connect to ", path));
  co_return UnixStream(std::move(st));
}

absl::StatusOr<UnixListener> UnixListener::bind(absl::string_view path) {
  sockaddr_un sun;
  absl::StatusOr<socklen_t> len = unix_addr(path, &sun);
  if (!len.ok()) return len.status();
  const std::string where = absl::StrCat("bind to ", path);
  OwnedFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_status(errno, absl::StrCat(where, ": socket"));
  // SAFETY: sockaddr_un is a sockaddr for AF_UNIX.
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sun), *len) != 0) {
    return errno_status(errno, where);
  }
  if (::listen(fd.get(), 1024) != 0) return errno_status(errno, absl::StrCat("listen on ", path));
  auto st = std::make_shared<detail::SocketState>(std::move(fd));
  st->unix_name = std::string(path);
  return UnixListener(std::move(st), std::string(path));
}

UnixListener::AcceptFuture UnixListener::accept() {
  return AcceptFuture(state_, reactor::accept(detail::fd_of(state_)), SocketAddr(), "accept on");
}

}  // namespace pollux::net
