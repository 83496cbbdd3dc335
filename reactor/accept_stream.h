// AcceptStream: a stream of connections from one multishot accept.
//
//   reactor::AcceptStream incoming(listen_fd);
//   for (;;) {
//     absl::StatusOr<OwnedFd> conn = co_await incoming.next();
//     ...
//   }
//
// One IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT stays armed in the ring
// and delivers every new connection as its own CQE, so a busy listener costs
// no SQE per connection. The op keeps its op-table slot until the kernel
// ends the multishot (a CQE without IORING_CQE_F_MORE: an error, or the
// kernel giving up); the next next() then re-arms it.
//
// Cancellation: dropping a next() future loses nothing (connections that
// arrive stay queued in the stream). Dropping the stream cancels the
// multishot accept and closes every connection accepted but not handed out,
// including any the kernel still delivers before the cancel lands: no fd
// ever leaks.
//
// Thread-safety: the stream and its futures belong to the thread of the
// driver it was first polled on. The stream must outlive its next() futures.
#ifndef POLLUX_REACTOR_ACCEPT_STREAM_H_
#define POLLUX_REACTOR_ACCEPT_STREAM_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "future/future.h"
#include "reactor/io_uring_driver.h"
#include "reactor/op_table.h"
#include "reactor/owned_fd.h"

namespace pollux::reactor {

class AcceptStream {
 public:
  // Accepts on `listen_fd` (a listening socket the caller keeps open).
  explicit AcceptStream(int listen_fd) noexcept : listen_fd_(listen_fd) {}
  ~AcceptStream();
  AcceptStream(const AcceptStream&) = delete;
  AcceptStream& operator=(const AcceptStream&) = delete;

  class [[nodiscard]] Next {
   public:
    using Output = absl::StatusOr<OwnedFd>;
    Poll<Output> poll(Context& cx) { return stream_->poll_next(cx); }

   private:
    friend class AcceptStream;
    explicit Next(AcceptStream* s) noexcept : stream_(s) {}
    AcceptStream* stream_;
  };

  // The next accepted connection (SOCK_CLOEXEC), or the accept's error.
  Next next() noexcept { return Next(this); }

  // Connections the kernel delivered that next() has not handed out yet.
  size_t queued() const noexcept;

 private:
  Poll<absl::StatusOr<OwnedFd>> poll_next(Context& cx);
  bool arm();

  int listen_fd_;
  IoUringDriver* driver_ = nullptr;
  uint32_t index_ = OpTable::kNone;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_ACCEPT_STREAM_H_
