#include "reactor/accept_stream.h"

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "future/assert.h"
#include "reactor/errno_status.h"

namespace pollux::reactor {

AcceptStream::~AcceptStream() {
  if (index_ == OpTable::kNone) return;
  POLLUX_DCHECK(current_driver() == driver_,
                "an AcceptStream was dropped on a thread other than its driver's");
  OpSlot& slot = driver_->ops().at(index_);
  // Connections delivered but never handed out belong to nobody: close them.
  for (const CqeResult& r : slot.more) {
    if (r.res >= 0) ::close(r.res);
  }
  slot.more.clear();
  if (slot.state == SlotState::kCompleted) {
    driver_->ops().release(index_);
  } else {
    // The driver closes whatever the kernel still delivers before the cancel.
    driver_->cancel_op(index_);
  }
}

size_t AcceptStream::queued() const noexcept {
  return index_ == OpTable::kNone ? 0 : driver_->ops().at(index_).more.size();
}

bool AcceptStream::arm() {
  io_uring_sqe* sqe = driver_->get_sqe();
  if (sqe == nullptr) return false;
  index_ = driver_->ops().allocate();
  driver_->ops().at(index_).multishot = true;
  driver_->prep_accept(sqe, index_, listen_fd_);
  return true;
}

Poll<absl::StatusOr<OwnedFd>> AcceptStream::poll_next(Context& cx) {
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (driver_ == nullptr) {
    driver_ = current_driver();
    if (driver_ == nullptr) {
      return Ready<absl::StatusOr<OwnedFd>>(absl::FailedPreconditionError(
          "AcceptStream polled on a thread with no io_uring driver; run it inside a runtime "
          "built with Runtime::Builder().enable_io()"));
    }
  }
  POLLUX_DCHECK(current_driver() == driver_,
                "an AcceptStream was polled on a thread other than its driver's");
  if (index_ != OpTable::kNone) {
    OpSlot& slot = driver_->ops().at(index_);
    if (!slot.more.empty()) {
      CqeResult r = slot.more.pop_front();
      if (r.res < 0) {
        return Ready<absl::StatusOr<OwnedFd>>(
            errno_status(-r.res, absl::StrCat("accept on fd ", listen_fd_)));
      }
      return Ready<absl::StatusOr<OwnedFd>>(OwnedFd(r.res));
    }
    if (slot.state == SlotState::kCompleted) {
      // The kernel ended the multishot and everything it sent was handed out.
      driver_->ops().release(index_);
      index_ = OpTable::kNone;
    }
  }
  if (index_ == OpTable::kNone && !arm()) {
    cx.waker().wake_by_ref();  // no SQE this tick: try again next tick
    return Pending{};
  }
  OpSlot& slot = driver_->ops().at(index_);
  if (!slot.waker.will_wake(cx.waker())) slot.waker = cx.waker();
  cx.budget().refund();
  return Pending{};
}

}  // namespace pollux::reactor
