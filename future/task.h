// Task<T>: a C++20 coroutine that is also a Future with `Output = T`.
//
//   Task<int> fetch_and_add(Reader& r) {
//     int a = co_await r.read_int();          // any pollux::Future
//     int b = co_await parse(r);              // another Task: joins this chain
//     co_return a + b;
//   }
//
// A Task is what an `async fn` is in Rust: calling the coroutine allocates its
// frame and runs nothing (it is lazy); polling the Task runs the body until it
// finishes (Ready) or waits on a future that returned Pending (Pending, with
// that future's waker registration in place). So a Task can be block_on'ed,
// spawned, joined, selected, put in a BoxFuture, or polled by a hand-written
// future, like any other future. Task<void>, move-only T and Task<T&> (which
// yields Poll<T&>) are supported. Task<T&> may be awaited but not spawned (a
// spawned output must be an object type).
//
// What `co_await x` accepts inside a Task coroutine, in this order:
//   1. a Task<U> (lvalue or rvalue): the child joins this coroutine's chain
//      (see "How a chain runs") and `co_await` yields its U, or rethrows what
//      it threw. A Task runs once: awaiting it twice, or awaiting one that was
//      already polled by hand, is a bug (checked in debug builds).
//   2. any other pollux::Future (including the executor's JoinHandle<U>): it
//      is polled in place, in the frame, with the Context of the current
//      poll; if that first poll is Ready the coroutine does not suspend.
//      Lvalue futures are polled where they are; temporaries live in the
//      frame until the end of the full expression. `co_await` yields the
//      future's Output; an exception thrown by its poll is thrown at the
//      `co_await`.
//   3. anything else (std::suspend_always, other libraries' awaitables) does
//      not compile: a Task may only suspend on a Future, because only a
//      Future can register the task's waker. Write callbacks as a future with
//      `poll_fn([&](Context& cx) -> Poll<T> { ... })`.
//
// How a chain runs. The outermost Task that is polled by someone else (an
// executor, block_on, a combinator) is the *root*; every Task it awaits,
// directly or through other Tasks, is part of its chain. `Task::poll(cx)`
// stores `&cx` in the root for that call only. A frame is only ever resumed
// by the root's poll, never by a waker (wakers only schedule the task), and
// never by another frame: when a frame awaits a child Task or finishes, it
// records the next frame to run in the root and suspends, and the root's
// trampoline loop resumes it. The stack therefore stays flat however deep the
// chain (a 1,000,000-deep chain runs on a 1 MiB stack, at -O0 and under ASan;
// symmetric transfer is deliberately not used, since gcc 12 does not make it a
// tail call at -O0/-O1 or under ASan). When an awaited future returns Pending,
// the awaiting frame stays suspended and the root remembers that future (the
// *leaf*); the root's next poll polls only the leaf, with the new Context, and
// resumes the frame once the leaf is Ready. So the cost of a poll does not
// grow with the depth of the chain.
//
// Exceptions: an exception that escapes a coroutine body is stored and
// rethrown at the `co_await` of the parent, or from `Task::poll` for the root.
// A Task that threw has finished (polling it again is a bug). pollux's own
// operations report errors as absl::Status / StatusOr, not exceptions.
//
// Cancellation: destroying a Task that has not finished destroys its chain
// from the innermost frame outwards: first the leaf future (cancelling it with
// that future's own semantics, e.g. an I/O operation is cancelled in the
// kernel), then each frame's locals and temporaries, innermost first. The
// coroutine does not get to run again, so work after its current `co_await`
// never happens; side effects before it have happened. Destruction is
// iterative, so dropping a deep chain does not recurse. A Task that was never
// polled only destroys its frame (the arguments it captured).
//
// Coroutine lambdas: a lambda's captures live in the lambda object, not in
// the coroutine frame. `[x]() -> Task<int> { co_return x; }()` reads a dead
// capture as soon as the temporary lambda is gone, i.e. at the first poll.
// Pass state as parameters instead (parameters are copied into the frame):
// `[](int x) -> Task<int> { co_return x; }(x)`, or give the callable to the
// executor's `spawn_local(callable)`, which keeps the callable alive inside
// the spawned task for as long as the coroutine runs. The same holds for
// reference parameters of any coroutine: the referent must outlive the Task.
//
// Lifetime: a finished frame (holding the coroutine's parameters and, until
// it is taken, the result) stays allocated until its Task object is destroyed;
// a child's frame goes when the parent's `co_await` expression ends, a root's
// when whoever polled it drops it (an executor does so when the task ends).
//
// Frames are allocated from a per-thread size-class free list
// (future/internal/frame_allocator.h), bypassed under sanitizer builds.
//
// Thread-safety: a Task is not synchronised; one thread polls it at a time. It
// may be moved to, polled on and destroyed on another thread between polls
// (its frames may be freed on a thread other than the one that allocated
// them). Its futures' wakers may fire from any thread.
//
// Invariants (checked in debug builds where cheap):
// - Only the root's poll resumes frames; `cx` is set only during that poll.
// - A suspended, unfinished root has exactly one leaf; a frame that is not
//   the innermost waits on its child Task (its `child_` link).
// - After Ready (or a throw) a Task is finished and is not polled again.
#ifndef POLLUX_FUTURE_TASK_H_
#define POLLUX_FUTURE_TASK_H_

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "future/assert.h"
#include "future/context.h"
#include "future/future.h"
#include "future/internal/frame_allocator.h"
#include "future/poll.h"
#include "future/poll_into.h"

