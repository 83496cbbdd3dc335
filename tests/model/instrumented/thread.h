// The model checker's detail::Thread and detail::ThreadLifetimeAllocation
// (the --config=model side of future/internal/thread.h).
//
// Thread, made on a model thread during model::check, starts a model
// thread (a scheduling point; everything its creator did happens before
// its first operation) and join() waits for it (its last operation happens
// before what follows). Destroying it unjoined is reported. Made anywhere
// else it is a std::thread.
//
// spin_loop_hint(): a yield to the other model threads (a free switch to one
// of them, if any can run), so a spin-wait sees their progress.
//
// ThreadLifetimeAllocation: allocations made in its scope are meant to live
// as long as their thread or the process, and are not reported as leaks.
#ifndef POLLUX_TESTS_MODEL_INSTRUMENTED_THREAD_H_
#define POLLUX_TESTS_MODEL_INSTRUMENTED_THREAD_H_

#include <thread>
#include <type_traits>
#include <utility>

#include "tests/model/internal/hooks.h"

namespace pollux::detail {

class Thread {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Thread>)
  explicit Thread(F&& f, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    if (!model::internal::in_execution()) {
      thread_ = std::thread(std::forward<F>(f));
      return;
    }
    using Fn = std::decay_t<F>;
    // Freed by the new thread when it finishes, inside the execution, so
    // the leak check sees it like any other allocation.
    auto* fn = new Fn(std::forward<F>(f));
    model_id_ = model::internal::thread_spawn(
        model::internal::ThreadBody{[](void* p) { (*static_cast<Fn*>(p))(); },
                                    [](void* p) { delete static_cast<Fn*>(p); }, fn},
        {file, line});
  }
  Thread(Thread&& other) noexcept
      : thread_(std::move(other.thread_)), model_id_(std::exchange(other.model_id_, -1)) {}
  Thread& operator=(Thread&& other) noexcept {
    if (this != &other) {
      if (model_id_ >= 0) model::internal::thread_not_joined(model_id_);
      thread_ = std::move(other.thread_);
      model_id_ = std::exchange(other.model_id_, -1);
    }
    return *this;
  }
  ~Thread() {
    if (model_id_ >= 0) model::internal::thread_not_joined(model_id_);
  }

  void join(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    if (model_id_ < 0) return thread_.join();
    model::internal::thread_join(std::exchange(model_id_, -1), {file, line});
  }
  bool joinable() const noexcept { return model_id_ >= 0 || thread_.joinable(); }

 private:
  std::thread thread_;
  int model_id_ = -1;  // the model thread, while joinable
};

// A spin-wait's hint: on a model thread a yield to the other model threads
// (hooks.h's thread_yield); elsewhere nothing.
inline void spin_loop_hint(const char* file = __builtin_FILE(),
                           int line = __builtin_LINE()) noexcept {
  if (model::internal::in_execution()) model::internal::thread_yield({file, line});
}

class ThreadLifetimeAllocation {
 public:
  ThreadLifetimeAllocation() noexcept { model::internal::pause_allocation_tracking(); }
  ~ThreadLifetimeAllocation() { model::internal::resume_allocation_tracking(); }
  ThreadLifetimeAllocation(const ThreadLifetimeAllocation&) = delete;
  ThreadLifetimeAllocation& operator=(const ThreadLifetimeAllocation&) = delete;
};

}  // namespace pollux::detail

#endif  // POLLUX_TESTS_MODEL_INSTRUMENTED_THREAD_H_
