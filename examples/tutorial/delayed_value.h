// Tutorial step 2 (docs/tutorial.md): DelayedValue, a future woken from
// another thread. Steps 3 and 4 await it from coroutines.
//
// DelayedValue(v, d) is Ready(v) once a helper thread, started on the first
// poll, has slept `d` and delivered v. Each poll that finds no value stores
// the task's waker in the shared slot; the helper takes that waker and wakes
// it after delivering. The destructor joins the helper (so a dropped
// DelayedValue blocks for at most `d`: fine for a tutorial, not for a
// server; real timers are step 5's pollux::sleep).
#ifndef POLLUX_EXAMPLES_TUTORIAL_DELAYED_VALUE_H_
#define POLLUX_EXAMPLES_TUTORIAL_DELAYED_VALUE_H_

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "future/future.h"

namespace tutorial {

class DelayedValue {
 public:
  using Output = int;

  // `trace` (may be null) names the future in a line per poll.
  DelayedValue(int value, std::chrono::milliseconds delay, const char* trace = nullptr)
      : value_(value), delay_(delay), trace_(trace), slot_(std::make_shared<Slot>()) {}
  DelayedValue(DelayedValue&&) noexcept = default;
  ~DelayedValue() {
    if (helper_.joinable()) helper_.join();
  }

  pollux::Poll<int> poll(pollux::Context& cx) {
    {
      std::lock_guard lock(slot_->mu);
      if (slot_->value) {
        if (trace_) std::printf("  %s: poll -> Ready(%d)\n", trace_, *slot_->value);
        return pollux::Ready(*slot_->value);
      }
      // Copying a Waker clones it (a reference count), so the slot's copy
      // outlives this poll. Storing it on every Pending poll matters: a
      // future may be polled by a different task (or waker) next time.
      slot_->waker = cx.waker();
    }
    if (trace_) std::printf("  %s: poll -> Pending (waker stored)\n", trace_);
    // Started after the waker is stored, so the helper always finds it.
    if (!helper_.joinable()) {
      helper_ = std::thread([slot = slot_, v = value_, d = delay_] {
        std::this_thread::sleep_for(d);
        pollux::Waker w;
        {
          std::lock_guard lock(slot->mu);
          slot->value = v;
          w = std::move(slot->waker);
        }
        // Outside the lock: the woken task may poll (and lock) at once.
        std::move(w).wake();
      });
    }
    return pollux::Pending{};
  }

 private:
  // Shared with the helper thread, which may outlive a moved-from future.
  struct Slot {
    std::mutex mu;
    std::optional<int> value;  // guarded by mu
    pollux::Waker waker;       // guarded by mu
  };

  int value_;
  std::chrono::milliseconds delay_;
  const char* trace_;
  std::shared_ptr<Slot> slot_;
  std::thread helper_;
};

}  // namespace tutorial

#endif  // POLLUX_EXAMPLES_TUTORIAL_DELAYED_VALUE_H_
