// Park and Unparker: how an executor waits for work without knowing what it
// waits on (an io_uring, an epoll set, timers, a condition variable).
//
// The executor runs ticks of task polls. Between ticks it calls poll_now()
// when tasks are still runnable (deliver whatever I/O or timers are ready,
// without sleeping), or park() when none is (sleep until an event the Park
// owns fires, unpark() is called, or the timeout passes). Every I/O backend
// implements Park, and timer::TimeDriver wraps any Park to add timers: it
// bounds the park by the next timer and owns the paused test clock.
//
// Errors: a Park whose kernel entry keeps failing (DESIGN §5: the same
// non-transient error three times in a row) reports it from status(); the
// executor then stops with that status instead of spinning.
//
// Thread-safety: a Park belongs to one thread (the executor's owner) and is
// only called there. Its Unparker is thread-safe and may outlive it:
// executors keep it (through a shared_ptr) for as long as any waker can reach
// them, and unpark() after the Park is gone does nothing harmful.
#ifndef POLLUX_EXECUTOR_DRIVER_H_
#define POLLUX_EXECUTOR_DRIVER_H_

#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace pollux {

// Wakes a parked Park from any thread; may outlive it (then does nothing
// harmful).
class Unparker {
 public:
  virtual ~Unparker() = default;
  // Makes the owner's current or next park() return. Cheap when the owner is
  // not parked (no syscall); idempotent.
  virtual void unpark() noexcept = 0;
};

// What an executor waits in between ticks (see above); owned by one thread.
class Park {
 public:
  virtual ~Park() = default;
  // Blocks the owner thread until an event the Park owns is delivered,
  // unpark() is called (a pending unpark makes it return at once), or
  // `timeout` has passed (nullopt: no limit; zero: look, never block).
  // True when something happened (an event delivered or an unpark
  // consumed), false when the time ran out with nothing to report.
  virtual bool park(std::optional<absl::Duration> timeout) = 0;
  // Delivers events that are already ready; never blocks, and makes no
  // syscall unless there is work for the kernel.
  virtual void poll_now() = 0;
  // The thread-safe handle that ends park().
  virtual std::shared_ptr<Unparker> unparker() = 0;
  // OK, or the error that ended this Park (see the header comment).
  virtual absl::Status status() const { return absl::OkStatus(); }
};

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_DRIVER_H_
