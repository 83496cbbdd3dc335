// detail::Thread, detail::spin_loop_hint and detail::ThreadLifetimeAllocation.
//
// Thread is std::thread normally (construct with a callable, join()); under
// `--config=model` (POLLUX_MODEL) it is a thread of the model checker
// (tests/model/): starting and joining it are scheduling points with the
// happens-before edges std::thread gives. Cross-thread tests and models
// start threads through it so that one scenario runs both ways.
//
// spin_loop_hint() goes where a thread waits for another one's progress by
// trying again (a spin, or a future that wakes itself to be polled again at
// once): the pause instruction normally; under --config=model a yield that
// lets the other model threads run (a spin is otherwise an endless loop to
// a checker that does not model fair scheduling).
//
// ThreadLifetimeAllocation marks, for its scope, allocations that are meant
// to live as long as their thread or the process (a per-thread counter that
// is never freed). The model checker reports every other allocation an
// execution leaves behind as a leak; normally the scope does nothing.
#ifndef POLLUX_FUTURE_INTERNAL_THREAD_H_
#define POLLUX_FUTURE_INTERNAL_THREAD_H_

#if defined(POLLUX_MODEL)
#include "tests/model/instrumented.h"
#else

#include <thread>
#include <utility>

namespace pollux::detail {

class Thread {
 public:
  template <class F>
  explicit Thread(F&& f) : thread_(std::forward<F>(f)) {}
  Thread(Thread&&) noexcept = default;
  Thread& operator=(Thread&&) noexcept = default;
  void join() { thread_.join(); }
  // Lets the thread run on without a joiner (the blocking pool's bounded
  // shutdown); whatever it touches afterwards must be kept alive by it.
  void detach() { thread_.detach(); }
  bool joinable() const noexcept { return thread_.joinable(); }

 private:
  std::thread thread_;
};

// In a wait for another thread's progress (a spin, or a poll that will be
// repeated at once): the CPU's pause hint; under --config=model a yield to
// the other model threads, so the checker lets them make that progress
// instead of spinning into its step bound (loom's yield_now).
inline void spin_loop_hint() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class ThreadLifetimeAllocation {
 public:
  // User-provided (not = default) so a scope object never reads as unused.
  ThreadLifetimeAllocation() noexcept {}
  ~ThreadLifetimeAllocation() {}
  ThreadLifetimeAllocation(const ThreadLifetimeAllocation&) = delete;
  ThreadLifetimeAllocation& operator=(const ThreadLifetimeAllocation&) = delete;
};

}  // namespace pollux::detail

#endif  // POLLUX_MODEL

#endif  // POLLUX_FUTURE_INTERNAL_THREAD_H_
