// Polling a future with its output built where the caller keeps it.
//
// Besides `Poll<Output> poll(Context&)`, a future may offer
//
//   bool poll_into(Context& cx, std::optional<Output>& out);
//
// the same poll under the same contract (waker registration, coop budget,
// never again after Ready), whose Ready constructs the output in `out`
// (empty on entry) and returns true; Pending returns false and leaves `out`
// empty. `poll()` stays the one the Future concept requires: poll_into is
// an optimisation a future may add, never a second behaviour.
//
// Why: a result travels from an I/O operation through the wrappers around
// it (Timeout) into the co_await that takes it. Returned, it is moved
// through a Poll and a Ready at every layer, and every moved-from copy is
// destroyed; an IoResult (a StatusOr and a vector) pays about 25
// instructions per move and destroy, several times per message. Polled into
// the awaiter's storage, it is built once where it ends up.
//
// pollux::poll_into(f, cx, out) below calls F's poll_into when it has one
// and otherwise moves the ready value out of poll() once. Outputs that are
// void or references have no poll_into: their Poll carries nothing to move.
#ifndef POLLUX_FUTURE_POLL_INTO_H_
#define POLLUX_FUTURE_POLL_INTO_H_

#include <concepts>
#include <optional>
#include <type_traits>
#include <utility>

#include "future/context.h"
#include "future/future.h"
#include "future/poll.h"

namespace pollux {

// F offers poll_into for its (object) Output.
template <class F>
concept PollsInto = Future<F> && std::is_object_v<output_t<F>> &&
    requires(F &f, Context &cx, std::optional<output_t<F>> &out) {
  { f.poll_into(cx, out) } -> std::same_as<bool>;
};

// Polls `f`; on Ready its output is in `out` (which must be empty) and the
// result is true. In place when F offers poll_into, else one move from poll().
template <Future F>
requires std::is_object_v<output_t<F>>
bool poll_into(F &f, Context &cx, std::optional<output_t<F>> &out) {
  if constexpr (PollsInto<F>) {
    return f.poll_into(cx, out);
  } else {
    Poll<output_t<F>> p = f.poll(cx);
    if (p.is_pending()) return false;
    out.emplace(std::move(p).value());
    return true;
  }
}

namespace detail {
// poll_into for a combinator's child, whose output may be void: a void
// output is stored as Unit (stored_output_t), as poll_unit does.
template <Future F>
bool poll_unit_into(F& f, Context& cx, std::optional<stored_output_t<F>>& out) {
  if constexpr (std::is_void_v<output_t<F>>) {
    if (f.poll(cx).is_pending()) return false;
    out.emplace();
    return true;
  } else {
    return pollux::poll_into(f, cx, out);
  }
}
}  // namespace detail

// A value that converts to what `make()` returns, by calling it: passed to
// std::optional<T>::emplace, the T that `make` returns is built in the
// optional's storage (a prvalue initialises its object directly), so
// `out.emplace(MadeBy{[&] { return finish(); }})` moves nothing.
template <class Make>
struct MadeBy {
  // NOLINTNEXTLINE(google-explicit-constructor): the conversion is the point.
  operator std::invoke_result_t<Make&>() { return make(); }
  Make make;
};
template <class Make>
MadeBy(Make) -> MadeBy<Make>;

// The Poll a poll_into-first future returns from poll(): one move of the
// output out of `out`, only on Ready.
template <class T>
Poll<T> poll_from(bool ready, std::optional<T> &out) {
  if (!ready) return Pending{};
  return Ready<T>(std::move(*out));
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_POLL_INTO_H_
