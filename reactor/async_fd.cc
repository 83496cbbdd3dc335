#include "reactor/async_fd.h"

#include "absl/strings/str_cat.h"
#include "future/assert.h"
#include "reactor/errno_status.h"

namespace pollux::reactor {

void ReadyGuard::clear_ready() noexcept {
  if (afd_ == nullptr || afd_->backend_ == nullptr) return;
  afd_->backend_->clear_ready(afd_->reg_, interest_, tick_);
}

namespace detail {

OpId ReadyWaitSpec::start(Backend& b) {
  POLLUX_CHECK(afd->backend_ == &b,
               "an AsyncFd's future was polled on a thread other than its backend's");
  if (afd->backend_ == nullptr) return OpId{};
  return b.start_ready_wait(afd->reg_, interest);
}

absl::StatusOr<ReadyGuard> ReadyWaitSpec::finish(Backend& b, OpId id) {
  const int32_t res = b.take_result(id);
  if (res < 0) return errno_status(-res, absl::StrCat("readiness of fd ", afd->fd_));
  const uint32_t r = static_cast<uint32_t>(res);
  return ReadyGuard(afd, interest, r & ready::kAll, r >> ready::kReadyTickShift);
}

}  // namespace detail

absl::StatusOr<AsyncFd> AsyncFd::create(int fd) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("AsyncFd::create: bad fd ", fd));
  Backend* b = current_backend();
  if (b == nullptr) {
    return absl::FailedPreconditionError(
        "AsyncFd::create outside a runtime with I/O; call it inside block_on (or a task) on a "
        "runtime built with Runtime::Builder().enable_io()");
  }
  FdOwner owner(fd);
  if (!owner.claimed()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "AsyncFd::create: fd ", fd,
        " is already owned by pollux (a socket's, or another AsyncFd's), or is beyond the "
        "fd table; use that owner's operations instead"));
  }
  const OpId reg = b->start_ready_register(fd);
  if (!reg.valid()) {
    return absl::UnavailableError(
        absl::StrCat("AsyncFd::create: the backend has no room to register fd ", fd,
                     " right now; retry after the next tick"));
  }
  if (reg.core->state == OpState::kCompleted) {
    const int32_t res = b->take_result(reg);
    return errno_status(res < 0 ? -res : EINVAL, absl::StrCat("AsyncFd::create on fd ", fd));
  }
  return AsyncFd(b, reg, std::move(owner), TaskPin::current_keeping_task(), fd);
}

AsyncFd& AsyncFd::operator=(AsyncFd&& o) noexcept {
  if (this != &o) {
    reset();
    backend_ = std::exchange(o.backend_, nullptr);
    reg_ = std::exchange(o.reg_, OpId{});
    owner_ = std::move(o.owner_);
    pin_ = std::move(o.pin_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

void AsyncFd::reset() noexcept {
  if (reg_.valid()) {
    POLLUX_CHECK(current_backend() == backend_,
                 "an AsyncFd was dropped on a thread other than its backend's");
    backend_->cancel(std::exchange(reg_, OpId{}));
  }
  owner_.release();  // epoll: the registration leaves the set before the fd can close
  pin_.reset();
  backend_ = nullptr;
}

}  // namespace pollux::reactor
