// select(f1, f2, ...): races futures; the first to finish wins.
//
// Output is `SelectResult<O1, O2, ...>`: `index` of the winner and `value`, a
// `std::variant<O1, O2, ...>` built with `std::in_place_index<index>` (so equal
// types stay distinguishable), with `Unit` standing for void. Children are
// polled in argument order on every poll (biased, like tokio's `biased;`
// select): when several are ready at once the leftmost wins. Put the branch
// that must not starve (a shutdown signal, a timeout) first. A poll on a
// spent coop budget polls no child: it wakes the task once and returns
// Pending (yield_if_budget_spent, future/context.h).
//
// The losers are destroyed at once, before select returns Ready, so their
// resources (sockets, timers, slots) are released immediately.
//
// Exceptions: if a child's poll throws, every child is destroyed, select
// counts as finished, and the exception propagates.
//
// Cancellation: dropping a select before Ready drops every child. A child
// that lost (or was dropped) is cancelled with that child's own semantics;
// check each child's "Cancellation" paragraph for what it loses (for example
// a read that lost a race may have consumed nothing, or data a retry must
// not expect again).
#ifndef POLLUX_FUTURE_SELECT_H_
#define POLLUX_FUTURE_SELECT_H_

#include <cstddef>
#include <optional>
#include <tuple>
#include <utility>
#include <variant>

#include "future/assert.h"
#include "future/context.h"
#include "future/future.h"
#include "future/poll_into.h"

namespace pollux {

// select's output: which child won (`index`) and its output (`value`).
template <class... Ts>
struct SelectResult {
  size_t index;
  std::variant<Ts...> value;
};

// The future select(fs...) returns: the first child to finish wins, the rest
// are dropped.
template <Future... Fs>
class [[nodiscard]] Select {
 public:
  using Output = SelectResult<stored_output_t<Fs>...>;

  // Each child is moved once, from select()'s parameter into its slot.
  explicit Select(Fs&&... fs) : children_(std::move(fs)...) {}

  Poll<Output> poll(Context& cx) {
    std::optional<Output> out;
    return poll_from(poll_into(cx, out), out);
  }

  // poll(), with the result built in `out` (future/poll_into.h): the
  // winner's output is polled into place and moved once, into the result.
  bool poll_into(Context& cx, std::optional<Output>& out) {
    POLLUX_DCHECK(!done_, "select() future polled after it returned Ready");
    if (yield_if_budget_spent(cx)) return false;
    try {
      poll_children(cx, out, std::index_sequence_for<Fs...>{});
    } catch (...) {
      finish();
      throw;
    }
    if (!out) return false;
    finish();
    return true;
  }

 private:
  template <size_t... Is>
  void poll_children(Context& cx, std::optional<Output>& winner, std::index_sequence<Is...>) {
    // Short-circuits at the first ready child.
    (poll_child<Is>(cx, winner) || ...);
  }

  template <size_t I>
  bool poll_child(Context& cx, std::optional<Output>& winner) {
    auto& child = std::get<I>(children_);
    using Child = std::tuple_element_t<I, std::tuple<Fs...>>;
    std::optional<stored_output_t<Child>> v;
    if (!detail::poll_unit_into(*child, cx, v)) return false;
    winner.emplace(MadeBy{[&] {
      return Output{I, decltype(Output::value)(std::in_place_index<I>, std::move(*v))};
    }});
    return true;
  }

  // Destroys every child still alive (the losers, and the winner's spent future).
  void finish() noexcept {
    done_ = true;
    std::apply([](auto&... child) { (child.reset(), ...); }, children_);
  }

  std::tuple<std::optional<Fs>...> children_;
  bool done_ = false;
};

template <Future... Fs>
[[nodiscard]] Select<Fs...> select(Fs... fs) {
  static_assert(sizeof...(Fs) > 0, "select() needs at least one future");
  return Select<Fs...>(std::move(fs)...);
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_SELECT_H_
