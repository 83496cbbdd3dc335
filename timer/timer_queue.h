// pollux::timer::TimerQueue: the timer service of one driver thread.
//
// Purpose
//   A driver (the io_uring driver, or timer::TimeDriver when there is no I/O)
//   embeds one TimerQueue. It owns a TimerWheel (timer/timer_wheel.h), the
//   origin Instant that is tick 0, the driver's clock, and the test clock.
//   Futures (Sleep, and through it timeout and interval) register intrusive
//   entries with the TimerQueue of the thread that polls them, found through
//   `current_timer_queue()`.
//
//   Once per driver tick the driver calls (TimeDriver skips process() on a
//   tick with no timer registered, which has nothing to fire):
//     update_now();   // reads the clock once (the vDSO; no syscall)
//     process();      // fires every entry due at now(): wakes its waker
//   and, before it parks, bounds the park with next_deadline().
//
// The clock
//   now() is the time cached by the last update_now(): every timer decision
//   in one tick sees the same instant and the clock is read once per tick.
//   The queue's time is the real monotonic clock (Instant::now()) plus an
//   offset that is zero until the test clock is used. pause() freezes it;
//   advance(d) then moves it forward by exactly `d`; resume() lets it run on
//   at real speed from where it stood (like tokio::time::pause/advance/resume),
//   so after a pause the queue's time no longer equals Instant::now(). Use
//   timer::now() (below), not Instant::now(), to build deadlines that follow
//   the queue's clock. With the clock paused, a driver with nothing to run
//   calls auto_advance() to jump straight to the next timer.
//
// Ticks and rounding
//   1 tick = 1 ms. tick(t) = (t - origin) / 1 ms. A deadline is registered
//   under its tick rounded UP, and an entry fires in the first process() whose
//   now() rounded DOWN reaches that tick. So an entry never fires before its
//   deadline (now() >= deadline when it fires) and, if the driver ticks at
//   least once a millisecond, fires at most one tick (1 ms) late. Entries due
//   in the same tick fire in insertion order. Deadlines before origin() or
//   before now() are due at the next process().
//
// Thread-safety
//   None: a TimerQueue and every Entry registered in it belong to one driver
//   thread (DESIGN.md section 5). The queue records its owner thread (the
//   constructing thread, rebound by CurrentTimerQueueGuard) and debug builds
//   check it in insert() and cancel().
//
// Invariants
//   * now() never decreases; the wheel's tick never passes tick(now()).
//   * An Entry is registered in at most one queue; while registered it must
//     not move or be destroyed (Sleep's destructor cancels it: O(1)).
//   * Destroying the queue unregisters every entry without firing it; their
//     futures stay Pending forever but may still be dropped safely.
#ifndef POLLUX_TIMER_TIMER_QUEUE_H_
#define POLLUX_TIMER_TIMER_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <thread>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "executor/context.h"
#include "future/assert.h"
#include "future/waker.h"
#include "timer/instant.h"
#include "timer/timer_wheel.h"

namespace pollux::timer {

class CurrentTimerQueueGuard;

// The timer service of one driver thread: a wheel, its clock and the test
// clock.
class TimerQueue {
 public:
  // The resolution of the wheel.
  static constexpr absl::Duration kTick = absl::Milliseconds(1);

  // A timer registration: a wheel entry plus the waker to wake when it fires.
  // Embedded in the future that owns it (Sleep); neither movable nor copyable.
  // Standard-layout (so are the futures embedding it: the executor's task
  // cell takes offsetof over them). Thread-safety: owned by the queue's
  // thread like the queue itself.
  class Entry {
   public:
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    // Debug-checks that the entry was cancelled (or fired) first.
    ~Entry() { POLLUX_DCHECK(!is_registered(), "TimerQueue::Entry destroyed while registered"); }

    // True between insert() and the moment it fires or is cancelled.
    bool is_registered() const noexcept { return node_.is_registered(); }
    // True once it fired; cleared by the next insert().
    bool has_fired() const noexcept { return fired_; }
    // Keeps a clone of `w` to wake on fire; skips re-cloning when the stored
    // waker already wakes the same task (Waker::will_wake).
    void set_waker(const Waker& w) noexcept {
      if (!waker_.will_wake(w)) waker_ = w;
    }
    // Drops the stored waker.
    void clear_waker() noexcept { waker_.reset(); }

