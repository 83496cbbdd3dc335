// ThreadParker: the simplest Park, for executors with no I/O: park() sleeps
// on a condition variable until unpark() or the timeout.
//
// The unpark protocol is ParkState (executor/internal/park_state.h), the one
// the io_uring backend uses too: the parker publishes PARKED (seq_cst) before
// it sleeps; unpark exchanges NOTIFIED in and only takes the mutex and
// signals when it saw PARKED, so an unpark that finds the owner running costs
// one atomic exchange and no syscall.
//
// Thread-safety: park() on the owner thread only; unpark() from anywhere.
#ifndef POLLUX_EXECUTOR_THREAD_PARKER_H_
#define POLLUX_EXECUTOR_THREAD_PARKER_H_

#include <memory>
#include <optional>

#include "absl/time/time.h"
#include "executor/driver.h"
#include "executor/internal/park_state.h"
#include "future/internal/mutex.h"

namespace pollux {

// A Park with no I/O: sleeps on a condition variable until unpark() or the
// timeout.
class ThreadParker final : public Park {
 public:
  ThreadParker();
  // True when an unpark ended it, false when the timeout passed.
  bool park(std::optional<absl::Duration> timeout) override;
  void poll_now() override {}
  std::shared_ptr<Unparker> unparker() override { return state_; }

 private:
  struct State final : Unparker {
    void unpark() noexcept override;
    bool park(std::optional<absl::Duration> timeout);
    detail::ParkState word;
    detail::Mutex mu;
    detail::CondVar cv;
  };
  std::shared_ptr<State> state_;
};

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_THREAD_PARKER_H_
