// UdpSocket: datagrams on the reactor's operation futures.
//
//   absl::StatusOr<UdpSocket> s = UdpSocket::bind(SocketAddr::ipv4_loopback(0));
//   reactor::IoResult w = co_await s->send_to(bytes, peer);
//   RecvFromResult r = co_await s->recv_from(std::vector<char>(1500));
//   // r.buf[0, *r.n) came from r.from
//
// Buffers move in and come back in the result, as for TcpStream. A datagram
// longer than the buffer is truncated: the rest is lost and `truncated` is
// set. send_to/recv_from use sendmsg/recvmsg; after connect(), send/recv talk
// to the connected peer only (the kernel drops datagrams from others).
//
// Errors carry the address in the message ("send_to 127.0.0.1:9: ...") and
// the errno (reactor/errno_status.h). A datagram to a port nobody listens on
// may make a later operation on a connected socket fail with ECONNREFUSED
// (kUnavailable), as the kernel reports the ICMP error.
//
// Thread-safety: used from one thread at a time; its futures are polled and
// dropped on their backend's thread. The fd lives in shared state that every
// operation in flight also owns, so dropping the socket never closes the fd
// under a pending operation.
#ifndef POLLUX_NET_UDP_H_
#define POLLUX_NET_UDP_H_

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/internal/socket.h"
#include "net/socket_addr.h"
#include "reactor/ops.h"

namespace pollux::net {

// A received datagram: its length (or the error), the buffer (always handed
// back), the sender, and whether it was longer than the buffer.
struct RecvFromResult {
  absl::StatusOr<size_t> n;
  std::vector<char> buf;
  SocketAddr from;
  bool truncated = false;
};

namespace detail {
struct RecvFromConv {
  using Output = RecvFromResult;
  static Output convert(reactor::RecvMsgResult&& r, const std::shared_ptr<SocketState>&,
                        const SocketAddr& where, const char* verb);
};
}  // namespace detail

// A UDP socket (see above); one thread at a time.
class UdpSocket {
 public:
  using SendToFuture = detail::SocketOp<reactor::SendMsgOp, detail::IoConv>;
  using RecvFromFuture = detail::SocketOp<reactor::RecvMsgOp, detail::RecvFromConv>;
  using SendFuture = detail::SocketOp<reactor::DataOp, detail::IoConv>;
  using RecvFuture = detail::SocketOp<reactor::DataOp, detail::IoConv>;

  // Binds a datagram socket (port 0 picks one; see local_addr()). Address in
  // use -> kAlreadyExists naming it.
  static absl::StatusOr<UdpSocket> bind(const SocketAddr& addr);

  UdpSocket(UdpSocket&&) noexcept = default;
  UdpSocket& operator=(UdpSocket&&) noexcept = default;

  // Sends buf as one datagram to `to`. Output: IoResult (bytes sent).
  // Cancellation: dropping it before Ready cancels the send. On io_uring the
  // datagram may or may not have been sent (datagrams may be lost anyway:
  // retrying is the protocol's business); on epoll it was not sent.
  [[nodiscard]] SendToFuture send_to(std::vector<char> buf, const SocketAddr& to);
  // Receives one datagram into buf. Output: RecvFromResult.
  // Cancellation: dropping it before Ready cancels the receive. On io_uring
  // a datagram the kernel had already delivered into the buffer is lost; on
  // epoll none was taken.
  [[nodiscard]] RecvFromFuture recv_from(std::vector<char> buf);

  // Sets the default peer (connect(2) on a datagram socket: no handshake, no
  // blocking). Afterwards send/recv work, and only that peer's datagrams
  // are received.
  absl::Status connect(const SocketAddr& peer);
  // Sends buf to the connected peer. Cancellation: as send_to.
  [[nodiscard]] SendFuture send(std::vector<char> buf);
  // Receives a datagram from the connected peer (bytes beyond buf.size() are
  // lost). Output: IoResult. Cancellation: as recv_from.
  [[nodiscard]] RecvFuture recv(std::vector<char> buf);

  const SocketAddr& local_addr() const noexcept { return local_; }
  // The connected peer, or FailedPrecondition when not connected.
  absl::StatusOr<SocketAddr> peer_addr() const;
  int fd() const noexcept { return detail::fd_of(state_); }

 private:
  UdpSocket(std::shared_ptr<detail::SocketState> s, SocketAddr local)
      : state_(std::move(s)), local_(local) {}
  std::shared_ptr<detail::SocketState> state_;
  SocketAddr local_;
  bool connected_ = false;
};

}  // namespace pollux::net

#endif  // POLLUX_NET_UDP_H_