   private:
    friend class TimerQueue;
    // First member: an Entry and its node are pointer-interconvertible, which
    // is how process() gets from the wheel's TimerEntry* back to the Entry.
    TimerEntry node_;
    Waker waker_;  // woken (by value, so emptied) when the entry fires
    // Set by a reset() to a later deadline: when the wheel reaches the tick
    // the entry is filed under, process() files it again under this
    // deadline's tick instead of firing it, if that tick is still ahead
    // (Instant::min(): none). Kept as the Instant, so that pushing a deadline
    // back is a store, and the division into ticks waits for the re-filing.
    Instant later_ = Instant::min();
    bool fired_ = false;
  };
  static_assert(std::is_standard_layout_v<Entry>);

  // An empty queue whose origin (tick 0) and now() are Instant::now(). The
  // calling thread becomes its owner.
  TimerQueue();
  // Unregisters every entry without firing it (see the invariants).
  ~TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // --- The clock -----------------------------------------------------------

  // The cached time of this tick (the paused time while paused). No clock read.
  Instant now() const noexcept { return now_; }
  // now() as a TickClock (executor/context.h) the runtime puts in its
  // RuntimeContext: what spawns stamp their tasks with. Updated wherever
  // now() moves; the queue's thread only.
  const TickClock& tick_clock() const noexcept { return tick_; }
  // A fresh reading of the queue's clock: now() while paused, else
  // Instant::now() plus the test clock's offset. Does not update now(); it
  // is remembered as latest_reading().
  Instant clock_now() const noexcept {
    if (paused_) return now_;
    const Instant t = Instant::from_nanos(Instant::now().nanos() + offset_ns_);
    if (t > latest_) latest_ = t;
    return t;
  }
  // The latest time this queue's clock is known to have shown: now(), or a
  // later clock_now() (every timer::now() is one). A deadline at or before
  // it has passed. No clock read.
  Instant latest_reading() const noexcept { return latest_ > now_ ? latest_ : now_; }
  // Tick 0.
  Instant origin() const noexcept { return origin_; }
  // Re-reads the clock into now() unless paused. Call once per driver tick.
  void update_now() noexcept;

  // --- Driving -------------------------------------------------------------

  // Fires every entry whose deadline tick <= tick(now()), in deadline order
  // and insertion order within a tick: marks it fired and wakes its waker.
  // Returns how many fired. Never blocks, never reads the clock.
  size_t process() noexcept;
  // The earliest time at which process() could fire something (<= now() when
  // something is due), or nullopt when no entry is registered. Never later
  // than the earliest deadline's tick; may be earlier (the wheel moves
  // entries between levels then), so a driver simply parks until it, then
  // updates, processes and asks again.
  std::optional<Instant> next_deadline() const noexcept;
  // Registered entries.
  size_t active_timers() const noexcept { return wheel_.size(); }

  // --- The test clock ------------------------------------------------------

  bool is_paused() const noexcept { return paused_; }
  // Freezes the clock at a fresh reading. No-op when already paused.
  // Aborts with try_pause()'s message where that fails.
  void pause() noexcept;
  // As pause(); FailedPrecondition, with the clock untouched, on a queue
  // whose runtime forbids it (forbid_pause).
  absl::Status try_pause() noexcept;
  // The runtime has more than one wheel (multi_thread, thread_per_core): one
  // worker's paused clock would jump while another does real I/O (DESIGN
  // §5), so pause() refuses with `reason`.
  void forbid_pause(const char* reason) noexcept { pause_forbidden_ = reason; }
  // Lets the clock run again at real speed from the paused time. No-op when
  // not paused.
  void resume() noexcept;
  // Moves the paused clock forward by `d` (>= 0). Checked: the clock must be
  // paused. Timers now due fire at the next process() (the driver's next
  // tick), not inside this call.
  void advance(absl::Duration d);
  // For a driver with nothing to run while paused: jumps the paused clock to
  // the next registered timer's tick and fires what is due there (so the
  // caller need not call process() again). Returns true if the clock moved;
  // false when not paused, when no timer is registered, or when the next
  // timer was already due (it fired anyway).
  bool auto_advance() noexcept;

  // --- Entries (used by Sleep) ---------------------------------------------

  // O(1), no allocation, no syscall. Registers `e` (not registered) to fire at
  // `deadline` rounded up to the next tick, clears has_fired(), and keeps the
  // waker already set on `e`. A deadline <= now() fires at the next process().
  void insert(Entry* e, Instant deadline) noexcept;
  // O(1). Unregisters `e` without firing it; no-op if it is not registered.
  // Its waker stays set.
  void cancel(Entry* e) noexcept;
  // Moves registered `e` to `deadline`. Later than where it is filed: only
  // recorded, no wheel operation (process() re-files it when the earlier
  // tick comes, without firing or waking; as tokio's timer entries do), so
  // a deadline pushed back on every message is a store. Earlier: cancel and
  // insert, at once.
  void reset(Entry* e, Instant deadline) noexcept;
  // reset(e, deadline) for a `deadline` at or after the one `e` was last
  // inserted or reset to (the caller knows it: Sleep keeps it), which is
  // always later than or in the tick `e` is filed under: only the store.
  // Inline: a server pushes a deadline back on every message.
  void reset_later(Entry* e, Instant deadline) noexcept {
    POLLUX_DCHECK(e->is_registered(), "TimerQueue::reset_later of an entry that is not registered");
    e->later_ = deadline;
  }

