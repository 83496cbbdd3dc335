// TCP on the reactor's operation futures: TcpListener, TcpStream, and the
// ReadHalf/WriteHalf a stream splits into.
//
//   absl::StatusOr<TcpListener> l = TcpListener::bind(*SocketAddr::parse("127.0.0.1:0"));
//   auto [stream, peer] = *co_await l->accept();
//   reactor::IoResult r = co_await stream.read(std::vector<char>(4096));
//   if (r.n.ok() && *r.n > 0) {
//     r.buf.resize(*r.n);  // echo just what was read
//     WriteAllResult w = co_await stream.write_all(std::move(r.buf));
//   }
//
// Buffers: like the reactor, a read or write takes its std::vector<char> by
// value and hands it back in the result (reactor::IoResult{n, buf}), in every
// case, because the kernel may use it until the operation's final completion.
// A read fills buf[0, n) and leaves buf.size() as it was; n == 0 is end of
// stream. A write sends from buf[0] and may be short: write_all loops.
//
// Errors are absl::Status with the peer's (or listener's) address in the
// message, and the errno as payload (reactor/errno_status.h):
//   connect refused        -> kUnavailable,        errno_of == ECONNREFUSED
//   bind: address in use   -> kAlreadyExists,      errno_of == EADDRINUSE
//   peer reset             -> kAborted,            errno_of == ECONNRESET
//   write after peer close -> kFailedPrecondition (EPIPE) or kAborted
//                             (ECONNRESET); never SIGPIPE (MSG_NOSIGNAL).
// Using a moved-from stream or listener gives a status (EBADF or
// FailedPrecondition), never a crash.
//
// Ownership: a socket's fd lives in shared state owned by the stream (or its
// halves) and by every operation future in flight on it, so dropping a
// stream while one of its reads is pending does not close the fd under that
// read: it is closed when the last owner goes. Sockets (created and
// accepted) are SOCK_NONBLOCK|SOCK_CLOEXEC; the backend waits for readiness,
// never a thread. On epoll the socket has one registration for its life,
// shared by both halves, removed before the fd closes (reactor/fd_owner.h).
//
// Thread-safety: a stream, listener or half is used from one thread at a
// time, and its operation futures are polled and dropped on the thread of
// the backend they were started on (as reactor ops). The two halves of a
// split stream may be used by two tasks at once (one reading, one writing).
// Several reads (or several writes) in flight at once on one socket are
// allowed by the kernel but their order is not defined: don't.
#ifndef POLLUX_NET_TCP_H_
#define POLLUX_NET_TCP_H_

#include <cstddef>
#include <algorithm>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "future/task.h"
#include "net/internal/socket.h"
#include "net/socket_addr.h"
#include "reactor/accept_stream.h"
#include "reactor/ops.h"
#include "reactor/recv_stream.h"

namespace pollux::net {

class TcpStream;

// The result of write_all: OK when every byte was sent, else the error; the
// buffer always comes back, with how many of its bytes were sent.
struct WriteAllResult {
  absl::Status status;
  std::vector<char> buf;
  size_t written = 0;
};

namespace detail {
using ReadFuture = SocketOp<reactor::DataOp, IoConv>;
using WriteFuture = SocketOp<reactor::DataOp, IoConv>;

ReadFuture stream_read(const std::shared_ptr<SocketState>& s, std::vector<char> buf);
WriteFuture stream_write(const std::shared_ptr<SocketState>& s, std::vector<char> buf);
// write_all as a hand-written future, not a coroutine: the common case (the
// first send takes every byte) then costs no coroutine frame and no nested
// task poll. Each round sends buf[off, end) and resumes after what the
// kernel took: a short send (a full socket buffer, a signal) costs one more
// round, never lost bytes. A plain send, not sendmsg.
class [[nodiscard]] WriteAllFuture {
 public:
  using Output = WriteAllResult;
  WriteAllFuture(std::shared_ptr<SocketState> s, std::vector<char> buf, size_t len)
      : state_(std::move(s)), buf_(std::move(buf)), end_(std::min(len, buf_.size())) {}
  WriteAllFuture(WriteAllFuture&&) noexcept = default;
  WriteAllFuture& operator=(WriteAllFuture&&) = delete;
  Poll<WriteAllResult> poll(Context& cx) {
    std::optional<WriteAllResult> out;
    return poll_from(poll_into(cx, out), out);
  }
  // poll(), with the result built in `out` (future/poll_into.h).
  bool poll_into(Context& cx, std::optional<WriteAllResult>& out);

