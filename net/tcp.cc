#include "net/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "reactor/errno_status.h"

namespace pollux::net {
namespace detail {

namespace {
absl::Status closed_stream(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": the stream was moved from (or split)"));
}
}  // namespace

ReadFuture stream_read(const std::shared_ptr<SocketState>& s, std::vector<char> buf) {
  const SocketAddr where = s ? s->peer : SocketAddr();
  return ReadFuture(s, reactor::recv(fd_of(s), std::move(buf)), where, "read from");
}

WriteFuture stream_write(const std::shared_ptr<SocketState>& s, std::vector<char> buf) {
  const SocketAddr where = s ? s->peer : SocketAddr();
  return WriteFuture(s, reactor::send(fd_of(s), std::move(buf)), where, "write to");
}

WriteAllFuture stream_write_all(std::shared_ptr<SocketState> s, std::vector<char> buf,
                                size_t len) {
  return WriteAllFuture(std::move(s), std::move(buf), len);
}

bool WriteAllFuture::poll_into(Context& cx, std::optional<WriteAllResult>& out) {
  // The result, built in `out`: every way out of this loop ends with one.
  auto finish = [&](absl::Status status) {
    out.emplace(MadeBy{[&] { return WriteAllResult{std::move(status), std::move(buf_), off_}; }});
    return true;
  };
  if (!state_) return finish(closed_stream("write_all"));
  for (;;) {
    if (!op_.has_value()) {
      if (off_ >= end_) return finish(absl::OkStatus());
      op_.emplace(reactor::send(state_->fd.get(), std::move(buf_), 0, off_, end_));
    }
    std::optional<reactor::IoResult> r;
    if (!op_->poll_into(cx, r)) return false;
    op_.reset();
    buf_ = std::move(r->buf);
    if (!r->n.ok()) {
      return finish(annotate(r->n.status(), absl::StrCat("write to ", peer_name(*state_))));
    }
    if (*r->n == 0) {
      return finish(absl::DataLossError(
          absl::StrCat("write to ", peer_name(*state_), ": the socket accepted 0 bytes")));
    }
    off_ += *r->n;
  }
}

Task<absl::StatusOr<std::vector<char>>> stream_read_exact(std::shared_ptr<SocketState> s,
                                                          size_t n) {
  if (!s) co_return closed_stream("read_exact");
  // Each round reads into buf[got, n): a short read costs one more round.
  std::vector<char> buf(n);
  size_t got = 0;
  while (got < n) {
    reactor::IoResult r = co_await reactor::recv(s->fd.get(), std::move(buf), 0, got, n);
    buf = std::move(r.buf);
    if (!r.n.ok()) co_return annotate(r.n.status(), absl::StrCat("read from ", peer_name(*s)));
    if (*r.n == 0) {
      co_return absl::OutOfRangeError(absl::StrCat("read_exact from ", peer_name(*s),
                                                   ": end of stream after ", got, " of ", n,
                                                   " bytes"));
    }
    got += *r.n;
  }
  co_return buf;
}

absl::Status stream_shutdown_write(const std::shared_ptr<SocketState>& s) {
  if (!s) return closed_stream("shutdown_write");
  if (::shutdown(s->fd.get(), SHUT_WR) != 0) {
    return errno_status(errno, absl::StrCat("shutdown_write to ", peer_name(*s)));
  }
  return absl::OkStatus();
}

AcceptConv::Output AcceptConv::convert(absl::StatusOr<reactor::Accepted>&& a,
                                       const std::shared_ptr<SocketState>&,
                                       const SocketAddr& where, const char* verb) {
  if (!a.ok()) return annotate(a.status(), verb, where);
  // SAFETY: sockaddr_storage may be viewed as a sockaddr.
  absl::StatusOr<SocketAddr> peer =
      SocketAddr::from_sockaddr(reinterpret_cast<const sockaddr*>(&a->peer), a->peer_len);
  if (!peer.ok()) return annotate(peer.status(), verb, where);
  auto st = std::make_shared<SocketState>(std::move(a->fd));
  st->peer = *peer;
  return std::make_pair(TcpStream(std::move(st)), *peer);
}

}  // namespace detail

