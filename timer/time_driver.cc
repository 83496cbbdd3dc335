#include "timer/time_driver.h"

#include <optional>

namespace pollux::timer {

namespace {
constexpr absl::Duration kMaxParkTimeout = absl::Hours(1);
}  // namespace

TimeDriver::TimeDriver()
    : unparker_(std::make_shared<RecordingUnparker>(parker_.unparker())) {}

void TimeDriver::park() {
  queue_.update_now();
  if (queue_.process() > 0) return;
  // acquire: pairs with RecordingUnparker::unpark's release store. Consumed
  // on every park, so a stale flag costs at most one early return.
  const bool notified = unparker_->notified.exchange(false, std::memory_order_acquire);
  if (queue_.is_paused()) {
    // A wake from another thread is work: let the executor run it before
    // time jumps (the ThreadParker keeps its own notification, so a later
    // blocking park returns once, harmlessly).
    if (notified) return;
    // Jumped to the next timer and fired it.
    if (queue_.auto_advance()) return;
    // No timer that can ever fire: only another thread can make progress.
    ++blocking_parks_;
    parker_.park();
  } else {
    ++blocking_parks_;
    if (const std::optional<Instant> next = queue_.next_deadline()) {
      absl::Duration wait = *next - queue_.now();
      if (wait < absl::ZeroDuration()) wait = absl::ZeroDuration();
      // A far deadline just costs an extra wake-up; it keeps the condition
      // variable's absolute deadline far from overflow.
      if (wait > kMaxParkTimeout) wait = kMaxParkTimeout;
      parker_.park_timeout(wait);
    } else {
      parker_.park();
    }
  }
  queue_.update_now();
  queue_.process();
}

void TimeDriver::poll_nonblocking() {
  queue_.update_now();
  queue_.process();
}

}  // namespace pollux::timer