 private:
  // Declared before op_, so destroyed after it: the send's cancellation is
  // queued while the fd is still open.
  std::shared_ptr<SocketState> state_;
  std::vector<char> buf_;  // while no send is in flight (else it is op_'s)
  size_t end_;
  size_t off_ = 0;
  std::optional<reactor::DataOp> op_;
};

WriteAllFuture stream_write_all(std::shared_ptr<SocketState> s, std::vector<char> buf,
                                size_t len);
Task<absl::StatusOr<std::vector<char>>> stream_read_exact(std::shared_ptr<SocketState> s,
                                                          size_t n);
absl::Status stream_shutdown_write(const std::shared_ptr<SocketState>& s);

struct AcceptConv {
  using Output = absl::StatusOr<std::pair<TcpStream, SocketAddr>>;
  static Output convert(absl::StatusOr<reactor::Accepted>&& a,
                        const std::shared_ptr<SocketState>& s, const SocketAddr& where,
                        const char* verb);
};
}  // namespace detail

// The bytes arriving on a TcpStream (or ReadHalf) as buffer leases:
// reactor::RecvStream (reactor/recv_stream.h: one multishot recv into the
// io_uring backend's provided buffers, a plain recv per next() on epoll).
// Keeps the socket open as long as it lives. Move-only.
//
//   net::TcpRecvStream in = stream.recv_stream();
//   absl::StatusOr<reactor::RecvBuf> b = co_await in.next();  // empty: end of stream
//
// Do not mix it with read() on the same stream: both take bytes from the
// socket, and the multishot takes them as soon as they arrive.
// Cancellation: as reactor::RecvStream (dropping a next() loses nothing;
// dropping the stream loses what the kernel had already received into
// buffers for it).
class TcpRecvStream {
 public:
  TcpRecvStream(TcpRecvStream&&) noexcept = default;
  TcpRecvStream& operator=(TcpRecvStream&&) noexcept = default;

  // The next bytes received, an empty lease at the end of the stream, or
  // the recv's error.
  [[nodiscard]] reactor::RecvStream::Next next() noexcept { return in_->next(); }
  // Whether it runs on a multishot recv (known after the first next()).
  bool multishot() const noexcept { return in_->multishot(); }
  // Arrivals received and not handed out yet: that many next() calls are
  // ready at once (always 0 on epoll).
  size_t queued() const noexcept { return in_->queued(); }

 private:
  friend class TcpStream;
  friend class ReadHalf;
  explicit TcpRecvStream(std::shared_ptr<detail::SocketState> s)
      : state_(std::move(s)), in_(std::make_unique<reactor::RecvStream>(detail::fd_of(state_))) {}
  // Declared first, destroyed last: the multishot is cancelled before the
  // socket can close.
  std::shared_ptr<detail::SocketState> state_;
  // Heap-held: next() futures point at it, and this wrapper moves.
  std::unique_ptr<reactor::RecvStream> in_;
};

// The read side of a split TcpStream. Shares the socket with its WriteHalf;
// the fd closes when both (and every operation in flight) are gone.
// Dropping a ReadHalf does not shut anything down.
class ReadHalf {
 public:
  // See TcpStream::read. Cancellation: as TcpStream::read.
  [[nodiscard]] detail::ReadFuture read(std::vector<char> buf) {
    return detail::stream_read(state_, std::move(buf));
  }
  // See TcpStream::read_exact. Cancellation: as TcpStream::read_exact.
  [[nodiscard]] Task<absl::StatusOr<std::vector<char>>> read_exact(size_t n) {
    return detail::stream_read_exact(state_, n);
  }
  // See TcpStream::recv_stream.
  TcpRecvStream recv_stream() const { return TcpRecvStream(state_); }
  SocketAddr peer_addr() const { return state_ ? state_->peer : SocketAddr(); }

 private:
  friend class TcpStream;
  friend class UnixStream;
  explicit ReadHalf(std::shared_ptr<detail::SocketState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::SocketState> state_;
};

// The write side of a split TcpStream. Dropping it does not shut down the
// write direction (call shutdown_write); the fd closes when both halves are
// gone.
class WriteHalf {
 public:
  // See TcpStream::write. Cancellation: as TcpStream::write.
  [[nodiscard]] detail::WriteFuture write(std::vector<char> buf) {
    return detail::stream_write(state_, std::move(buf));
  }
  // See TcpStream::write_all. Cancellation: as TcpStream::write_all.
  [[nodiscard]] detail::WriteAllFuture write_all(std::vector<char> buf, size_t len = SIZE_MAX) {
    return detail::stream_write_all(state_, std::move(buf), len);
  }
  absl::Status shutdown_write() { return detail::stream_shutdown_write(state_); }
  SocketAddr peer_addr() const { return state_ ? state_->peer : SocketAddr(); }

