#include "runtime/runtime.h"

#include "executor/thread_parker.h"
#include "timer/time_driver.h"

namespace pollux {

namespace detail {

// What a Runtime owns, in destruction order from the bottom up: the
// executor goes first (its tasks' futures may cancel ops and timers of the
// driver), then the driver.
struct RuntimeInner {
  std::unique_ptr<reactor::IoUringDriver> io;
  std::unique_ptr<Driver> other_driver;  // TimeDriver or ThreadParker
  timer::TimerQueue* timers = nullptr;   // set when time is enabled
  std::unique_ptr<LocalExecutor> executor;
  // Runtime thread only, after the executor bound it.
  bool bound = false;
  bool ring_enabled = false;

  RuntimeContext context() const noexcept {
    RuntimeContext ctx;
    ctx.backend = io.get();
    ctx.timers = timers;
    return ctx;
  }

  ~RuntimeInner() {
    if (executor) {
      // Futures dropped at shutdown may cancel I/O ops and timers: they find
      // their driver through this thread's context.
      RuntimeContext::Enter entered(context());
      executor.reset();
    }
    // The driver drains the ring (every op's memory back from the kernel)
    // and closes it; then the eventfd goes with its unparker.
    io.reset();
    other_driver.reset();
  }
};

}  // namespace detail

absl::StatusOr<Runtime> Runtime::Builder::build() {
  if (multi_thread_) {
    return absl::UnimplementedError("only the current_thread runtime flavour exists so far");
  }
  auto inner = std::make_unique<detail::RuntimeInner>();
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

Runtime::Runtime(std::unique_ptr<detail::RuntimeInner> inner) : inner_(std::move(inner)) {}
Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&&) noexcept = default;
Runtime::~Runtime() = default;

absl::Status Runtime::enter_check() {
  if (RuntimeContext::current().scheduler != nullptr) {
    return absl::FailedPreconditionError(
        "Runtime::block_on called from inside a task; co_await the future instead");
  }
  // The executor's owner binding is one compare-exchange: of two threads
  // racing their first block_on, exactly one becomes the runtime thread.
  if (!inner_->executor->try_bind_to_current_thread()) {
    return absl::FailedPreconditionError(
        "Runtime::block_on called from a thread other than the one the current_thread runtime "
        "is bound to (the first thread that ran it); use Runtime::handle().spawn() from other "
        "threads");
  }
  if (!inner_->bound) {
    // The runtime thread owns the timer wheel from now on.
    if (inner_->timers != nullptr) inner_->timers->bind_to_current_thread();
    inner_->bound = true;
  }
  if (inner_->io && !inner_->ring_enabled) {
    absl::Status s = inner_->io->enable_on_current_thread();
    if (!s.ok()) return s;
    inner_->ring_enabled = true;
  }
  return absl::OkStatus();
}

LocalExecutor& Runtime::executor() const noexcept { return *inner_->executor; }
RuntimeContext Runtime::context() const noexcept { return inner_->context(); }
Handle Runtime::handle() const { return Handle(inner_->executor->scheduler()); }
reactor::IoUringDriver* Runtime::io_driver() const noexcept { return inner_->io.get(); }
timer::TimerQueue* Runtime::timer_queue() const noexcept { return inner_->timers; }

}  // namespace pollux
