// Probe futures: small hand-driven futures the combinator tests share.
//
//   Harness      Drives futures by hand: an unlimited budget, a CountingWaker
//                and a Context over them (`h.cx`), so a test can poll a future
//                directly and then read `h.cw` to see what it did to the waker.
//   Probe        What a ProbeFuture reports about itself: how often it was
//                polled and how many times the instance that was not moved
//                from was destroyed (so a test can check that a combinator
//                stops polling a finished child and destroys it exactly once).
//   ProbeFuture  Pending (waking itself by ref) for `pending_polls` polls, then
//                Ready(value); `kForever` keeps it pending. Holds a Counted so
//                its own state shows up in Counted::live().
//   InPlaceFuture
//                Pending (waking by ref) for `pending_polls` polls, then
//                Ready with a Counted(value) (T = Counted), or a
//                StatusOr/Status holding one: built in the caller's storage
//                by poll_into (future/poll_into.h), so a test counts the
//                moves between it and the co_await.
//   TestError    The exception ThrowingFuture throws.
//   ThrowingFuture
//                Pending (waking by ref) until its `throw_on`-th poll, which
//                throws TestError; holds a Counted, so a test can check that a
//                combinator destroys it during unwinding.
#ifndef POLLUX_FUTURE_TESTING_PROBE_FUTURES_H_
#define POLLUX_FUTURE_TESTING_PROBE_FUTURES_H_

#include <climits>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "future/context.h"
#include "future/poll.h"
#include "future/poll_into.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "future/waker.h"

namespace pollux::testing {

struct Harness {
  Budget budget = Budget::unlimited();
  CountingWaker cw;
  Waker waker = cw.waker();
  Context cx{waker, budget};
};

struct Probe {
  int polls = 0;
  int destroyed = 0;  // destructor runs of the instance that was not moved from
};

inline constexpr int kForever = INT_MAX;

template <class T = int>
class ProbeFuture {
 public:
  using Output = T;
  ProbeFuture(Probe* probe, int pending_polls, OrUnit<T> value = {})
      : probe_(probe), pending_polls_(pending_polls), value_(std::move(value)) {}
  ProbeFuture(ProbeFuture&& o) noexcept
      : probe_(std::exchange(o.probe_, nullptr)),
        pending_polls_(o.pending_polls_),
        value_(std::move(o.value_)),
        payload_(std::move(o.payload_)) {}
  ~ProbeFuture() {
    if (probe_ != nullptr) ++probe_->destroyed;
  }

  Poll<T> poll(Context& cx) {
    ++probe_->polls;
    if (pending_polls_ > 0) {
      if (pending_polls_ != kForever) --pending_polls_;
      cx.waker().wake_by_ref();
      return Pending{};
    }
    if constexpr (std::is_void_v<T>) {
      return Ready{};
    } else {
      return Ready<T>(std::move(value_));
    }
  }

 private:
  Probe* probe_;
  int pending_polls_;
  OrUnit<T> value_;
  Counted payload_{-1};
};

template <class T = Counted>
class [[nodiscard]] InPlaceFuture {
 public:
  using Output = T;
  InPlaceFuture(int pending_polls, int value) : pending_polls_(pending_polls), value_(value) {}

  Poll<T> poll(Context& cx) {
    std::optional<T> out;
    return poll_from(poll_into(cx, out), out);
  }
  bool poll_into(Context& cx, std::optional<T>& out) {
    if (pending_polls_ > 0) {
      --pending_polls_;
      cx.waker().wake_by_ref();
      return false;
    }
    out.emplace(MadeBy{[&] { return T(Counted(value_)); }});
    return true;
  }

 private:
  int pending_polls_;
  int value_;
};

struct TestError : std::runtime_error {
  TestError() : std::runtime_error("test error") {}
};

template <class T = int>
class ThrowingFuture {
 public:
  using Output = T;
  explicit ThrowingFuture(int throw_on = 1) : throw_on_(throw_on) {}
  Poll<T> poll(Context& cx) {
    if (++polls_ >= throw_on_) throw TestError();
    cx.waker().wake_by_ref();
    return Pending{};
  }

 private:
  int throw_on_;
  int polls_ = 0;
  Counted payload_{-2};
};

}  // namespace pollux::testing

#endif  // POLLUX_FUTURE_TESTING_PROBE_FUTURES_H_
