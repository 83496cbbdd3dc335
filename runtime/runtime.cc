#include "runtime/runtime.h"

#include "executor/thread_parker.h"
#include "timer/time_driver.h"

namespace pollux {

absl::StatusOr<Runtime> Runtime::Builder::build() {
  if (multi_thread_) {
    return absl::UnimplementedError("only the current_thread runtime flavour exists so far");
  }
  auto inner = std::make_unique<Inner>();
  Driver* driver;
  if (io_) {
    absl::StatusOr<std::unique_ptr<reactor::IoUringDriver>> d =
        reactor::IoUringDriver::create(uring_);
    if (!d.ok()) return d.status();
    inner->io = std::move(*d);
    if (time_) inner->timers = &inner->io->timers();
    driver = inner->io.get();
  } else if (time_) {
    auto td = std::make_unique<timer::TimeDriver>();
    inner->timers = &td->queue();
    driver = td.get();
    inner->other_driver = std::move(td);
  } else {
    inner->other_driver = std::make_unique<ThreadParker>();
    driver = inner->other_driver.get();
  }
  inner->executor = std::make_unique<LocalExecutor>(*driver, /*bind_lazily=*/true);
  return Runtime(std::move(inner));
}

Runtime::Inner::~Inner() {
  if (executor) {
    // Futures dropped at shutdown may cancel I/O ops and timers: they find
    // their driver through this thread's current one.
    Enter enter(*this);
    executor.reset();
  }
  // The driver drains the ring (every op's memory back from the kernel) and
  // closes it; then the eventfd goes with its unparker.
  io.reset();
  other_driver.reset();
}

Runtime::~Runtime() = default;

absl::Status Runtime::enter_check() {
  const std::thread::id self = std::this_thread::get_id();
  if (inner_->thread == std::thread::id()) {
    inner_->thread = self;
  } else if (inner_->thread != self) {
    return absl::FailedPreconditionError(
        "Runtime::block_on called from a thread other than the one the current_thread runtime "
        "is bound to (the first thread that ran it); use Runtime::handle().spawn() from other "
        "threads");
  }
  if (detail::current_core() != nullptr) {
    return absl::FailedPreconditionError(
        "Runtime::block_on called from inside a task; co_await the future instead");
  }
  if (inner_->io && !inner_->ring_enabled) {
    absl::Status s = inner_->io->enable_on_current_thread();
    if (!s.ok()) return s;
    inner_->ring_enabled = true;
  }
  return absl::OkStatus();
}

Handle Runtime::handle() const { return Handle(shared()); }

detail::Shared* Runtime::shared() const noexcept { return inner_->executor->shared_for_handle(); }
reactor::IoUringDriver* Runtime::io_driver() const noexcept { return inner_->io.get(); }
timer::TimerQueue* Runtime::timer_queue() const noexcept { return inner_->timers; }

}  // namespace pollux