 private:
  friend class TcpStream;
  friend class UnixStream;
  explicit WriteHalf(std::shared_ptr<detail::SocketState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::SocketState> state_;
};

// A connected TCP socket. Move-only; closing happens when it (and anything
// sharing its socket) is dropped.
class TcpStream {
 public:
  TcpStream(TcpStream&&) noexcept = default;
  TcpStream& operator=(TcpStream&&) noexcept = default;
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  // Connects to `addr`. Output: the stream, or the error (refused ->
  // kUnavailable with errno ECONNREFUSED; message "connect to <addr>: ...").
  // Cancellation (both backends): dropping it before Ready cancels the
  // connect and closes the socket; the connection may have been established
  // (the peer may see a connection that is then closed at once). Safe to
  // retry.
  [[nodiscard]] static Task<absl::StatusOr<TcpStream>> connect(SocketAddr addr);

  // Receives up to buf.size() bytes into buf. Output: IoResult; n == 0 means
  // the peer shut down its write side (or buf was empty).
  // Cancellation: dropping it before Ready cancels the recv. On io_uring,
  // data the kernel had already copied into the buffer is lost, so retrying
  // may miss it: drop a read only when you are done with the stream (or
  // reading). On epoll a dropped read has had no effect: a retry reads
  // everything.
  [[nodiscard]] detail::ReadFuture read(std::vector<char> buf) {
    return detail::stream_read(state_, std::move(buf));
  }
  // Sends buf (one send; may be short). Output: IoResult with bytes sent.
  // Cancellation: dropping it before Ready cancels the send. On io_uring
  // some prefix of the buffer may have been sent (not safely retryable as a
  // whole); on epoll nothing was sent.
  [[nodiscard]] detail::WriteFuture write(std::vector<char> buf) {
    return detail::stream_write(state_, std::move(buf));
  }
  // Sends all of buf, or its first `len` bytes when len < buf.size(),
  // looping over short writes (one send per round, resuming where the last
  // stopped; no reliance on MSG_WAITALL). Output: WriteAllResult (status, the whole
  // buffer, bytes written). `len` lets a reused buffer keep its size: an
  // echo loop reads n bytes into a 16 KiB buffer and sends those n without
  // resizing (growing a vector back would zero-fill it on every message).
  // Cancellation: dropping it before Ready cancels the send in flight; an
  // unknown prefix of buf has been sent (the completed rounds; on io_uring
  // also part of the round in flight, on epoll not), so the stream's byte
  // sequence is no longer well defined: close the stream.
  [[nodiscard]] detail::WriteAllFuture write_all(std::vector<char> buf, size_t len = SIZE_MAX) {
    return detail::stream_write_all(state_, std::move(buf), len);
  }
  // Reads exactly n bytes, looping over short reads. Output: the n bytes,
  // or the error; end of stream
  // before n bytes is OutOfRange ("... end of stream after k of n bytes"),
  // and the k bytes are lost.
  // Cancellation: dropping it before Ready cancels the read in flight; the
  // bytes read so far are lost (on io_uring also what the read in flight
  // had taken; on epoll that read had taken nothing).
  [[nodiscard]] Task<absl::StatusOr<std::vector<char>>> read_exact(size_t n) {
    return detail::stream_read_exact(state_, n);
  }
  // The bytes arriving on this stream as buffer leases, from one multishot
  // recv on io_uring (TcpRecvStream above); instead of read(), not beside it.
  TcpRecvStream recv_stream() const { return TcpRecvStream(state_); }
  // Shuts down the write direction (the peer reads end of stream); reading
  // still works. A syscall that does not block.
  absl::Status shutdown_write() { return detail::stream_shutdown_write(state_); }
  // TCP_NODELAY (Nagle's algorithm off when true).
  absl::Status set_nodelay(bool on);
  absl::StatusOr<bool> nodelay() const;

  // The peer's address, as known at connect/accept time.
  SocketAddr peer_addr() const { return state_ ? state_->peer : SocketAddr(); }
  // This end's address (getsockname).
  absl::StatusOr<SocketAddr> local_addr() const;
  // The fd, still owned by the stream (for setsockopt and the like).
  int fd() const noexcept { return detail::fd_of(state_); }

  // Splits into a read half and a write half usable from two tasks. The
  // socket stays open until both halves are dropped.
  std::pair<ReadHalf, WriteHalf> split() && {
    std::shared_ptr<detail::SocketState> s = std::move(state_);
    return {ReadHalf(s), WriteHalf(s)};
  }

