// JoinHandle<T>: the owning handle to a spawned task's result.
//
// A JoinHandle is a Future with Output = JoinResult<T> (Unit for a void
// task): the task's value, or a JoinError saying it was cancelled or that its
// poll threw. Polling it registers the poller's waker with the task; the task
// wakes it when it completes.
//
// Dropping the handle detaches the task: it keeps running, and its result is
// destroyed when it completes. `abort()` asks the task to stop: its future is
// dropped (on the thread that polls it) at its next scheduling point; if the
// task had already completed, abort does nothing and the handle still yields
// the value.
//
// Cancellation: dropping a JoinHandle never cancels the task (use abort()).
// Thread-safety: the handle may be polled, aborted and dropped from any
// thread, one at a time (it is not shared).
#ifndef POLLUX_EXECUTOR_JOIN_HANDLE_H_
#define POLLUX_EXECUTOR_JOIN_HANDLE_H_

#include <optional>
#include <utility>

#include "executor/internal/task.h"
#include "executor/join_result.h"
#include "future/assert.h"
#include "future/future.h"

namespace pollux {

namespace detail {
class HandleFactory;
}

// The owning handle to a spawned task: a Future of its JoinResult<T>; dropping
// it detaches the task.
template <class T>
class [[nodiscard]] JoinHandle {
 public:
  using Value = OrUnit<T>;
  using Output = JoinResult<Value>;

  JoinHandle(JoinHandle&& o) noexcept : task_(std::exchange(o.task_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& o) noexcept {
    if (this != &o) {
      reset();
      task_ = std::exchange(o.task_, nullptr);
    }
    return *this;
  }
  ~JoinHandle() { reset(); }

  Poll<Output> poll(Context& cx) {
    // Always on (one predictable branch): in -c opt a null task_ would be a
    // segfault with no word of why.
    POLLUX_CHECK(task_ != nullptr, "JoinHandle polled after it returned Ready (or moved-from)");
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    if (!detail::join_poll_ready(task_, cx.waker())) {
      cx.budget().refund();
      return Pending{};
    }
    std::optional<Output> out;
    task_->vtable->read_output(task_, &out);
    // The result is consumed; only the reference remains to release.
    detail::drop_reference(std::exchange(task_, nullptr));
    return Ready<Output>{std::move(*out)};
  }

  // Cancels the task (see the header comment). Safe at any time, repeatedly.
  void abort() noexcept {
    if (task_ != nullptr) detail::abort_task(task_);
  }
  // True once the task has completed (its result is waiting).
  bool is_finished() const noexcept {
    return task_ != nullptr && task_->state.load().is_complete();
  }
  // Drops the handle, letting the task run on unobserved.
  void detach() && noexcept { reset(); }

 private:
  friend class detail::HandleFactory;
  explicit JoinHandle(detail::Header* task) noexcept : task_(task) {}

  void reset() noexcept {
    if (task_ != nullptr) detail::join_drop(std::exchange(task_, nullptr));
  }

  detail::Header* task_;
};

namespace detail {
// Executors build JoinHandles through this (the constructor is private).
class HandleFactory {
 public:
  template <class T>
  static JoinHandle<T> make(Header* h) noexcept {
    return JoinHandle<T>(h);
  }
};
}  // namespace detail

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_JOIN_HANDLE_H_
