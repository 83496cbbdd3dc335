#include "reactor/fd_owner.h"

#include "reactor/internal/fd_records.h"

namespace pollux::reactor {

FdOwner::FdOwner(int fd) noexcept : fd_(fd), epoch_(detail::fd_claim(fd)) {}

void FdOwner::release() noexcept {
  if (epoch_ == 0) return;
  detail::fd_release(fd_, epoch_);
  epoch_ = 0;
}

}  // namespace pollux::reactor
