// poll_fn(f): a future whose poll is the callable `f(Context&) -> Poll<T>`.
//
// The quickest way to write a one-off future, and the way a coroutine polls
// by hand: `co_await poll_fn([&](Context& cx) -> Poll<int> { ... });`.
// `f` is kept inside the future and called on every poll, so it may carry
// state. The poll contract applies to `f`: returning Pending means `f` has
// arranged for `cx.waker()` to be woken.
//
// Cancellation: dropping the future destroys `f` and whatever it captured.
#ifndef POLLUX_FUTURE_POLL_FN_H_
#define POLLUX_FUTURE_POLL_FN_H_

#include <type_traits>
#include <utility>

#include "future/future.h"

namespace pollux {

namespace detail {
template <class P>
struct PollValue;
template <class T>
struct PollValue<Poll<T>> {
  using type = T;
};
}  // namespace detail

// The future poll_fn(f) returns: each poll calls f(cx).
template <class F>
class [[nodiscard]] PollFn {
 public:
  using Output = typename detail::PollValue<std::invoke_result_t<F&, Context&>>::type;
  explicit PollFn(F f) : f_(std::move(f)) {}
  Poll<Output> poll(Context& cx) { return f_(cx); }

 private:
  F f_;
};

template <class F>
[[nodiscard]] PollFn<std::decay_t<F>> poll_fn(F&& f) {
  return PollFn<std::decay_t<F>>(std::forward<F>(f));
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_POLL_FN_H_
