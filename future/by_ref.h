// by_ref(f): a future that polls `f`, which the caller keeps, so one future
// can take part in several races in turn without being rebuilt for each
// (Rust's `&mut fut`):
//
//   auto stopping = token.cancelled();          // one per connection
//   for (;;) {
//     auto r = co_await select(read_next(), by_ref(stopping));
//     if (r.index == 1) co_return;              // shutting down
//     ...
//
// Rebuilding a waiter per race can cost more than the race: a
// CancellationToken's cancelled() registers with the token and unlinks
// under its lock when dropped, once per request (issue 17 measured 528
// instructions per HTTP request).
//
// Contract: `f` must outlive the ByRef and stay where it is (a future never
// moves once polled); after it has returned Ready it must not be polled
// again, through a ByRef or otherwise.
//
// Cancellation: dropping a ByRef does nothing to `f`: it stays as it was
// after its last poll (a waiter stays registered), ready to be polled
// again; dropping `f` itself cancels it with its own semantics.
#ifndef POLLUX_FUTURE_BY_REF_H_
#define POLLUX_FUTURE_BY_REF_H_

#include "future/future.h"

namespace pollux {

// The future by_ref() returns: polls the referenced future.
template <Future F>
class [[nodiscard]] ByRef {
 public:
  using Output = output_t<F>;
  explicit ByRef(F& f) noexcept : f_(&f) {}
  Poll<Output> poll(Context& cx) { return f_->poll(cx); }

 private:
  F* f_;
};

// Polls `f` in place (see the header comment).
template <Future F>
[[nodiscard]] ByRef<F> by_ref(F& f) noexcept {
  return ByRef<F>(f);
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_BY_REF_H_
