// join(f1, f2, ...): runs futures concurrently and completes when all have.
//
// Output is `std::tuple<O1, O2, ...>` in argument order, with `Unit` standing
// for a void output. Each poll polls every unfinished child with the same
// Context (so they share the task's waker and budget). A child that finishes
// is destroyed at once and its output kept; it is never polled again. A poll
// on a spent coop budget polls no child: it wakes the task once and returns
// Pending (yield_if_budget_spent, future/context.h).
//
// Exceptions: if a child's poll throws, join destroys every remaining child
// and every output it kept, counts as finished, and rethrows.
//
// Cancellation: dropping a join before Ready drops the unfinished children
// (cancelling them) and the outputs of the finished ones.
#ifndef POLLUX_FUTURE_JOIN_H_
#define POLLUX_FUTURE_JOIN_H_

#include <optional>
#include <tuple>
#include <utility>

#include "future/assert.h"
#include "future/context.h"
#include "future/future.h"
#include "future/poll_into.h"

namespace pollux {

namespace detail {

// A child of join: the future until it finishes, then its output, then
// neither once the output was handed out (or the join gave up after a
// throw). The output is polled into place (future/poll_into.h).
template <Future F>
class MaybeDone {
 public:
  explicit MaybeDone(F&& f) : future_(std::in_place, std::move(f)) {}

  // Polls the child if it is still running; true once its output is stored.
  bool poll(Context& cx) {
    if (future_.has_value()) {
      if (!detail::poll_unit_into(*future_, cx, output_)) return false;
      future_.reset();  // the future is destroyed here, before the join returns
    }
    return true;
  }
  // The stored output, to be moved from once (the moved-from value stays
  // here until the join is dropped).
  stored_output_t<F>&& take() { return std::move(*output_); }
  void reset() noexcept {
    future_.reset();
    output_.reset();
  }

 private:
  std::optional<F> future_;
  std::optional<stored_output_t<F>> output_;
};

}  // namespace detail

// The future join(fs...) returns: Output is the tuple of the children's
// outputs.
template <Future... Fs>
class [[nodiscard]] Join {
 public:
  using Output = std::tuple<stored_output_t<Fs>...>;

  // Each child is moved once, from join()'s parameter straight into its
  // MaybeDone in the tuple: every moved-from future costs a destructor run
  // (128 of them per extra move in a join of 128 ops).
  explicit Join(Fs&&... fs) : children_(std::move(fs)...) {}

  Poll<Output> poll(Context& cx) {
    std::optional<Output> out;
    return poll_from(poll_into(cx, out), out);
  }

  // poll(), with the tuple built in `out` (future/poll_into.h): each
  // output is moved once, from its child's slot into the tuple.
  bool poll_into(Context& cx, std::optional<Output>& out) {
    POLLUX_DCHECK(!done_, "join() future polled after it returned Ready");
    if (yield_if_budget_spent(cx)) return false;
    bool all_done = true;
    try {
      std::apply([&](auto&... child) { ((all_done &= child.poll(cx)), ...); }, children_);
    } catch (...) {
      done_ = true;
      std::apply([](auto&... child) { (child.reset(), ...); }, children_);
      throw;
    }
    if (!all_done) return false;
    done_ = true;
    out.emplace(MadeBy{[&] {
      return std::apply([](auto&... child) { return Output(child.take()...); }, children_);
    }});
    return true;
  }

 private:
  std::tuple<detail::MaybeDone<Fs>...> children_;
  bool done_ = false;
};

template <Future... Fs>
[[nodiscard]] Join<Fs...> join(Fs... fs) {
  static_assert(sizeof...(Fs) > 0, "join() needs at least one future");
  return Join<Fs...>(std::move(fs)...);
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_JOIN_H_
