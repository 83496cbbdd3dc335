// detail::RaceCell<T>: plain (non-atomic) data that several threads hand to
// each other through some protocol: a task's stage and join waker, the
// owner-only fields a remote thread must never read.
//
//   RaceCell<Waker> join_waker_;
//   join_waker_.get_mut() = w;            // a write access, here
//   join_waker_.get().wake_by_ref();      // a read access, here
//
// Normally it is the T and nothing else (get/get_mut are inline accessors).
// Under `--config=model` (POLLUX_MODEL) each get() and get_mut() is an
// access the model checker (tests/model/) checks against the others with
// vector clocks: two accesses of which one writes and neither happens before
// the other is a reported data race, so a protocol that forgets a release
// (or an acquire) fails the model even where the interleaving looks right.
//
// The access happens at the call; keep the returned reference only as long
// as the protocol says this thread owns the cell.
#ifndef POLLUX_FUTURE_INTERNAL_RACE_CELL_H_
#define POLLUX_FUTURE_INTERNAL_RACE_CELL_H_

#if defined(POLLUX_MODEL)
#include "tests/model/instrumented.h"
#else

#include <utility>

namespace pollux::detail {

template <class T>
class RaceCell {
 public:
  template <class... Args>
  explicit RaceCell(Args&&... args) : value_(std::forward<Args>(args)...) {}
  RaceCell(const RaceCell&) = delete;
  RaceCell& operator=(const RaceCell&) = delete;

  // A read access.
  const T& get() const noexcept { return value_; }
  // A write access.
  T& get_mut() noexcept { return value_; }

 private:
  T value_;
};

}  // namespace pollux::detail

#endif  // POLLUX_MODEL

#endif  // POLLUX_FUTURE_INTERNAL_RACE_CELL_H_
