// The Future concept: anything with `Output` and `Poll<Output> poll(Context&)`.
//
//   struct Countdown {
//     using Output = int;
//     Poll<int> poll(Context& cx) { ... }
//   };
//
// The contract every future and every poller keeps:
// - Pending means the future has arranged for `cx.waker()` (or a clone) to be
//   woken when progress is possible; Pending without that is a lost wake-up.
//   Wake-ups may be spurious: polled early, a future returns Pending again.
// - Once polled, a future is not moved (C++ has no Pin): the task cell, the
//   coroutine frame or the combinator that holds it is its fixed home. Moving
//   a future before its first poll is fine; that is how it gets there.
// - After Ready the future is not polled again (debug builds assert it).
// - `poll` may throw; a future whose poll threw counts as finished.
// - Dropping a future cancels it; each public future documents what dropping
//   it before Ready means in a "Cancellation:" paragraph.
// A future may also offer poll_into, the same poll with its output built
// where the caller keeps it (future/poll_into.h); poll() is still required.
#ifndef POLLUX_FUTURE_FUTURE_H_
#define POLLUX_FUTURE_FUTURE_H_

#include <concepts>
#include <type_traits>

#include "future/context.h"
#include "future/poll.h"

namespace pollux {

template <class F>
concept Future = requires(F& f, Context& cx) {
  typename F::Output;
  { f.poll(cx) } -> std::same_as<Poll<typename F::Output>>;
};

// The output type of a future.
template <Future F>
using output_t = typename F::Output;

// A future's output with void replaced by Unit (what join and JoinResult store).
template <Future F>
using stored_output_t = OrUnit<typename F::Output>;

namespace detail {
// Polls `f` and turns its Poll<void> into Poll<Unit>, so generic code can store it.
template <Future F>
Poll<stored_output_t<F>> poll_unit(F& f, Context& cx) {
  if constexpr (std::is_void_v<output_t<F>>) {
    if (f.poll(cx).is_ready()) return Ready(Unit{});
    return Pending{};
  } else {
    return f.poll(cx);
  }
}
}  // namespace detail

}  // namespace pollux

#endif  // POLLUX_FUTURE_FUTURE_H_
