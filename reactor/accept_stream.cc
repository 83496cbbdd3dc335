#include "reactor/accept_stream.h"

#include "absl/strings/str_cat.h"
#include "future/assert.h"
#include "reactor/errno_status.h"
#include "reactor/ops.h"

namespace pollux::reactor {

AcceptStream::~AcceptStream() {
  if (!id_.valid()) return;
  POLLUX_CHECK(current_backend() == backend_,
               "an AcceptStream was dropped on a thread other than its backend's");
  // The backend closes what it delivered and nobody took, and whatever the
  // kernel still delivers before the cancel lands.
  backend_->cancel(id_);
}

size_t AcceptStream::queued() const noexcept {
  return id_.valid() ? backend_->queued(id_) : 0;
}

Poll<absl::StatusOr<OwnedFd>> AcceptStream::poll_next(Context& cx) {
  using Out = absl::StatusOr<OwnedFd>;
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (backend_ == nullptr) {
    backend_ = current_backend();
    if (backend_ == nullptr) {
      return Ready<Out>(absl::FailedPreconditionError(
          "AcceptStream polled on a thread with no I/O backend; run it inside a runtime "
          "built with Runtime::Builder().enable_io()"));
    }
  }
  POLLUX_CHECK(current_backend() == backend_,
               "an AcceptStream was polled on a thread other than its backend's");
  // At most twice: a multishot that ended with nothing left is armed again.
  for (int round = 0; round < 2; ++round) {
    if (!id_.valid()) {
      id_ = backend_->start_accept_multi(listen_fd_);
      if (!id_.valid()) {
        cx.waker().wake_by_ref();  // no room this tick: try again next tick
        return Pending{};
      }
      pin_ = TaskPin::current_keeping_task();  // the multishot lives in this worker's backend
    }
    const MultiNext next = backend_->poll_multi(id_, cx.waker());
    switch (next.kind) {
      case MultiNext::Kind::kItem:
        if (next.res < 0) {
          return Ready<Out>(errno_status(-next.res, absl::StrCat("accept on fd ", listen_fd_)));
        }
        return Ready<Out>(OwnedFd(next.res));
      case MultiNext::Kind::kPending:
        cx.budget().refund();
        return Pending{};
      case MultiNext::Kind::kEnded:
        // The kernel ended the multishot and everything it sent was handed out.
        backend_->cancel(std::exchange(id_, OpId{}));
        pin_.reset();
        break;
    }
  }
  cx.waker().wake_by_ref();
  return Pending{};
}

}  // namespace pollux::reactor
