// map(fut, fn) and then(fut, fn): transform a future's output.
//
// map: Output is `fn(output)` (or `fn()` when the output is void).
// then: `fn(output)` returns a second future, which is then polled in place;
// Output is the second future's output. The first future is destroyed as soon
// as it is Ready, before the second one is built.
//
// Exceptions: if `fn` or a child's poll throws, the combinator is finished and
// the exception propagates to the caller of poll.
//
// Cancellation: dropping before Ready drops whichever child is in flight and
// `fn` if it has not been called; a first future's output that `then` already
// handed to `fn` is owned by the second future.
#ifndef POLLUX_FUTURE_MAP_H_
#define POLLUX_FUTURE_MAP_H_

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "future/assert.h"
#include "future/future.h"

namespace pollux {

namespace detail {
// The result of calling `fn` with a future's output (nothing when it is void).
template <class Fn, class T>
struct ApplyResult {
  using type = std::invoke_result_t<Fn&&, T&&>;
};
template <class Fn>
struct ApplyResult<Fn, void> {
  using type = std::invoke_result_t<Fn&&>;
};

template <class Fn, Future F>
decltype(auto) apply_output(Fn&& fn, Poll<output_t<F>>&& p) {
  if constexpr (std::is_void_v<output_t<F>>) {
    return std::forward<Fn>(fn)();
  } else {
    return std::forward<Fn>(fn)(std::move(p).value());
  }
}
}  // namespace detail

// The future map(fut, fn) returns: Output is fn(fut's output).
template <Future F, class Fn>
class [[nodiscard]] Map {
 public:
  using Output = typename detail::ApplyResult<Fn, output_t<F>>::type;

  Map(F fut, Fn fn) : fut_(std::move(fut)), fn_(std::move(fn)) {}

  Poll<Output> poll(Context& cx) {
    POLLUX_DCHECK(fn_.has_value(), "map() future polled after it returned Ready");
    Poll<output_t<F>> p = fut_.poll(cx);
    if (p.is_pending()) return Pending{};
    Fn fn = std::move(*fn_);
    fn_.reset();
    if constexpr (std::is_void_v<Output>) {
      detail::apply_output<Fn, F>(std::move(fn), std::move(p));
      return Ready{};
    } else {
      return Ready<Output>{detail::apply_output<Fn, F>(std::move(fn), std::move(p))};
    }
  }

 private:
  F fut_;
  std::optional<Fn> fn_;
};

template <Future F, class Fn>
[[nodiscard]] Map<F, std::decay_t<Fn>> map(F fut, Fn&& fn) {
  return Map<F, std::decay_t<Fn>>(std::move(fut), std::forward<Fn>(fn));
}

// The future then(fut, fn) returns: polls the future fn(output) builds, in
// place.
template <Future F, class Fn>
class [[nodiscard]] Then {
  using Second = typename detail::ApplyResult<Fn, output_t<F>>::type;
  static_assert(Future<Second>, "then(fut, fn): fn must return a Future");

 public:
  using Output = output_t<Second>;

  Then(F fut, Fn fn) : state_(std::in_place_index<0>, std::move(fut), std::move(fn)) {}

  Poll<Output> poll(Context& cx) {
    if (state_.index() == 0) {
      auto& [first, fn] = std::get<0>(state_);
      Poll<output_t<F>> p = first.poll(cx);
      if (p.is_pending()) return Pending{};
      Fn f = std::move(fn);
      // The first future is destroyed before the second is built and polled.
      state_.template emplace<1>();
      std::get<1>(state_).emplace(detail::apply_output<Fn, F>(std::move(f), std::move(p)));
    }
    POLLUX_DCHECK(state_.index() == 1 && std::get<1>(state_).has_value(),
                  "then() future polled after it returned Ready");
    Poll<Output> p = (*std::get<1>(state_)).poll(cx);
    if (p.is_ready()) state_.template emplace<2>();
    return p;
  }

 private:
  struct FirstStage {
    FirstStage(F f, Fn g) : first(std::move(f)), fn(std::move(g)) {}
    F first;
    Fn fn;
  };
  struct Done {};
  // FirstStage -> optional<Second> (built in place, never moved) -> Done.
  std::variant<FirstStage, std::optional<Second>, Done> state_;
};

template <Future F, class Fn>
[[nodiscard]] Then<F, std::decay_t<Fn>> then(F fut, Fn&& fn) {
  return Then<F, std::decay_t<Fn>>(std::move(fut), std::forward<Fn>(fn));
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_MAP_H_
