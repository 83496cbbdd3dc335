#include "net/udp.h"

#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "reactor/errno_status.h"

namespace pollux::net {

namespace detail {
RecvFromResult RecvFromConv::convert(reactor::RecvMsgResult&& r,
                                     const std::shared_ptr<SocketState>&,
                                     const SocketAddr& where, const char* verb) {
  RecvFromResult out;
  out.buf = std::move(r.buf);
  out.truncated = r.truncated;
  if (!r.n.ok()) {
    out.n = annotate(r.n.status(), verb, where);
    return out;
  }
  out.n = *r.n;
  // SAFETY: sockaddr_storage may be viewed as a sockaddr.
  absl::StatusOr<SocketAddr> from =
      SocketAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&r.from), r.from_len);
  if (from.ok()) {
    out.from = *from;
  } else {
    out.n = annotate(from.status(), verb, where);
  }
  return out;
}
}  // namespace detail

absl::StatusOr<UdpSocket> UdpSocket::bind(const SocketAddr& addr) {
  const std::string where = absl::StrCat("bind udp to ", addr.to_string());
  absl::StatusOr<OwnedFd> fd = detail::new_socket(addr, SOCK_DGRAM, "bind udp to");
  if (!fd.ok()) return fd.status();
  if (::bind(fd->get(), addr.as_sockaddr(), addr.len()) != 0) return errno_status(errno, where);
  absl::StatusOr<SocketAddr> local = detail::local_addr_of(fd->get());
  if (!local.ok()) return detail::annotate(local.status(), where);
  auto st = std::make_shared<detail::SocketState>(std::move(*fd));
  return UdpSocket(std::move(st), *local);
}

UdpSocket::SendToFuture UdpSocket::send_to(std::vector<char> buf, const SocketAddr& to) {
  return SendToFuture(state_,
                      reactor::sendmsg(fd(), std::move(buf), 0, to.as_sockaddr(), to.len()), to,
                      "send_to");
}

UdpSocket::RecvFromFuture UdpSocket::recv_from(std::vector<char> buf) {
  return RecvFromFuture(state_, reactor::recvmsg(fd(), std::move(buf)), local_,
                        "recv_from on");
}

absl::Status UdpSocket::connect(const SocketAddr& peer) {
  if (!state_) return absl::FailedPreconditionError("udp connect: the socket was moved from");
  if (::connect(state_->fd.get(), peer.as_sockaddr(), peer.len()) != 0) {
    return errno_status(errno, absl::StrCat("udp connect to ", peer.to_string()));
  }
  state_->peer = peer;
  connected_ = true;
  return absl::OkStatus();
}

UdpSocket::SendFuture UdpSocket::send(std::vector<char> buf) {
  const SocketAddr where = state_ ? state_->peer : SocketAddr();
  return SendFuture(state_, reactor::send(fd(), std::move(buf)), where, "send to");
}

UdpSocket::RecvFuture UdpSocket::recv(std::vector<char> buf) {
  const SocketAddr where = state_ ? state_->peer : SocketAddr();
  return RecvFuture(state_, reactor::recv(fd(), std::move(buf)), where, "recv from");
}

absl::StatusOr<SocketAddr> UdpSocket::peer_addr() const {
  if (!connected_ || !state_) {
    return absl::FailedPreconditionError(
        absl::StrCat("udp socket ", local_.to_string(), " is not connected"));
  }
  return state_->peer;
}

}  // namespace pollux::net
