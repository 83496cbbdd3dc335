// ManualFuture<T>: a future completed by the test, from any thread.
//
//   auto [fut, handle] = make_manual_future<int>();
//   ... spawn or poll `fut` ...
//   handle.complete(42);   // stores the value and wakes the last poller
//
// The shared state is reference counted, so completing after the future was
// dropped is harmless (`dropped()` tells the test it happened). `polls()`
// counts how often the future was polled. Thread-safe: the state is guarded
// by a mutex, and the waker is woken outside it.
#ifndef POLLUX_FUTURE_TESTING_MANUAL_FUTURE_H_
#define POLLUX_FUTURE_TESTING_MANUAL_FUTURE_H_

#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "future/assert.h"
#include "future/future.h"

namespace pollux::testing {

namespace detail {
template <class T>
struct ManualState {
  std::mutex mu;
  std::optional<OrUnit<T>> value;
  Waker waker;
  int polls = 0;
  bool dropped = false;
  bool finished = false;
};
}  // namespace detail

template <class T>
class [[nodiscard]] ManualFuture {
 public:
  using Output = T;
  explicit ManualFuture(std::shared_ptr<detail::ManualState<T>> s) : state_(std::move(s)) {}
  ManualFuture(ManualFuture&&) noexcept = default;
  ManualFuture& operator=(ManualFuture&&) noexcept = default;
  ~ManualFuture() {
    if (state_) {
      std::lock_guard lock(state_->mu);
      state_->dropped = true;
      state_->waker.reset();
    }
  }

  Poll<T> poll(Context& cx) {
    std::lock_guard lock(state_->mu);
    POLLUX_DCHECK(!state_->finished, "ManualFuture polled after it returned Ready");
    ++state_->polls;
    if (!state_->value) {
      if (!state_->waker.will_wake(cx.waker())) state_->waker = cx.waker();
      return Pending{};
    }
    state_->finished = true;
    if constexpr (std::is_void_v<T>) {
      return Ready{};
    } else {
      return Ready<T>{std::move(*state_->value)};
    }
  }

 private:
  std::shared_ptr<detail::ManualState<T>> state_;
};

template <class T>
class ManualHandle {
 public:
  explicit ManualHandle(std::shared_ptr<detail::ManualState<T>> s) : state_(std::move(s)) {}

  // Stores the value and wakes the waker of the last poll (outside the lock).
  template <class... A>
  void complete(A&&... a) {
    Waker w;
    {
      std::lock_guard lock(state_->mu);
      state_->value.emplace(std::forward<A>(a)...);
      w = std::move(state_->waker);
    }
    std::move(w).wake();
  }
  // Wakes the last poller without completing (a spurious wake-up).
  void wake_spuriously() {
    Waker w;
    {
      std::lock_guard lock(state_->mu);
      w = state_->waker;
    }
    w.wake_by_ref();
  }
  int polls() const {
    std::lock_guard lock(state_->mu);
    return state_->polls;
  }
  bool dropped() const {
    std::lock_guard lock(state_->mu);
    return state_->dropped;
  }
  bool has_waker() const {
    std::lock_guard lock(state_->mu);
    return !state_->waker.empty();
  }

 private:
  std::shared_ptr<detail::ManualState<T>> state_;
};

template <class T>
std::pair<ManualFuture<T>, ManualHandle<T>> make_manual_future() {
  auto s = std::make_shared<detail::ManualState<T>>();
  return {ManualFuture<T>(s), ManualHandle<T>(s)};
}

}  // namespace pollux::testing

#endif  // POLLUX_FUTURE_TESTING_MANUAL_FUTURE_H_
