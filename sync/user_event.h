// UserEvent: an auto-reset, coalescing event any thread may set, for
// plugging a foreign producer (a shared-memory ring, a device thread, a user
// interrupt) into a task.
//
//   sync::UserEvent ready;
//   // producer thread:            // consumer task:
//   ring.push(x); ready.set();      for (;;) { co_await ready.wait(); drain(ring); }
//
// set() makes the event pending (one atomic when nobody waits) and wakes the
// oldest waiter; that waiter's completion consumes it. Sets while it is
// pending coalesce into one. A set() before the wait() is not lost. So a
// consumer that drains everything after each wake never misses an item: an
// item pushed after its drain began comes with a set() that makes the next
// wait() return.
//
// It is Notify's notify_one semantics (sync/notify.h) under the name
// producers look for. A signal handler must not call set() (it may have
// interrupted the very lock a wake touches); use runtime/'s
// signal::SignalEvent there.
//
// Cancellation: dropping a wait() future loses nothing: a set() it was
// chosen for passes to the next waiter or stays pending.
// Thread-safety: set() from any thread; wait() from any task.
#ifndef POLLUX_SYNC_USER_EVENT_H_
#define POLLUX_SYNC_USER_EVENT_H_

#include "sync/notify.h"

namespace pollux::sync {

// An auto-reset, coalescing event: set() from any thread, wait() from any task.
class UserEvent {
 public:
  UserEvent() = default;
  UserEvent(const UserEvent&) = delete;
  UserEvent& operator=(const UserEvent&) = delete;

  // Makes the event pending and wakes the oldest waiter (see the header).
  void set() noexcept { notify_.notify_one(); }
  // Completes once the event is (or becomes) pending, consuming it.
  Notified wait() noexcept { return notify_.notified(); }

 private:
  Notify notify_;
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_USER_EVENT_H_