namespace pollux {

template <class T = void>
class Task;

namespace detail {

template <class T>
struct IsTask : std::false_type {};
template <class T>
struct IsTask<Task<T>> : std::true_type {};

template <class>
inline constexpr bool kDependentFalse = false;

class TaskPromiseBase;

// The future a chain is waiting on: its awaiter (which owns a reference to the
// future and the slot for its result) and a thunk that polls it once. The
// thunk returns true once the awaiter holds the value or the exception, and
// then `frame` is resumed to take it.
struct PendingLeaf {
  void* awaiter = nullptr;
  bool (*poll)(void* awaiter, Context& cx) noexcept = nullptr;
  std::coroutine_handle<> frame;
};

// Runs `root`'s chain for one poll: polls the leaf if there is one, then
// resumes frames until the chain finishes or waits on a new leaf. Returns
// true when the root's body has finished (with a value or an exception).
bool run_root(TaskPromiseBase& root, Context& cx) noexcept;

// Destroys the frame of `top` and every frame it is awaiting, innermost first,
// without recursion.
void destroy_chain(TaskPromiseBase& top) noexcept;

// What every Task promise has: the chain links, the root's per-poll state and
// the frame allocator.
class TaskPromiseBase {
 public:
  TaskPromiseBase() noexcept = default;
  TaskPromiseBase(const TaskPromiseBase&) = delete;
  TaskPromiseBase& operator=(const TaskPromiseBase&) = delete;

  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }

  std::suspend_always initial_suspend() const noexcept { return {}; }

  // Suspends the finished frame and, if a parent awaits it, schedules the
  // parent on the root's trampoline. The frame stays allocated (it holds the
  // result) until its Task is destroyed.
  struct FinalAwaiter {
    TaskPromiseBase* self;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const noexcept {
      if (self->parent_ != nullptr) self->root_->next_ = self->parent_->self_;
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return FinalAwaiter{this}; }

  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  // The `co_await` overloads, in priority order: Task, any Future, else a
  // compile error. Defined below, once the awaiters are.
  template <class A>
  auto await_transform(A&& a);

  // ---- chain links (every frame) ----
  // The root of the chain this frame belongs to; `this` until a parent awaits it.
  TaskPromiseBase* root_ = this;
  // The frame awaiting this one (nullptr for a root or a finished child).
  TaskPromiseBase* parent_ = nullptr;
  // The child frame this one is suspended on (nullptr otherwise).
  TaskPromiseBase* child_ = nullptr;
  // The handle inside the Task object (in the parent's frame) that owns this
  // frame; set when a parent awaits it, so destroy_chain can disown it.
  std::coroutine_handle<>* owner_ = nullptr;
  std::coroutine_handle<> self_;
  std::exception_ptr error_;

  // ---- per-poll state (used on the root only) ----
  Context* cx_ = nullptr;           // the Context of the poll in progress
  std::coroutine_handle<> next_;    // the next frame for the trampoline
  PendingLeaf leaf_;                // what the chain is waiting on
  uint64_t frames_resumed_ = 0;     // frames the trampoline resumed (tests)

