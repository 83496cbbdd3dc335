// AcceptStream: a stream of connections from one multishot accept.
//
//   reactor::AcceptStream incoming(listen_fd);
//   for (;;) {
//     absl::StatusOr<OwnedFd> conn = co_await incoming.next();
//     ...
//   }
//
// One multishot accept (Backend::start_accept_multi; on io_uring an
// IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT) stays armed and delivers
// every new connection as its own result, so a busy listener costs no
// submission per connection. On epoll, next() accepts (accept4 until
// EAGAIN, at most 64 per call) into the same queue, in its own poll, once
// the listener is readable. The op keeps its slot until the backend ends
// the multishot (an error, or the kernel giving up); the next next() then
// arms it again. Accepted sockets are SOCK_NONBLOCK|SOCK_CLOEXEC.
//
// Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM). The
// failed accept leaves the connection in the listener's backlog, and an
// accept made again at once fails again at once: re-arming in a loop would
// burn a core while the server is saturated. So next() hands the error out
// (ResourceExhausted, errno_of() the errno) and the following next() first
// waits a backoff in the backend (a timeout op: no runtime timer needed),
// 10 ms after the first such error, doubling to 100 ms (kMaxAcceptBackoff)
// while they repeat, back to 10 ms once an accept succeeds. A caller's
// `if (!s.ok()) continue;` loop therefore makes at most ~10 accept attempts
// a second while saturated, keeps serving the connections it has, and
// accepts again within 100 ms of a descriptor coming free. (Other errors,
// e.g. ECONNABORTED, concern one connection: the next next() re-arms at
// once.)
//
// Cancellation: dropping a next() future loses nothing (connections that
// arrive stay queued in the stream, or on epoll in the listener's backlog).
// Dropping the stream cancels the multishot accept and closes every
// connection accepted but not handed out, including (io_uring) any the
// kernel still delivers before the cancel lands: no fd ever leaks. On epoll
// only the connections of the last accept burst can be queued; the ones
// nobody accepted stay in the backlog, untouched. A next() dropped during a
// backoff leaves the backoff running in the stream (the next call waits out
// the rest of it); dropping the stream cancels it.
//
// Thread-safety: the stream and its futures belong to the thread of the
// backend it was first polled on (checked). The stream must outlive its
// next() futures. While armed it pins the task that armed it to that
// worker (TaskPin). It may outlive that task (a parent owns the stream, a
// child accepts); on multi_thread, poll and drop it from tasks of one
// worker: create it in the task that accepts, or keep parent and child
// together with spawn_local. A drop on another worker is a CHECK failure
// (its multishot accept can only be cancelled through its own ring).
#ifndef POLLUX_REACTOR_ACCEPT_STREAM_H_
#define POLLUX_REACTOR_ACCEPT_STREAM_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executor/context.h"
#include "future/future.h"
#include "reactor/backend.h"
#include "reactor/owned_fd.h"

namespace pollux::reactor {

// The first and the longest wait after an accept ran out of descriptors or
// memory (see above).
inline constexpr absl::Duration kMinAcceptBackoff = absl::Milliseconds(10);
inline constexpr absl::Duration kMaxAcceptBackoff = absl::Milliseconds(100);

// True for the accept errors that mean "no descriptor or memory right now":
// retrying at once would fail the same way.
bool is_accept_exhaustion(int err) noexcept;

// Connections from one multishot accept on a listening fd (see above).
class AcceptStream {
 public:
  // Accepts on `listen_fd` (a listening socket the caller keeps open).
  explicit AcceptStream(int listen_fd) noexcept : listen_fd_(listen_fd) {}
  ~AcceptStream();
  AcceptStream(const AcceptStream&) = delete;
  AcceptStream& operator=(const AcceptStream&) = delete;

  // The future next() returns: the next accepted connection; dropping it loses
  // nothing.
  class [[nodiscard]] Next {
   public:
    using Output = absl::StatusOr<OwnedFd>;
    Poll<Output> poll(Context& cx) { return stream_->poll_next(cx); }

   private:
    friend class AcceptStream;
    explicit Next(AcceptStream* s) noexcept : stream_(s) {}
    AcceptStream* stream_;
  };

  // The next accepted connection, or the accept's error.
  Next next() noexcept { return Next(this); }

  // Connections the kernel delivered that next() has not handed out yet.
  size_t queued() const noexcept;
  // Backoffs waited so far after EMFILE/ENFILE/ENOBUFS/ENOMEM (tests).
  uint64_t backoffs() const noexcept { return backoffs_; }

 private:
  Poll<absl::StatusOr<OwnedFd>> poll_next(Context& cx);
  // Pending while a backoff timeout is running; starts it when one is due.
  bool backing_off(Context& cx);

  int listen_fd_;
  Backend* backend_ = nullptr;
  OpId id_;
  // The backoff timeout op in flight (invalid: none).
  OpId backoff_id_;
  // The wait the next next() owes before re-arming (zero: none), and the
  // one after that if exhaustion repeats.
  absl::Duration backoff_due_ = absl::ZeroDuration();
  absl::Duration next_backoff_ = kMinAcceptBackoff;
  uint64_t backoffs_ = 0;
  // Held while the multishot or the backoff timeout is armed (its
  // backend's worker owns the op).
  // It keeps the arming task's cell alive: the stream may outlive it.
  TaskPin pin_;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_ACCEPT_STREAM_H_
