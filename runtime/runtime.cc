#include "runtime/runtime.h"

#include "executor/thread_parker.h"
#include "reactor/uring/io_uring_backend.h"
#include "timer/time_driver.h"

namespace pollux {

namespace detail {

// What a Runtime owns, in destruction order from the bottom up: the
// executor goes first (its tasks' futures may cancel ops and timers of the
// driver), then the driver.
struct RuntimeInner {
  std::unique_ptr<reactor::IoUringBackend> io;
  std::unique_ptr<ThreadParker> parker;       // when there is no I/O
  std::unique_ptr<timer::TimeDriver> time;    // when time is enabled, over io or parker
  timer::TimerQueue* timers = nullptr;
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
    // The backend drains the ring (every op's memory back from the kernel,
    // or kept) and closes it; the eventfd goes with its last unparker.
    time.reset();
    io.reset();
    parker.reset();
  }
};

}  // namespace detail

absl::StatusOr<Runtime> Runtime::Builder::build() {
  if (multi_thread_) {
    return absl::UnimplementedError("only the current_thread runtime flavour exists so far");
  }
  auto inner = std::make_unique<detail::RuntimeInner>();
  Park* park;
  if (io_) {
    absl::StatusOr<std::unique_ptr<reactor::IoUringBackend>> b =
        reactor::IoUringBackend::create(uring_);
    if (!b.ok()) return b.status();
    inner->io = std::move(*b);
    park = inner->io.get();
  } else {
    inner->parker = std::make_unique<ThreadParker>();
    park = inner->parker.get();
  }
  if (time_) {
    inner->time = std::make_unique<timer::TimeDriver>(*park);
    inner->timers = &inner->time->queue();
    park = inner->time.get();
  }
  inner->executor = std::make_unique<LocalExecutor>(*park, /*bind_lazily=*/true);
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
reactor::Backend* Runtime::io_backend() const noexcept { return inner_->io.get(); }
timer::TimerQueue* Runtime::timer_queue() const noexcept { return inner_->timers; }

}  // namespace pollux
