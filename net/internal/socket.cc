#include "net/internal/socket.h"

#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "reactor/errno_status.h"

namespace pollux::net::detail {

absl::Status annotate(const absl::Status& s, absl::string_view what) {
  if (s.ok()) return s;
  const int err = errno_of(s);
  if (err != 0) return errno_status(err, what);
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

absl::Status annotate(const absl::Status& s, absl::string_view verb, const SocketAddr& addr) {
  return annotate(s, absl::StrCat(verb, " ", addr.to_string()));
}

absl::StatusOr<OwnedFd> new_socket(const SocketAddr& addr, int type, absl::string_view what) {
  OwnedFd fd(::socket(addr.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return errno_status(errno, absl::StrCat(what, " ", addr.to_string(), ": socket"));
  }
  return fd;
}

absl::StatusOr<SocketAddr> local_addr_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  // SAFETY: sockaddr_storage may be viewed as a sockaddr.
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return errno_status(errno, absl::StrCat("getsockname on fd ", fd));
  }
  return SocketAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

absl::StatusOr<SocketAddr> peer_addr_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  // SAFETY: sockaddr_storage may be viewed as a sockaddr.
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return errno_status(errno, absl::StrCat("getpeername on fd ", fd));
  }
  return SocketAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len);
}

absl::Status set_int_option(int fd, int level, int name, int value, absl::string_view what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return errno_status(errno, what);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> get_int_option(int fd, int level, int name, absl::string_view what) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd, level, name, &value, &len) != 0) return errno_status(errno, what);
  return value;
}

void IoConv::annotate_error(reactor::IoResult& r, const std::shared_ptr<SocketState>& s,
                            const SocketAddr& where, const char* verb) {
  r.n = (s && !s->unix_name.empty())
            ? annotate(r.n.status(), std::string(verb) + " " + s->unix_name)
            : annotate(r.n.status(), verb, where);
}

}  // namespace pollux::net::detail
