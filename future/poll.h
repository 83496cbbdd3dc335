// Poll<T>: the result of polling a future once, either Ready(value) or Pending.
//
// A future's `poll(Context&)` returns `Poll<Output>`. Pending means "not yet,
// and I have arranged for `cx.waker()` to be woken when it is worth polling me
// again"; Ready carries the output and ends the future's life as a future.
//
//   Poll<int> p = Ready(42);     // or Ready{42}
//   Poll<int> q = Pending{};
//   Poll<void> r = Ready{};      // Poll<void> carries no value
//
// `Unit` stands for "no value" wherever a value must be stored (join's tuple,
// JoinResult of a void task). Poll<T&> stores a pointer and is what Task<T&>
// produces. Thread-safety: a plain value type.
#ifndef POLLUX_FUTURE_POLL_H_
#define POLLUX_FUTURE_POLL_H_

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include "future/assert.h"

namespace pollux {

// Stands for void wherever a value must be stored.
struct Unit {
  friend constexpr bool operator==(Unit, Unit) noexcept { return true; }
};

// `void` becomes Unit; every other type is itself.
template <class T>
using OrUnit = std::conditional_t<std::is_void_v<T>, Unit, T>;

// Tag: `return Pending{};` from a poll function.
struct Pending {};

// Carrier for a ready value: `return Ready(x);` converts to any Poll<U> that can
// be built from `x`. `Ready{}` (Ready<void>) converts to Poll<void>.
template <class T = void>
struct Ready {
  // A real constructor (not aggregate init) so `Ready(x)` also works on clang 14.
  constexpr Ready(T v) : value(std::move(v)) {}  // NOLINT
  T value;
};
template <>
struct Ready<void> {};
template <class T>
Ready(T) -> Ready<T>;
Ready() -> Ready<void>;

// The result of one poll: Ready with a T, or Pending (see above).
template <class T>
class [[nodiscard]] Poll {
 public:
  using value_type = T;

  Poll(Pending) noexcept {}  // NOLINT: implicit by design, as in `return Pending{};`
  template <class U>
    requires std::is_constructible_v<T, U&&>
  Poll(Ready<U>&& r) : value_(std::in_place, std::move(r.value)) {}  // NOLINT
  template <class U>
    requires std::is_constructible_v<T, const U&>
  Poll(const Ready<U>& r) : value_(std::in_place, r.value) {}  // NOLINT

  static Poll ready(T v) { return Poll(Ready<T>{std::move(v)}); }
  static Poll pending() noexcept { return Poll(Pending{}); }

  bool is_ready() const noexcept { return value_.has_value(); }
  bool is_pending() const noexcept { return !value_.has_value(); }
  explicit operator bool() const noexcept { return is_ready(); }

  // The ready value. Calling these on Pending is a bug (checked in debug builds).
  T& value() & noexcept {
    POLLUX_DCHECK(is_ready(), "Poll::value() called on Pending");
    return *value_;
  }
  const T& value() const& noexcept {
    POLLUX_DCHECK(is_ready(), "Poll::value() called on Pending");
    return *value_;
  }
  T&& value() && noexcept {
    POLLUX_DCHECK(is_ready(), "Poll::value() called on Pending");
    return std::move(*value_);
  }

  // Applies `f` to a ready value; Pending stays Pending.
  template <class F>
  auto map(F&& f) && -> Poll<std::invoke_result_t<F, T&&>> {
    using U = std::invoke_result_t<F, T&&>;
    if (is_pending()) return Pending{};
    if constexpr (std::is_void_v<U>) {
      std::forward<F>(f)(std::move(*value_));
      return Ready{};
    } else {
      return Ready<U>{std::forward<F>(f)(std::move(*value_))};
    }
  }

 private:
  std::optional<T> value_;
};

// Poll<void>: Ready carries no value.
template <>
class [[nodiscard]] Poll<void> {
 public:
  using value_type = void;

  Poll(Pending) noexcept {}       // NOLINT
  Poll(Ready<void>) noexcept : ready_(true) {}  // NOLINT

  static Poll ready() noexcept { return Poll(Ready<void>{}); }
  static Poll pending() noexcept { return Poll(Pending{}); }

  bool is_ready() const noexcept { return ready_; }
  bool is_pending() const noexcept { return !ready_; }
  explicit operator bool() const noexcept { return ready_; }
  void value() const noexcept { POLLUX_DCHECK(ready_, "Poll::value() called on Pending"); }

 private:
  bool ready_ = false;
};

// References: a pointer underneath, so Poll<T&> is trivially copyable.
template <class T>
class [[nodiscard]] Poll<T&> {
 public:
  using value_type = T&;

  Poll(Pending) noexcept {}  // NOLINT
  template <class U>
    requires std::is_convertible_v<U*, T*>
  Poll(Ready<std::reference_wrapper<U>> r) noexcept : ptr_(&r.value.get()) {}  // NOLINT

  static Poll ready(T& v) noexcept { return Poll(Ready<std::reference_wrapper<T>>{std::ref(v)}); }
  static Poll pending() noexcept { return Poll(Pending{}); }

  bool is_ready() const noexcept { return ptr_ != nullptr; }
  bool is_pending() const noexcept { return ptr_ == nullptr; }
  explicit operator bool() const noexcept { return is_ready(); }
  T& value() const noexcept {
    POLLUX_DCHECK(is_ready(), "Poll::value() called on Pending");
    return *ptr_;
  }

 private:
  T* ptr_ = nullptr;
};

}  // namespace pollux

#endif  // POLLUX_FUTURE_POLL_H_
