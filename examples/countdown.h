// Countdown: the hand-written future both demos use, and a TickSource, a
// plain std::thread that plays a timer and wakes whoever is waiting.
//
// Countdown(n) is Ready once it has seen n ticks. Each poll that finds no new
// tick stores the task's waker and returns Pending: the whole poll contract.
#ifndef POLLUX_EXAMPLES_COUNTDOWN_H_
#define POLLUX_EXAMPLES_COUNTDOWN_H_

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "future/future.h"

namespace examples {

// Ticks every `period` on its own thread and wakes every registered waker.
class TickSource {
 public:
  explicit TickSource(std::chrono::milliseconds period)
      : thread_([this, period] { run(period); }) {}
  ~TickSource() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // Ticks so far; registers `w` to be woken at the next tick.
  int ticks_and_register(const pollux::Waker& w) {
    std::lock_guard lock(mu_);
    for (const pollux::Waker& known : wakers_) {
      if (known.will_wake(w)) return ticks_;
    }
    wakers_.push_back(w);
    return ticks_;
  }

 private:
  void run(std::chrono::milliseconds period) {
    for (;;) {
      std::this_thread::sleep_for(period);
      std::vector<pollux::Waker> wake;
      {
        std::lock_guard lock(mu_);
        if (stop_) return;
        ++ticks_;
        wake.swap(wakers_);
      }
      for (pollux::Waker& w : wake) std::move(w).wake();  // outside the lock
    }
  }

  std::mutex mu_;
  int ticks_ = 0;
  bool stop_ = false;
  std::vector<pollux::Waker> wakers_;
  std::thread thread_;  // last: starts after the members above exist
};

class Countdown {
 public:
  using Output = int;  // how many polls it took

  Countdown(std::string name, int from, TickSource& src)
      : name_(std::move(name)), remaining_(from), src_(&src) {}

  pollux::Poll<int> poll(pollux::Context& cx) {
    ++polls_;
    int ticks = src_->ticks_and_register(cx.waker());
    if (start_ < 0) start_ = ticks;
    while (remaining_ > 0 && start_ + seen_ < ticks) {
      ++seen_;
      std::printf("  %s: %d\n", name_.c_str(), --remaining_);
    }
    if (remaining_ == 0) return pollux::Ready(polls_);
    return pollux::Pending{};  // the TickSource holds our waker
  }

 private:
  std::string name_;
  int remaining_;
  int start_ = -1;
  int seen_ = 0;
  int polls_ = 0;
  TickSource* src_;
};

}  // namespace examples

#endif  // POLLUX_EXAMPLES_COUNTDOWN_H_