  bool started_ = false;   // polled as a root or awaited as a child
  bool finished_ = false;  // its result was handed out (or rethrown)
};

template <class T>
class TaskPromise;

template <class U>
class TaskAwaiter;

template <class F>
class FutureAwaiter;

// Test-only access to a Task's internals.
struct TaskAccess {
  // How many frames the root's trampoline has resumed over the Task's life.
  template <class T>
  static uint64_t frames_resumed(const Task<T>& t) noexcept {
    return t.promise().frames_resumed_;
  }
  // The address of the Task's coroutine frame.
  template <class T>
  static void* frame_address(const Task<T>& t) noexcept {
    return t.h_.address();
  }
};

}  // namespace detail

// A lazy C++20 coroutine that is a Future with Output = T (see above).
template <class T>
class [[nodiscard]] Task {
 public:
  using Output = T;
  using promise_type = detail::TaskPromise<T>;

  // An empty Task; polling or awaiting it is a bug.
  Task() noexcept = default;
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~Task() { reset(); }

  // Runs the coroutine (and every Task it awaits) until it finishes or waits
  // on a future that returned Pending. Rethrows an exception that escaped the
  // coroutine; the Task has then finished.
  Poll<T> poll(Context& cx) {
    // Always on, also in -c opt (where these would be a segfault or a
    // resumed finished frame): one predictable branch each.
    POLLUX_CHECK(h_ != nullptr, "polled an empty (default-constructed or moved-from) Task");
    promise_type& p = promise();
    POLLUX_CHECK(!p.finished_,
                 "Task polled after it completed (it returned Ready or threw); a future must "
                 "not be polled again after Ready");
    POLLUX_CHECK(p.parent_ == nullptr, "Task polled by hand while a coroutine co_awaits it");
    if (!detail::run_root(p, cx)) return Pending{};
    p.finished_ = true;
    if constexpr (std::is_void_v<T>) {
      p.take();
      return Ready{};
    } else if constexpr (std::is_reference_v<T>) {
      return Poll<T>::ready(p.take());
    } else {
      return Ready<T>(p.take());
    }
  }

  // False for an empty (default-constructed or moved-from) Task.
  bool valid() const noexcept { return h_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

 private:
  friend promise_type;
  friend struct detail::TaskAccess;
  template <class U>
  friend class detail::TaskAwaiter;

  explicit Task(std::coroutine_handle<> h) noexcept : h_(h) {}

  promise_type& promise() const noexcept {
    return std::coroutine_handle<promise_type>::from_address(h_.address()).promise();
  }
  void reset() noexcept {
    if (h_ != nullptr) {
      detail::destroy_chain(promise());
      h_ = nullptr;
    }
  }

  // Type-erased so a parent's destroy_chain can clear it through owner_.
  std::coroutine_handle<> h_;
};

namespace detail {

// The result slot of a Task's promise: a value, a reference or nothing, plus
// the exception in TaskPromiseBase::error_.
template <class T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept {
    self_ = std::coroutine_handle<TaskPromise>::from_promise(*this);
    return Task<T>(self_);
  }
  // `U = T` lets `co_return {a, b};` build a T from a braced list.
  template <class U = T>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& v) {
    value_.emplace(std::forward<U>(v));
  }
  // The value, or rethrows the coroutine's exception.
  T take() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <class T>
class TaskPromise<T&> final : public TaskPromiseBase {
 public:
  Task<T&> get_return_object() noexcept {
    self_ = std::coroutine_handle<TaskPromise>::from_promise(*this);
    return Task<T&>(self_);
  }
  void return_value(T& v) noexcept { ptr_ = std::addressof(v); }
  T& take() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return *ptr_;
  }

 private:
  T* ptr_ = nullptr;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept {
    self_ = std::coroutine_handle<TaskPromise>::from_promise(*this);
    return Task<void>(self_);
  }
  void return_void() noexcept {}
  void take() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }
};

// `co_await task`: links the child into the parent's chain and lets the root's
// trampoline run it. The parent resumes (await_resume) once the child's body
// has finished, and takes the child's result.
template <class U>
class TaskAwaiter {
 public:
  TaskAwaiter(Task<U>& child, TaskPromiseBase& parent) noexcept : child_(child), parent_(parent) {}

