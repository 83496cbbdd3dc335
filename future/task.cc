#include "future/task.h"

namespace pollux::detail {

bool run_root(TaskPromiseBase& root, Context& cx) noexcept {
  POLLUX_DCHECK(root.cx_ == nullptr, "Task polled re-entrantly from inside its own poll");
  root.cx_ = &cx;
  if (root.leaf_.poll != nullptr) {
    // Only the leaf is polled; no frame runs unless it is Ready.
    if (!root.leaf_.poll(root.leaf_.awaiter, cx)) {
      root.cx_ = nullptr;
      return false;
    }
    root.next_ = root.leaf_.frame;
    root.leaf_ = PendingLeaf{};
  } else {
    POLLUX_DCHECK(!root.started_,
                  "Task chain suspended with no leaf future to wait on (internal error)");
    root.started_ = true;
    root.next_ = root.self_;
  }
  // The trampoline: each frame records the next one to run and suspends, so
  // the stack depth stays constant however deep the chain is.
  while (root.next_ != nullptr) {
    std::coroutine_handle<> h = std::exchange(root.next_, nullptr);
    ++root.frames_resumed_;
    h.resume();
  }
  root.cx_ = nullptr;
  const bool done = root.self_.done();
  POLLUX_DCHECK(done || root.leaf_.poll != nullptr,
                "Task chain suspended with no leaf future to wait on (internal error)");
  return done;
}

void destroy_chain(TaskPromiseBase& top) noexcept {
  POLLUX_DCHECK(top.parent_ == nullptr, "a Task was destroyed while a coroutine co_awaits it");
  POLLUX_DCHECK(top.cx_ == nullptr, "a Task was destroyed from inside its own poll");
  TaskPromiseBase* p = &top;
  while (p->child_ != nullptr) p = p->child_;
  // Innermost first: destroying that frame destroys the leaf future. Each
  // parent's link is cleared (and the child's Task disowned) before the child
  // frame goes, so the parent's destruction later finds nothing to recurse into.
  while (p != &top) {
    TaskPromiseBase* parent = p->parent_;
    parent->child_ = nullptr;
    // SAFETY: owner_ points at the handle inside the Task object that owns
    // p's frame; that Task lives in the parent's frame, which is still alive.
    *p->owner_ = nullptr;
    p->self_.destroy();
    p = parent;
  }
  top.self_.destroy();
}

}  // namespace pollux::detail