 private:
  friend struct detail::AcceptConv;
  friend class Incoming;
  explicit TcpStream(std::shared_ptr<detail::SocketState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::SocketState> state_;
};

class Incoming;

// A listening TCP socket.
class TcpListener {
 public:
  // How bind() sets the listening socket up.
  struct Options {
    bool reuse_port = false;  // SO_REUSEPORT (several listeners on one port)
    int backlog = 1024;       // listen(2) backlog
  };
  using AcceptFuture = detail::SocketOp<reactor::AcceptOp, detail::AcceptConv>;

  // Binds (SO_REUSEADDR always) and listens. Port 0 picks a free port
  // (see local_addr()). Address in use -> kAlreadyExists naming the address.
  static absl::StatusOr<TcpListener> bind(const SocketAddr& addr);
  static absl::StatusOr<TcpListener> bind(const SocketAddr& addr, const Options& options);

  TcpListener(TcpListener&&) noexcept = default;
  TcpListener& operator=(TcpListener&&) noexcept = default;

  // Accepts one connection. Output: the stream and the peer's address.
  // Cancellation: dropping it before Ready cancels the accept. On io_uring
  // a connection the kernel accepted meanwhile is closed by the backend (the
  // client sees it closed); on epoll nothing was accepted (the connection
  // waits in the backlog). Safe to retry. Other accepts on the listener are
  // not disturbed: they still get the next connections.
  [[nodiscard]] AcceptFuture accept();

  // A stream of accepted connections on one multishot accept: the kernel
  // keeps accepting without an SQE per connection, which is what a server's
  // accept loop wants. The stream shares the socket, so it stays usable if
  // the listener is dropped first. See Incoming.
  [[nodiscard]] Incoming incoming();

  // The bound address, with the real port when bound to port 0.
  const SocketAddr& local_addr() const noexcept { return local_; }
  int fd() const noexcept { return detail::fd_of(state_); }

 private:
  TcpListener(std::shared_ptr<detail::SocketState> s, SocketAddr local)
      : state_(std::move(s)), local_(local) {}
  std::shared_ptr<detail::SocketState> state_;
  SocketAddr local_;
};

// The connections a TcpListener accepts, one multishot accept armed in the
// backend (reactor/accept_stream.h):
//
//   net::Incoming incoming = listener.incoming();
//   for (;;) {
//     absl::StatusOr<TcpStream> s = co_await incoming.next();
//     if (!s.ok()) continue;  // e.g. EMFILE: the listener itself is fine
//     pollux::spawn([s = std::move(*s)]() mutable -> Task<void> { ... });
//   }
//
// Versus accept(): no SQE per connection (io_uring), but the peer's address is read
// with getpeername(2) (a multishot accept cannot report one per CQE). A peer
// that reset before that is reported as an error from next(), its fd closed.
//
// Cancellation: dropping a next() future loses nothing: connections the
// kernel accepts meanwhile queue in the stream for the next call (on epoll
// they wait in the backlog until next() accepts them). Dropping the Incoming
// cancels the multishot accept and closes every connection accepted but not
// handed out (the clients see them closed; on epoll only those of the last
// accept burst, the rest stay in the backlog); no fd leaks.
//
// Thread-safety: as TcpListener. The Incoming must outlive its next()
// futures (they point into it); moving it is fine when none is pending.
class Incoming {
 public:
  // The future next() returns: the next accepted connection, or an error.
  class [[nodiscard]] Next {
   public:
    using Output = absl::StatusOr<TcpStream>;
    Poll<Output> poll(Context& cx);

   private:
    friend class Incoming;
    Next(reactor::AcceptStream::Next inner, const SocketAddr& local)
        : inner_(inner), local_(local) {}
    reactor::AcceptStream::Next inner_;
    SocketAddr local_;  // names the listener in errors
  };

  Incoming(Incoming&&) noexcept = default;
  Incoming& operator=(Incoming&&) noexcept = default;

  // The next accepted connection, or the error the kernel reported for it.
  // Cancellation: see the class comment (nothing is lost).
  Next next() { return Next(accepts_->next(), local_); }

  // Connections accepted by the kernel and not handed out yet.
  size_t queued() const noexcept { return accepts_->queued(); }

 private:
  friend class TcpListener;
  Incoming(std::shared_ptr<detail::SocketState> listener, const SocketAddr& local);

  // Declared first, destroyed last: the multishot accept is cancelled while
  // the listening fd it runs on is still open.
  std::shared_ptr<detail::SocketState> listener_;
  SocketAddr local_;
  // Heap-held so that Incoming can move while next() futures point into it.
  std::unique_ptr<reactor::AcceptStream> accepts_;
};

}  // namespace pollux::net

#endif  // POLLUX_NET_TCP_H_
