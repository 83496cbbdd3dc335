#include "reactor/accept_stream.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "future/assert.h"
#include "reactor/errno_status.h"
#include "reactor/ops.h"

namespace pollux::reactor {

bool is_accept_exhaustion(int err) noexcept {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

AcceptStream::~AcceptStream() {
  if (!id_.valid() && !backoff_id_.valid()) return;
  POLLUX_CHECK(current_backend() == backend_,
               "an AcceptStream was dropped on a thread other than its backend's");
  // The backend closes what it delivered and nobody took, and whatever the
  // kernel still delivers before the cancel lands.
  if (id_.valid()) backend_->cancel(id_);
  if (backoff_id_.valid()) backend_->cancel(backoff_id_);
}

bool AcceptStream::backing_off(Context& cx) {
  if (!backoff_id_.valid()) {
    if (backoff_due_ == absl::ZeroDuration()) return false;
    backoff_id_ = backend_->start_timeout(std::exchange(backoff_due_, absl::ZeroDuration()));
    if (!backoff_id_.valid()) {
      // No slot this tick: wait one tick instead (still no busy re-arm).
      backoff_due_ = kMinAcceptBackoff;
      cx.waker().wake_by_ref();
      return true;
    }
    ++backoffs_;
    if (!pin_.holds()) pin_ = TaskPin::current_keeping_task();  // the timeout is this worker's
  }
  OpCore& core = *backoff_id_.core;
  if (core.state == OpState::kReady) backend_->resume(backoff_id_);
  if (core.state != OpState::kCompleted) {
    if (!core.waker.will_wake(cx.waker())) core.waker = cx.waker();
    return true;
  }
  // -ETIME (io_uring) or 0 (epoll): expired; anything else ends it too, and
  // the next accept says whether descriptors came free.
  (void)backend_->take_result(std::exchange(backoff_id_, OpId{}));
  if (!id_.valid()) pin_.reset();
  return false;
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
  if (backing_off(cx)) {
    cx.budget().refund();
    return Pending{};
  }
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
          if (is_accept_exhaustion(-next.res)) {
            // The connection stays in the backlog; the next next() waits
            // before asking again (see the header).
            backoff_due_ = next_backoff_;
            next_backoff_ = std::min(next_backoff_ * 2, kMaxAcceptBackoff);
          }
          return Ready<Out>(errno_status(
              -next.res, absl::StrCat("accept on fd ", listen_fd_,
                                      is_accept_exhaustion(-next.res)
                                          ? " (the next accept waits a backoff; close "
                                            "connections or raise RLIMIT_NOFILE)"
                                          : "")));
        }
        next_backoff_ = kMinAcceptBackoff;
        return Ready<Out>(OwnedFd(next.res));
      case MultiNext::Kind::kPending:
        cx.budget().refund();
        return Pending{};
      case MultiNext::Kind::kEnded:
        // The kernel ended the multishot and everything it sent was handed out.
        backend_->cancel(std::exchange(id_, OpId{}));
        if (backoff_due_ != absl::ZeroDuration()) {
          // Exhausted: wait before re-arming (backing_off keeps pin_).
          if (backing_off(cx)) {
            cx.budget().refund();
            return Pending{};
          }
        }
        if (!backoff_id_.valid()) pin_.reset();
        break;
    }
  }
  cx.waker().wake_by_ref();
  return Pending{};
}

}  // namespace pollux::reactor
