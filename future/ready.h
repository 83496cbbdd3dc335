// ready(v): a future that is immediately Ready(v); pending<T>(): one that never is.
//
// Cancellation: dropping `ready(v)` before it is polled destroys `v`; dropping
// `pending<T>()` loses nothing. `pending` registers no waker (nothing will ever
// wake it), which is legal: it simply never completes, so only use it inside a
// select or timeout.
#ifndef POLLUX_FUTURE_READY_H_
#define POLLUX_FUTURE_READY_H_

#include <optional>
#include <utility>

#include "future/assert.h"
#include "future/future.h"

namespace pollux {

// The future ready(v) returns: Ready(v) on its first poll.
template <class T>
class [[nodiscard]] ReadyFuture {
 public:
  using Output = T;
  explicit ReadyFuture(T v) : value_(std::move(v)) {}
  Poll<T> poll(Context&) {
    POLLUX_DCHECK(value_.has_value(), "ready() future polled after it returned Ready");
    Poll<T> p = Ready<T>{std::move(*value_)};
    value_.reset();
    return p;
  }

 private:
  std::optional<T> value_;
};

// The future ready() returns: Ready on its first poll.
template <>
class [[nodiscard]] ReadyFuture<void> {
 public:
  using Output = void;
  Poll<void> poll(Context&) {
    POLLUX_DCHECK(!done_, "ready() future polled after it returned Ready");
    done_ = true;
    return Ready{};
  }

 private:
  bool done_ = false;
};

template <class T>
[[nodiscard]] ReadyFuture<std::decay_t<T>> ready(T&& v) {
  return ReadyFuture<std::decay_t<T>>(std::forward<T>(v));
}
[[nodiscard]] inline ReadyFuture<void> ready() { return {}; }

// The future pending<T>() returns: never Ready, registers no waker.
template <class T>
class [[nodiscard]] PendingFuture {
 public:
  using Output = T;
  Poll<T> poll(Context&) { return Pending{}; }
};

template <class T = void>
[[nodiscard]] PendingFuture<T> pending() {
  return {};
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_READY_H_
