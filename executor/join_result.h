// JoinResult<T> and JoinError: how a spawned task ended, as seen by its
// JoinHandle.
//
// A task ends in one of three ways: its future returned Ready(value) (ok()),
// it was cancelled (abort(), or its executor shut down before it finished),
// or its poll threw ("panicked", kept as std::exception_ptr). A void task's
// value is Unit. `status()` folds the outcome into an absl::Status for code
// that speaks Status: OK, kCancelled, or kInternal with the exception's
// what(). Thread-safety: a plain value type.
#ifndef POLLUX_EXECUTOR_JOIN_RESULT_H_
#define POLLUX_EXECUTOR_JOIN_RESULT_H_

#include <exception>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "future/assert.h"

namespace pollux {

// Why a task has no value: it was cancelled, or its poll threw (the exception
// is kept).
class JoinError {
 public:
  // Cancelled (abort() or executor shutdown), or panicked (the poll threw).
  enum class Kind { kCancelled, kPanicked };

  static JoinError cancelled() noexcept { return JoinError(Kind::kCancelled, nullptr); }
  static JoinError panicked(std::exception_ptr e) noexcept {
    return JoinError(Kind::kPanicked, std::move(e));
  }

  Kind kind() const noexcept { return kind_; }
  bool is_cancelled() const noexcept { return kind_ == Kind::kCancelled; }
  bool is_panic() const noexcept { return kind_ == Kind::kPanicked; }
  // The exception the task's poll threw (null when cancelled).
  const std::exception_ptr& exception() const noexcept { return exception_; }
  // kCancelled, or kInternal naming the exception.
  absl::Status status() const;
  // Rethrows the task's exception; a cancelled task throws nothing.
  void rethrow() const {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  JoinError(Kind k, std::exception_ptr e) noexcept : kind_(k), exception_(std::move(e)) {}
  Kind kind_;
  std::exception_ptr exception_;
};

// How a task ended: its value (ok()), or a JoinError. A plain value type.
template <class T>
class [[nodiscard]] JoinResult {
 public:
  JoinResult(T value) : v_(std::in_place_index<0>, std::move(value)) {}     // NOLINT
  JoinResult(JoinError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  bool is_cancelled() const noexcept { return !ok() && error().is_cancelled(); }
  bool is_panic() const noexcept { return !ok() && error().is_panic(); }

  // The task's value. Calling it on a failed result aborts with the reason;
  // check ok() first, or use status() / rethrow().
  T& value() & {
    check_ok();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check_ok();
    return std::get<0>(v_);
  }
  T&& value() && {
    check_ok();
    return std::get<0>(std::move(v_));
  }
  const JoinError& error() const noexcept {
    POLLUX_DCHECK(!ok(), "JoinResult::error() on a task that succeeded");
    return std::get<1>(v_);
  }
  absl::Status status() const { return ok() ? absl::OkStatus() : error().status(); }
  // Rethrows a panicked task's exception; otherwise does nothing.
  void rethrow() const {
    if (!ok()) error().rethrow();
  }

 private:
  void check_ok() const {
    POLLUX_CHECK(ok(), is_cancelled() ? "JoinResult::value() on a cancelled task; check ok() first"
                                      : "JoinResult::value() on a task whose poll threw; "
                                        "check ok() or call rethrow()");
  }
  std::variant<T, JoinError> v_;
};

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_JOIN_RESULT_H_
