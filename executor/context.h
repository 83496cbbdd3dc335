// RuntimeContext: the one per-thread record of what is running here.
//
//   current scheduler   the executor whose tasks this thread is polling
//                       (null outside block_on / a worker loop)
//   current task        the task being polled right now (null between polls
//                       and while a block_on root future is polled)
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

struct RuntimeContext {
  detail::Schedule* scheduler = nullptr;
  detail::Header* task = nullptr;
  // The polled task woke itself (yield_now, an exhausted budget): the
  // harness queues it again once the poll returns (ScheduleKind::kSelfWake).
  bool task_woke_itself = false;
  reactor::Backend* backend = nullptr;
  timer::TimerQueue* timers = nullptr;

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

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_CONTEXT_H_
