// Budget and Context: what a future receives when it is polled.
//
// Context is a non-copyable view built by the executor on its stack for one
// task poll. It borrows the task's Waker (no refcounting) and its cooperative
// Budget. A future never keeps a Context* or the borrowed `const Waker&` past
// the poll; it copies (clones) the waker when it must keep it, and uses
// `Waker::will_wake` to skip re-cloning an unchanged one. `with_waker` makes a
// child Context sharing the same Budget; combinators use it.
//
// Budget (coop scheduling, as in tokio): the executor resets it to 128 before
// each task poll. Every leaf resource future (I/O op, timer, sync primitive,
// JoinHandle) starts its poll with
//
//   if (!cx.budget().try_take()) { cx.waker().wake_by_ref(); return Pending{}; }
//
// and calls `cx.budget().refund()` when it then returns a real Pending, so a
// task that always finds its resources ready still yields to its neighbours.
// A combinator of several children (join, select) starts its poll with
// `if (yield_if_budget_spent(cx)) return Pending{};`: on a spent budget it
// yields once for all of its leaves instead of having each refuse in turn.
// `Budget::unlimited()` never runs out (block_on outside a runtime, tests).
//
// Thread-safety: neither type is shared between threads.
#ifndef POLLUX_FUTURE_CONTEXT_H_
#define POLLUX_FUTURE_CONTEXT_H_

#include <cstdint>

#include "future/waker.h"

namespace pollux {

// A task's cooperative poll budget: try_take() before polling a resource,
// refund() on a real Pending.
class Budget {
 public:
  static constexpr uint32_t kDefault = 128;

  explicit constexpr Budget(uint32_t units = kDefault) noexcept : remaining_(units) {}
  static constexpr Budget unlimited() noexcept {
    Budget b(kUnlimited);
    b.unlimited_ = true;
    return b;
  }

  // Takes one unit; false when the budget is spent (the caller should yield).
  // Every leaf's poll runs this and refund(): one test each, with the
  // unlimited case kept off that path (an unlimited budget counts down from
  // kUnlimited like any other and is refilled when it reaches 0).
  bool try_take() noexcept {
    if (remaining_ == 0) [[unlikely]] return refill_or_refuse();
    --remaining_;
    return true;
  }
  // Gives back the unit taken by a poll that ended up making no progress.
  // (An unlimited budget refunded past kUnlimited wraps to 0 and is refilled
  // by the next try_take.)
  void refund() noexcept { ++remaining_; }
  void reset(uint32_t units = kDefault) noexcept {
    remaining_ = units;
    refused_ = false;
    unlimited_ = false;
  }
  // Whether try_take() refused since the last reset (or take_refused(),
  // which also clears it): the executor counts forced yields with it after
  // a poll.
  bool refused() const noexcept { return refused_; }
  bool take_refused() noexcept {
    const bool r = refused_;
    refused_ = false;
    return r;
  }
  bool is_unlimited() const noexcept { return unlimited_; }
  // Units left (kUnlimited, unchanging, for an unlimited budget).
  uint32_t remaining() const noexcept { return unlimited_ ? kUnlimited : remaining_; }

 private:
  static constexpr uint32_t kUnlimited = UINT32_MAX;

  bool refill_or_refuse() noexcept {
    if (unlimited_) {
      remaining_ = kUnlimited - 1;  // this take's unit is gone
      return true;
    }
    refused_ = true;  // a forced yield, for the executor's metrics
    return false;
  }

  uint32_t remaining_;
  bool refused_ = false;
  bool unlimited_ = false;
};

// What poll() receives: the task's borrowed Waker and Budget, valid only for
// that poll.
class Context {
 public:
  Context(const Waker& waker, Budget& budget) noexcept : waker_(waker), budget_(budget) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The waker to clone when returning Pending. Borrowed: valid for this poll only.
  const Waker& waker() const noexcept { return waker_; }
  Budget& budget() const noexcept { return budget_; }

  // A child context with another waker and this context's budget.
  Context with_waker(const Waker& waker) const noexcept { return Context(waker, budget_); }

 private:
  const Waker& waker_;
  Budget& budget_;
};

// For a combinator, at the start of its poll: true, after waking the task
// once and counting a forced yield, when the budget is spent; the combinator
// then returns Pending without polling its children. Every leaf below would
// refuse anyway, and each would wake the task: in a join of 128 I/O ops
// polled right after one that took the whole budget, that cost about 60
// instructions per op (bench/io_bench BM_NopJoin<128>). Takes no unit; the
// children take their own. A child that takes no budget (a ready value)
// waits for the next poll with its siblings.
inline bool yield_if_budget_spent(Context& cx) noexcept {
  if (cx.budget().try_take()) {
    cx.budget().refund();
    return false;
  }
  cx.waker().wake_by_ref();
  return true;
}

}  // namespace pollux

#endif  // POLLUX_FUTURE_CONTEXT_H_
