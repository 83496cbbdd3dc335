// RuntimeContext: the one per-thread record of what is running here.
//
//   current scheduler   the executor whose tasks this thread is polling
//                       (null outside block_on / a worker loop)
//   current task        the task being polled right now (null between polls
//                       and while a block_on root future is polled), and its
//                       pin count (TaskPin below)
//   worker index        which worker (multi_thread) or core (thread_per_core)
//                       of the current scheduler this thread is; 0 elsewhere
//   blocking            the runtime's blocking pool scheduler (spawn_blocking)
//   backend             the I/O backend of this thread (reactor/)
//   timers              the timer queue of this thread (timer/)
//
// It replaces separate "current X" thread-locals: one thread_local value,
// set and restored by one guard (RuntimeContext::Enter), so nested and
// unwound scopes can never leave one part behind. Each layer reads its part
// through its own accessor (reactor::current_backend(), timer::
// current_timer_queue()); executor/ only forward-declares their types, so
// the include graph keeps pointing one way. runtime/ enters a context with
// its backend and timers; an executor adds itself as the scheduler for the
// duration of its run loop.
//
// Thread-safety: each thread has its own; nothing here is shared.
#ifndef POLLUX_EXECUTOR_CONTEXT_H_
#define POLLUX_EXECUTOR_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <utility>

#include "future/waker.h"

namespace pollux {

namespace detail {
class Schedule;
struct Header;
}  // namespace detail
namespace reactor {
class Backend;
}  // namespace reactor
namespace timer {
class TimerQueue;
}  // namespace timer

// The time of a driver's current tick, cached by its timer queue
// (timer::TimerQueue::update_now, which reads the clock once per tick
// anyway): nanoseconds on the queue's clock. Spawns stamp their task with
// it (the task dump's ages) instead of reading the clock. Written and read
// on the driver's thread only.
struct TickClock {
  int64_t now_ns = 0;
  // The stamp a task spawned now keeps (Trailer::spawned_ms): ms, mod
  // 2^32, never 0 (0 means "no stamp").
  uint32_t stamp_ms() const noexcept {
    const auto ms = static_cast<uint32_t>(static_cast<uint64_t>(now_ns) / 1'000'000);
    return ms == 0 ? 1 : ms;
  }
};

// The per-thread record of what runs here (see above); each layer reads its
// part.
struct RuntimeContext {
  detail::Schedule* scheduler = nullptr;
  detail::Header* task = nullptr;
  // The current task's pin count (Header::pins), null when `task` is.
  std::atomic<uint32_t>* task_pins = nullptr;
  // The polled task woke itself (yield_now, an exhausted budget): the
  // harness queues it again once the poll returns (ScheduleKind::kSelfWake).
  bool task_woke_itself = false;
  uint32_t worker_index = 0;
  detail::Schedule* blocking = nullptr;
  reactor::Backend* backend = nullptr;
  timer::TimerQueue* timers = nullptr;
  // This thread's tick time, null when time is not enabled.
  const TickClock* tick = nullptr;

  // This thread's context (all null when nothing was entered). Inline: the
  // harness reads it on every poll and wake.
  static RuntimeContext& current() noexcept;

  // Installs a context for its scope (see below).
  class Enter;
};

namespace detail {
// constinit: constant-initialized, so reading it needs no TLS init wrapper.
extern constinit thread_local RuntimeContext tls_runtime_context;
}  // namespace detail

inline RuntimeContext& RuntimeContext::current() noexcept { return detail::tls_runtime_context; }

// Installs `ctx` as this thread's context for the guard's scope and
// restores the previous one after.
class [[nodiscard]] RuntimeContext::Enter {
 public:
  explicit Enter(const RuntimeContext& ctx) noexcept;
  ~Enter();
  Enter(const Enter&) = delete;
  Enter& operator=(const Enter&) = delete;

