// Unix-domain stream sockets: UnixListener and UnixStream.
//
//   absl::StatusOr<UnixListener> l = UnixListener::bind("/tmp/app.sock");
//   absl::StatusOr<UnixListener> a = UnixListener::bind("@app");  // abstract
//   absl::StatusOr<UnixStream> s = co_await UnixStream::connect("/tmp/app.sock");
//
// Addresses: a filesystem path, or an abstract-namespace name written with a
// leading '@' ("@name" is sun_path "\0name"). A path longer than sun_path
// (107 bytes) or an empty one is InvalidArgument naming it. The listener does
// not unlink its path when dropped (as in tokio): remove it yourself, and a
// stale socket file makes bind fail with kAlreadyExists (EADDRINUSE).
//
// A UnixStream has the TcpStream API for data (read, write, write_all,
// read_exact, shutdown_write, split into the same ReadHalf/WriteHalf), with
// the same buffer-ownership, error and cancellation rules (see tcp.h);
// errors name the path.
//
// Thread-safety: as TcpStream/TcpListener.
#ifndef POLLUX_NET_UNIX_H_
#define POLLUX_NET_UNIX_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "future/task.h"
#include "net/internal/socket.h"
#include "net/tcp.h"
#include "reactor/ops.h"

namespace pollux::net {

class UnixStream;

namespace detail {
struct UnixAcceptConv {
  using Output = absl::StatusOr<UnixStream>;
  static Output convert(absl::StatusOr<reactor::Accepted>&& a,
                        const std::shared_ptr<SocketState>& s, const SocketAddr& where,
                        const char* verb);
};
}  // namespace detail

// A connected Unix-domain stream socket, with TcpStream's data API.
class UnixStream {
 public:
  UnixStream(UnixStream&&) noexcept = default;
  UnixStream& operator=(UnixStream&&) noexcept = default;

  // Connects to the listener at `path` ("@name": abstract). Output: the
  // stream, or the error (nobody listening -> kUnavailable/ECONNREFUSED, no
  // such path -> kNotFound/ENOENT), naming the path.
  // Cancellation (both backends): dropping it before Ready cancels the
  // connect and closes the socket (the listener may have seen a
  // connection). Safe to retry.
  [[nodiscard]] static Task<absl::StatusOr<UnixStream>> connect(std::string path);

  // As TcpStream::read. Cancellation: as TcpStream::read.
  [[nodiscard]] detail::ReadFuture read(std::vector<char> buf) {
    return detail::stream_read(state_, std::move(buf));
  }
  // As TcpStream::write. Cancellation: as TcpStream::write.
  [[nodiscard]] detail::WriteFuture write(std::vector<char> buf) {
    return detail::stream_write(state_, std::move(buf));
  }
  // As TcpStream::write_all. Cancellation: as TcpStream::write_all.
  [[nodiscard]] detail::WriteAllFuture write_all(std::vector<char> buf, size_t len = SIZE_MAX) {
    return detail::stream_write_all(state_, std::move(buf), len);
  }
  // As TcpStream::read_exact. Cancellation: as TcpStream::read_exact.
  [[nodiscard]] Task<absl::StatusOr<std::vector<char>>> read_exact(size_t n) {
    return detail::stream_read_exact(state_, n);
  }
  absl::Status shutdown_write() { return detail::stream_shutdown_write(state_); }
  // The listener's path (connect side) or the listener's path it was
  // accepted on (accept side).
  std::string path() const { return state_ ? state_->unix_name : std::string(); }
  int fd() const noexcept { return detail::fd_of(state_); }
  std::pair<ReadHalf, WriteHalf> split() && {
    std::shared_ptr<detail::SocketState> s = std::move(state_);
    return {ReadHalf(s), WriteHalf(s)};
  }

 private:
  friend struct detail::UnixAcceptConv;
  explicit UnixStream(std::shared_ptr<detail::SocketState> s) : state_(std::move(s)) {}
  std::shared_ptr<detail::SocketState> state_;
};

// A listening Unix-domain socket; it does not unlink its path when dropped.
class UnixListener {
 public:
  using AcceptFuture = detail::SocketOp<reactor::AcceptOp, detail::UnixAcceptConv>;

  // Binds and listens at `path` ("@name": abstract), backlog 1024.
  static absl::StatusOr<UnixListener> bind(absl::string_view path);

  UnixListener(UnixListener&&) noexcept = default;
  UnixListener& operator=(UnixListener&&) noexcept = default;

  // Accepts one connection. Cancellation: as TcpListener::accept.
  [[nodiscard]] AcceptFuture accept();
  const std::string& path() const noexcept { return path_; }
  int fd() const noexcept { return detail::fd_of(state_); }

 private:
  UnixListener(std::shared_ptr<detail::SocketState> s, std::string path)
      : state_(std::move(s)), path_(std::move(path)) {}
  std::shared_ptr<detail::SocketState> state_;
  std::string path_;
};

}  // namespace pollux::net

#endif  // POLLUX_NET_UNIX_H_
