// RecvStream: the bytes arriving on one connected stream socket, as a
// stream of buffer leases from one multishot recv.
//
//   reactor::RecvStream in(fd);
//   for (;;) {
//     absl::StatusOr<RecvBuf> b = co_await in.next();
//     if (!b.ok()) break;          // the recv's error (errno_of() says which)
//     if (b->empty()) break;       // end of stream: the peer shut down its writing
//     consume(b->data(), b->size());
//   }                              // each lease gives its buffer back when dropped
//
// On io_uring one multishot recv (Backend::start_recv_multi: IORING_OP_RECV
// with IORING_RECV_MULTISHOT and IOSQE_BUFFER_SELECT) stays armed for the
// connection and the kernel places each arrival in a buffer of the
// backend's provided-buffer ring, so a busy connection costs no submission
// per message. Each next() hands out one arrival as a RecvBuf lease
// (recv_buf.h), at most one buffer's worth (4 KiB by default). When the ring
// runs dry (every buffer queued or leased) the kernel stops the multishot
// with -ENOBUFS; that is not an error here: the backend re-arms it when a
// lease comes back, and no byte is lost or reordered (they wait in the
// socket). The kernel also ends a multishot on its own now and then; the
// next next() arms it again. Backpressure: a stream whose arrivals queue
// unread (IoUringOptions::recv_queued_max, 16 by default, plus what the
// kernel delivers before the pause lands) stops receiving until next() has
// drained them, so a stalled reader leaves the bytes in the socket, where
// TCP flow control holds the peer back, rather than in the shared ring. The ring is the worker's, shared by every
// stream on it: arrivals queued unread in one stream hold buffers another
// stream may be waiting for. So read each stream from its own task (as a
// server does, a task per connection): a task that waits on stream A while
// B's arrivals sit unread can wait for ever once the ring is dry.
//
// On a backend without multishot recv (epoll, test backends;
// Backend::supports_recv_multi) next() makes one plain recv into a 4 KiB
// buffer it then hands over in the lease: the same stream of bytes, one
// syscall per next(), so code written against RecvStream runs on both.
//
// End of stream is an empty lease (size() == 0, as read() returning 0 in
// TcpStream and tokio), and every next() after it says the same; errors are
// absl::Status naming the recv ("recv from fd N: ...", as recv()), and the next next()
// after one tries again.
//
// Cancellation: dropping a next() future loses nothing (what arrives stays
// queued in the stream, in the fallback's recv, or in the socket). Dropping
// the stream cancels the multishot; data the kernel had already placed in
// buffers and nobody took (queued, or arriving before the cancel lands) is
// lost: its buffers go back to the ring unread. So drop the stream only
// when done reading the connection. Leases already handed out stay valid.
//
// Thread-safety: as AcceptStream: the stream and its futures belong to the
// thread of the backend it was first polled on (checked); it must outlive
// its next() futures and must not outlive the socket. While armed it pins
// the arming task to that worker (TaskPin), and after the end of the
// stream until it is dropped. Leases are dropped on that thread too, before
// the runtime is destroyed (recv_buf.h). Limit (multi_thread): a lease
// moved to a task on another worker, or kept after its stream is dropped
// by a task that then migrates, is a CHECK failure when dropped there
// (DESIGN's MPSC return queue for such leases is not built yet): consume
// leases in the task that reads the stream.
#ifndef POLLUX_REACTOR_RECV_STREAM_H_
#define POLLUX_REACTOR_RECV_STREAM_H_

#include <cstddef>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "executor/context.h"
#include "future/future.h"
#include "future/poll_into.h"
#include "reactor/backend.h"
#include "reactor/ops.h"
#include "reactor/recv_buf.h"

namespace pollux::reactor {

// The fallback's buffer (a provided buffer's default size, too).
inline constexpr size_t kRecvStreamFallbackBytes = 4096;

// The bytes arriving on a connected stream socket (see above).
class RecvStream {
 public:
  // Receives from `fd` (a connected stream socket the caller keeps open).
  explicit RecvStream(int fd) noexcept : fd_(fd) {}
  ~RecvStream();
  RecvStream(const RecvStream&) = delete;
  RecvStream& operator=(const RecvStream&) = delete;

  // The future next() returns: the next arrival; dropping it loses nothing.
  class [[nodiscard]] Next {
   public:
    using Output = absl::StatusOr<RecvBuf>;
    Poll<Output> poll(Context& cx) {
      std::optional<Output> out;
      return poll_from(stream_->poll_next(cx, out), out);
    }
    // poll(), with the lease built in `out` (future/poll_into.h).
    bool poll_into(Context& cx, std::optional<Output>& out) {
      return stream_->poll_next(cx, out);
    }

   private:
    friend class RecvStream;
    explicit Next(RecvStream* s) noexcept : stream_(s) {}
    RecvStream* stream_;
  };

  // The next bytes received (a lease), an empty lease at the end of the
  // stream, or the recv's error.
  Next next() noexcept { return Next(this); }

  // Arrivals the kernel delivered that next() has not handed out yet.
  size_t queued() const noexcept;
  // Whether the stream runs on a multishot recv (known after the first poll).
  bool multishot() const noexcept { return mode_ == Mode::kMultishot; }

 private:
  // How next() receives: not decided before the first poll, then one of
  // the two for good.
  enum class Mode { kUnknown, kMultishot, kFallback };
  // Next::poll_into: true, with the arrival in `out`, or Pending.
  bool poll_next(Context& cx, std::optional<absl::StatusOr<RecvBuf>>& out);
  bool poll_fallback(Context& cx, std::optional<absl::StatusOr<RecvBuf>>& out);

  int fd_;
  Backend* backend_ = nullptr;
  Mode mode_ = Mode::kUnknown;
  bool eof_ = false;
  OpId id_;  // the multishot recv (invalid: not armed)
  // Held while the multishot is armed (its backend's worker owns the op);
  // it keeps the arming task's cell alive: the stream may outlive it.
  TaskPin pin_;
  // The fallback's recv in flight: kept here, so a dropped next() loses
  // nothing.
  std::optional<DataOp> fallback_;
  // The fallback's buffer between recvs (shared with the lease holding it).
  std::shared_ptr<detail::RecvSpare> spare_;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_RECV_STREAM_H_