 private:
  RuntimeContext prev_;
};

// TaskPin: held by whatever keeps worker-owned state for the task being
// polled (an I/O op's slot, an armed timer entry, a readiness wait), for as
// long as it keeps it. While a task holds a pin, a multi_thread runtime
// never moves it off its home worker (DESIGN §4, "Pinning"): only that
// worker's thread may touch the ring or wheel the state lives in.
//
// A pin is taken through the RuntimeContext's current-task pointer, not
// through cx.waker() (under join_all that is not the task's own waker), and
// only during a poll on the home worker; it is given back by the same
// holder, on the same thread (the state it guards can only be released
// there). Outside a task (a block_on root future, a bare executor's
// thread) there is nothing to pin and a TaskPin is empty. The count has one
// writer at a time (the home worker's thread) and is changed with a relaxed
// load and store, no read-modify-write. Other threads read it only after
// the task's state word ordered the poll that raised it (a waker that won
// NOTIFIED on an idle task); a kept pin given back outside a poll can race
// such a read, and a stale "pinned" only sends the task home once more.
//
// Two kinds. current(): for a future that lives inside the task's own
// future (an op, a Sleep); the task checks when it finishes that every such
// pin is back, so one held from outside is an abort, never a write into a
// freed cell. current_keeping_task(): for state that may legitimately
// outlive the task that armed it (an AcceptStream owned by a parent and
// polled by a child); it holds a reference to the task, so the count it
// gives back is never freed memory.
namespace detail {
// Task references for current_keeping_task (task.cc).
void pin_ref_inc(Header* task) noexcept;
void pin_ref_dec(Header* task) noexcept;
// The waker vtable of every task (task.cc; data is the Header*), and the
// one of a task's waker that owns no reference (TaskPin::keep_waker): its
// wake is wake_by_ref, its drop does nothing, its clone is an owning waker.
extern const WakerVTable kTaskWakerVTable;
extern const WakerVTable kUnownedTaskWakerVTable;
// Header::pins counts current() pins in the low half and kept-task pins in
// the high half; a task with either is pinned.
inline constexpr uint32_t kPinUnit = 1;
inline constexpr uint32_t kKeptPinUnit = uint32_t{1} << 16;
inline constexpr uint32_t kOwnPinsMask = kKeptPinUnit - 1;
}  // namespace detail

// A pin on the task being polled: while held, the task stays on this worker
// (see above).
class [[nodiscard]] TaskPin {
 public:
  TaskPin() = default;
  // Pins the task being polled on this thread, if any (see above).
  static TaskPin current() noexcept {
    std::atomic<uint32_t>* pins = RuntimeContext::current().task_pins;
    if (pins != nullptr) add(pins, detail::kPinUnit);
    return TaskPin(pins, nullptr);
  }
  // Pins it and holds a reference to it (see above).
  static TaskPin current_keeping_task() noexcept {
    const RuntimeContext& ctx = RuntimeContext::current();
    if (ctx.task_pins == nullptr) return TaskPin();
    add(ctx.task_pins, detail::kKeptPinUnit);
    detail::pin_ref_inc(ctx.task);
    return TaskPin(ctx.task_pins, ctx.task);
  }
  TaskPin(TaskPin&& o) noexcept
      : pins_(std::exchange(o.pins_, nullptr)), kept_(std::exchange(o.kept_, nullptr)) {}
  TaskPin& operator=(TaskPin&& o) noexcept {
    if (this != &o) {
      reset();
      pins_ = std::exchange(o.pins_, nullptr);
      kept_ = std::exchange(o.kept_, nullptr);
    }
    return *this;
  }
  ~TaskPin() { reset(); }

  // Gives the pin back (no-op when empty).
  void reset() noexcept {
    if (pins_ == nullptr) return;
    if (kept_ == nullptr) {
      add(std::exchange(pins_, nullptr), -detail::kPinUnit);
      return;
    }
    add(std::exchange(pins_, nullptr), -detail::kKeptPinUnit);
    detail::pin_ref_dec(std::exchange(kept_, nullptr));  // may free the cell: last
  }
  bool holds() const noexcept { return pins_ != nullptr; }

  // Stores in `slot` (the waker of state this pin guards, an op's slot) a
  // waker that wakes what `w` wakes. When `w` is the pinned task's own
  // waker, that is the task's waker without a reference (no locked
  // increment now, none to give back later): waking it wakes by reference
  // and dropping it does nothing. The pin keeps the task alive for as long
  // as the state can use it: a task cannot complete while one of its own
  // pins is held (the check at completion aborts), its cell is freed only
  // after it completes, and the holder is done with `slot` before it gives
  // the pin back (an op takes its result or cancels: Backend's contract).
  // Any other waker (a combinator's, another task's, or any under a kept
  // pin, which may outlive its task) is cloned, as a Waker copy would.
  void keep_waker(Waker& slot, const Waker& w) const noexcept {
    if (pins_ != nullptr && kept_ == nullptr && w.vtable() == &detail::kTaskWakerVTable &&
        w.data() == static_cast<void*>(pins_)) {  // Header::pins is its first member (task.h)
      if (slot.data() != w.data() || slot.vtable() != &detail::kUnownedTaskWakerVTable) {
        slot.reset_raw(w.data(), &detail::kUnownedTaskWakerVTable);
      }
      return;
    }
    slot = w;  // a clone, unless it already wakes the same target
  }

 private:
  TaskPin(std::atomic<uint32_t>* pins, detail::Header* kept) noexcept
      : pins_(pins), kept_(kept) {}
  static void add(std::atomic<uint32_t>* pins, uint32_t delta) noexcept {
    // relaxed load and store: one writer (see above); unsigned wrap-around
    // makes -unit a decrement.
    pins->store(pins->load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  std::atomic<uint32_t>* pins_ = nullptr;
  detail::Header* kept_ = nullptr;
};

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_CONTEXT_H_
