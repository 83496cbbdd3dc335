// Driver and Unparker: how an executor waits for work without knowing what
// it waits on (io_uring, timers, a condition variable).
//
// The executor runs ticks of task polls. Between ticks it calls
// `poll_nonblocking()` when tasks are still runnable (deliver whatever I/O or
// timers are ready, without sleeping), or `park()` when none is (sleep until
// an event the driver owns fires or `Unparker::unpark()` is called).
//
// Thread-safety: a Driver belongs to one thread (the executor's owner) and is
// only called there. Its Unparker is thread-safe and may outlive the Driver:
// executors keep it (through a shared_ptr) for as long as any waker can reach
// them, and unpark() after the driver is gone does nothing harmful.
#ifndef POLLUX_EXECUTOR_DRIVER_H_
#define POLLUX_EXECUTOR_DRIVER_H_

#include <memory>

namespace pollux {

class Unparker {
 public:
  virtual ~Unparker() = default;
  // Makes the owner's current or next park() return. Cheap when the owner is
  // not parked (no syscall); idempotent.
  virtual void unpark() noexcept = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;
  // Blocks the owner thread until an event the driver owns is delivered or
  // unpark() is called (a pending unpark makes it return at once).
  virtual void park() = 0;
  // Delivers events that are already ready; never blocks.
  virtual void poll_nonblocking() = 0;
  // The thread-safe handle that ends park().
  virtual std::shared_ptr<Unparker> unparker() = 0;
};

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_DRIVER_H_