  bool await_ready() const noexcept {
    // Always on, like Task::poll's checks.
    POLLUX_CHECK(child_.h_ != nullptr,
                 "co_await on an empty (default-constructed or moved-from) Task");
    POLLUX_CHECK(!child_.promise().started_,
                 "co_await on a Task that already ran (it was awaited or polled before); a Task "
                 "runs once");
    return false;
  }
  void await_suspend(std::coroutine_handle<>) const noexcept {
    TaskPromiseBase& c = child_.promise();
    c.started_ = true;
    c.parent_ = &parent_;
    c.root_ = parent_.root_;
    c.owner_ = &child_.h_;
    parent_.child_ = &c;
    parent_.root_->next_ = c.self_;
  }
  U await_resume() const {
    TaskPromise<U>& c = child_.promise();
    parent_.child_ = nullptr;
    c.parent_ = nullptr;
    c.owner_ = nullptr;
    c.finished_ = true;
    return c.take();
  }

 private:
  Task<U>& child_;
  TaskPromiseBase& parent_;
};

// `co_await future`: polls the future in place with the root's Context. If it
// is Pending, the awaiter becomes the root's leaf and the frame suspends; the
// root re-polls it through `poll_leaf` and resumes the frame once the result
// (or the exception) is stored here. await_resume never polls. An object
// output is polled into the awaiter (future/poll_into.h): a future with
// poll_into builds it right here, and await_resume moves it out once.
template <class F>
class FutureAwaiter {
  using O = output_t<F>;
  static constexpr bool kStoresOutput = std::is_object_v<O>;
  using Stored = std::conditional_t<kStoresOutput, std::optional<O>, std::optional<Poll<O>>>;

 public:
  FutureAwaiter(F& fut, TaskPromiseBase& promise) noexcept : fut_(fut), root_(promise.root_) {}

  bool await_ready() {
    POLLUX_DCHECK(root_->cx_ != nullptr, "a Task frame ran outside its root's poll");
    return poll_once(*root_->cx_);
  }
  void await_suspend(std::coroutine_handle<> frame) noexcept {
    root_->leaf_ = PendingLeaf{this, &poll_leaf, frame};
  }
  O await_resume() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    if constexpr (kStoresOutput) {
      return std::move(*result_);
    } else {
      return std::move(*result_).value();
    }
  }

 private:
  // True on Ready, with the output (or the void/reference Poll) in result_.
  bool poll_once(Context& cx) {
    if constexpr (kStoresOutput) {
      return pollux::poll_into(fut_, cx, result_);
    } else {
      Poll<O> p = fut_.poll(cx);
      if (p.is_pending()) return false;
      result_.emplace(std::move(p));
      return true;
    }
  }

  static bool poll_leaf(void* self, Context& cx) noexcept {
    // SAFETY: `self` is the FutureAwaiter registered in await_suspend; it
    // lives in the suspended frame, which is alive while it is the leaf.
    auto* a = static_cast<FutureAwaiter*>(self);
    try {
      return a->poll_once(cx);
    } catch (...) {
      a->error_ = std::current_exception();
    }
    return true;
  }

  F& fut_;
  TaskPromiseBase* root_;
  Stored result_;
  std::exception_ptr error_;
};

template <class A>
auto TaskPromiseBase::await_transform(A&& a) {
  using D = std::remove_cvref_t<A>;
  constexpr bool kConst = std::is_const_v<std::remove_reference_t<A>>;
  if constexpr (IsTask<D>::value) {
    static_assert(!kConst, "co_await on a const Task: awaiting runs the Task, so it must be mutable");
    return TaskAwaiter<typename D::Output>(a, *this);
  } else if constexpr (Future<D>) {
    static_assert(!kConst, "co_await on a const future: polling mutates it");
    return FutureAwaiter<D>(a, *this);
  } else {
    static_assert(kDependentFalse<A>,
                  "co_await needs a pollux::Future or Task; wrap callbacks in "
                  "poll_fn([&](Context& cx) -> Poll<T> {...}) (other awaitables cannot register "
                  "the task's waker)");
  }
}

}  // namespace detail
}  // namespace pollux

#endif  // POLLUX_FUTURE_TASK_H_
