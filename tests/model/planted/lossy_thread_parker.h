// PLANTED BUG, the ThreadParker half: a copy of ThreadParker::State's
// park() and unpark() (executor/thread_parker.cc, untimed park
// only) on LossyParkState, so that the real parker's code path carries the
// lost wake-up. The model checker must report a deadlock
// (tests/model/park_model_test.cc). Never use outside that test.
#ifndef POLLUX_TESTS_MODEL_PLANTED_LOSSY_THREAD_PARKER_H_
#define POLLUX_TESTS_MODEL_PLANTED_LOSSY_THREAD_PARKER_H_

#include <memory>
#include <optional>

#include "absl/time/time.h"

#include "executor/driver.h"
#include "future/internal/mutex.h"
#include "tests/model/planted/lossy_park_state.h"

namespace pollux::model::planted {

class LossyThreadParker {
 public:
  LossyThreadParker() : state_(std::make_shared<State>()) {}
  // The untimed park only (the model passes std::nullopt, as it does to the
  // real ThreadParker).
  bool park(std::optional<absl::Duration>) {
    state_->park();
    return true;
  }
  std::shared_ptr<Unparker> unparker() { return state_; }

 private:
  struct State final : Unparker {
    void park() {
      if (word.take_notified()) return;
      detail::MutexLock lock(mu);
      if (!word.try_park()) return;
      for (;;) {
        cv.wait(mu);
        if (word.take_notified()) return;
      }
    }
    void unpark() noexcept override {
      if (!word.unpark()) return;
      { detail::MutexLock lock(mu); }
      cv.notify_one();
    }
    LossyParkState word;
    detail::Mutex mu;
    detail::CondVar cv;
  };
  std::shared_ptr<State> state_;
};

}  // namespace pollux::model::planted

#endif  // POLLUX_TESTS_MODEL_PLANTED_LOSSY_THREAD_PARKER_H_