  // The tick a deadline is registered under: ceil((t - origin) / 1 ms), 0 for
  // t <= origin, and for Instant::max() a tick no clock reading reaches.
  uint64_t deadline_tick(Instant t) const noexcept;
  // The tick that `t` has reached: floor((t - origin) / 1 ms), 0 for t <= origin.
  uint64_t elapsed_tick(Instant t) const noexcept;
  // The Instant at which `tick` begins (origin + tick ms, saturating).
  Instant tick_instant(uint64_t tick) const noexcept;

  // True on the thread that owns this queue (for debug checks).
  bool is_owner_thread() const noexcept { return std::this_thread::get_id() == owner_; }
  // Makes the calling thread the owner (a runtime built on one thread and
  // run on another; CurrentTimerQueueGuard does it too).
  void bind_to_current_thread() noexcept { owner_ = std::this_thread::get_id(); }

 private:
  friend class CurrentTimerQueueGuard;

  TimerWheel wheel_;
  Instant origin_;
  Instant now_;
  // now_ in nanoseconds (tick_clock()), kept with now_.
  TickClock tick_;
  // Queue time - Instant::now() when running, in ns (an integer: clock_now()
  // runs on every deadline check, and an absl::Duration conversion there
  // cost more than the clock read).
  int64_t offset_ns_ = 0;
  // The latest clock_now() (latest_reading()); only ever raised.
  mutable Instant latest_ = Instant::min();
  bool paused_ = false;
  const char* pause_forbidden_ = nullptr;
  std::thread::id owner_;
};

// The TimerQueue of this thread's RuntimeContext (executor/context.h), or
// null. What Sleep registers with on its first poll. Inline: Sleep checks
// it on every poll, and a server reads tick_now() per message.
inline TimerQueue* current_timer_queue() noexcept { return RuntimeContext::current().timers; }

// Makes `queue` (may be null) the current TimerQueue of this thread for the
// guard's scope (the rest of the RuntimeContext unchanged), restores the
// previous context after, and binds the queue's owner thread to this thread. Drivers set it while their executor runs; tests with
// a TimeDriver write `auto g = drv.enter();` (timer/time_driver.h).
class CurrentTimerQueueGuard {
 public:
  explicit CurrentTimerQueueGuard(TimerQueue* queue) noexcept;
  CurrentTimerQueueGuard(const CurrentTimerQueueGuard&) = delete;
  CurrentTimerQueueGuard& operator=(const CurrentTimerQueueGuard&) = delete;

 private:
  RuntimeContext::Enter entered_;
};

// The current time as this thread's timers see it: current_timer_queue()'s
// clock_now() (the paused time while paused), or Instant::now() when the
// thread has no TimerQueue. sleep(d), timeout(f, d) and interval() build
// their deadlines from it.
Instant now() noexcept;

// The time of this driver tick: current_timer_queue()'s cached now() (no
// clock read), or Instant::now() when the thread has no TimerQueue. Behind
// now() by at most the time the tick has run so far (its polls; the driver
// reads the clock once per tick), so a deadline built from it may come that
// much early: right for a per-request or idle timeout a server arms on every
// message, where a fresh clock read per deadline would be most of the
// timer's cost; use now() where microseconds matter.
inline Instant tick_now() noexcept {
  TimerQueue* q = current_timer_queue();
  return q != nullptr ? q->now() : Instant::now();
}

// The test clock of the current thread's TimerQueue, like tokio::time's.
// Each checks (always on) that the thread has a TimerQueue.
//
// Freezes the clock; no-op when already paused. Aborts with try_pause()'s
// message where that fails.
void pause();
// As pause(), but FailedPrecondition on a multi_thread or thread_per_core
// runtime (the test clock is current_thread only, DESIGN §5).
absl::Status try_pause();
// Lets the clock run again from the paused time; no-op when not paused.
void resume();
// Moves the paused clock forward by `d` >= 0 (checked: paused). Timers now
// due fire at the driver's next tick, i.e. once the calling task yields.
void advance(absl::Duration d);

}  // namespace pollux::timer

#endif  // POLLUX_TIMER_TIMER_QUEUE_H_