Task<absl::StatusOr<TcpStream>> TcpStream::connect(SocketAddr addr) {
  absl::StatusOr<OwnedFd> fd = detail::new_socket(addr, SOCK_STREAM, "connect to");
  if (!fd.ok()) co_return fd.status();
  auto st = std::make_shared<detail::SocketState>(std::move(*fd));
  st->peer = addr;
  absl::Status s = co_await reactor::connect(st->fd.get(), addr.as_sockaddr(), addr.len());
  if (!s.ok()) co_return detail::annotate(s, "connect to", addr);
  co_return TcpStream(std::move(st));
}

absl::Status TcpStream::set_nodelay(bool on) {
  if (!state_) return detail::closed_stream("set_nodelay");
  return detail::set_int_option(state_->fd.get(), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0,
                                absl::StrCat("set TCP_NODELAY on stream to ",
                                             state_->peer.to_string()));
}

absl::StatusOr<bool> TcpStream::nodelay() const {
  if (!state_) return detail::closed_stream("nodelay");
  absl::StatusOr<int> v = detail::get_int_option(
      state_->fd.get(), IPPROTO_TCP, TCP_NODELAY,
      absl::StrCat("get TCP_NODELAY on stream to ", state_->peer.to_string()));
  if (!v.ok()) return v.status();
  return *v != 0;
}

absl::StatusOr<SocketAddr> TcpStream::local_addr() const {
  if (!state_) return detail::closed_stream("local_addr");
  return detail::local_addr_of(state_->fd.get());
}

absl::StatusOr<TcpListener> TcpListener::bind(const SocketAddr& addr) {
  return bind(addr, Options{});
}

absl::StatusOr<TcpListener> TcpListener::bind(const SocketAddr& addr, const Options& options) {
  const std::string where = absl::StrCat("bind to ", addr.to_string());
  absl::StatusOr<OwnedFd> fd = detail::new_socket(addr, SOCK_STREAM, "bind to");
  if (!fd.ok()) return fd.status();
  absl::Status s = detail::set_int_option(fd->get(), SOL_SOCKET, SO_REUSEADDR, 1,
                                          absl::StrCat(where, ": SO_REUSEADDR"));
  if (!s.ok()) return s;
  if (options.reuse_port) {
    s = detail::set_int_option(fd->get(), SOL_SOCKET, SO_REUSEPORT, 1,
                               absl::StrCat(where, ": SO_REUSEPORT"));
    if (!s.ok()) return s;
  }
  if (::bind(fd->get(), addr.as_sockaddr(), addr.len()) != 0) return errno_status(errno, where);
  if (::listen(fd->get(), options.backlog) != 0) {
    return errno_status(errno, absl::StrCat("listen on ", addr.to_string()));
  }
  absl::StatusOr<SocketAddr> local = detail::local_addr_of(fd->get());
  if (!local.ok()) return detail::annotate(local.status(), where);
  auto st = std::make_shared<detail::SocketState>(std::move(*fd));
  return TcpListener(std::move(st), *local);
}

TcpListener::AcceptFuture TcpListener::accept() {
  return AcceptFuture(state_, reactor::accept(detail::fd_of(state_)), local_, "accept on");
}

Incoming TcpListener::incoming() { return Incoming(state_, local_); }

Incoming::Incoming(std::shared_ptr<detail::SocketState> listener, const SocketAddr& local)
    : listener_(std::move(listener)),
      local_(local),
      accepts_(std::make_unique<reactor::AcceptStream>(detail::fd_of(listener_))) {}

Poll<Incoming::Next::Output> Incoming::Next::poll(Context& cx) {
  Poll<absl::StatusOr<OwnedFd>> p = inner_.poll(cx);
  if (p.is_pending()) return Pending{};
  absl::StatusOr<OwnedFd> fd = std::move(p).value();
  if (!fd.ok()) return Ready<Output>(detail::annotate(fd.status(), "accept on", local_));
  absl::StatusOr<SocketAddr> peer = detail::peer_addr_of(fd->get());
  if (!peer.ok()) return Ready<Output>(detail::annotate(peer.status(), "accept on", local_));
  auto st = std::make_shared<detail::SocketState>(std::move(*fd));
  st->peer = *peer;
  return Ready<Output>(TcpStream(std::move(st)));
}

}  // namespace pollux::net
