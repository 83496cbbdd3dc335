// The model checker's detail::Atomic<T> and detail::atomic_fence (the
// --config=model side of future/internal/atomic.h).
//
// Same API as the normal shim: construction from a value; load, store,
// exchange, compare_exchange_{strong,weak} (one or two orders),
// fetch_{add,sub,or,and,xor} (fetch_add/fetch_sub on pointers too), each
// with an explicit std::memory_order (and
// a defaulted source location, for the checker's report). T is trivially
// copyable and at most 8 bytes.
//
// On a model thread during model::check each operation is a scheduling
// point, and a load returns whichever store the memory model lets it read
// (tests/model/internal/memory_model.h). Anywhere else (static
// initialisation, a plain test, a thread the checker does not run) it is
// the std::atomic it holds, so a whole binary can be built this way.
//
// compare_exchange_weak never fails spuriously here (an approximation: a
// spurious failure only repeats a CAS loop).
#ifndef POLLUX_TESTS_MODEL_INSTRUMENTED_ATOMIC_H_
#define POLLUX_TESTS_MODEL_INSTRUMENTED_ATOMIC_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tests/model/internal/hooks.h"

namespace pollux::detail {

template <class T>
class Atomic {
  static_assert(std::is_trivially_copyable_v<T>, "detail::Atomic<T> needs a trivially copyable T");
  static_assert(sizeof(T) <= 8, "detail::Atomic<T> holds at most 8 bytes");
  using Loc = model::internal::SourceLoc;

 public:
  constexpr Atomic() noexcept : value_() {}
  constexpr Atomic(T value) noexcept : value_(value) {}  // NOLINT: as std::atomic
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  T load(std::memory_order order, const char* file = __builtin_FILE(),
         int line = __builtin_LINE()) const noexcept {
    if (!model::internal::in_execution()) return value_.load(order);
    return from_bits(
        model::internal::atomic_load(link_, this, latest_bits(), order, Loc{file, line}));
  }

  void store(T value, std::memory_order order, const char* file = __builtin_FILE(),
             int line = __builtin_LINE()) noexcept {
    if (!model::internal::in_execution()) return value_.store(value, order);
    model::internal::atomic_store(link_, this, latest_bits(), to_bits(value), order,
                                  Loc{file, line});
    value_.store(value, std::memory_order_relaxed);  // the newest value, for later executions
  }

  T exchange(T value, std::memory_order order, const char* file = __builtin_FILE(),
             int line = __builtin_LINE()) noexcept {
    if (!model::internal::in_execution()) return value_.exchange(value, order);
    return rmw("exchange", &replace, to_bits(value), order, Loc{file, line});
  }

  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure, const char* file = __builtin_FILE(),
                               int line = __builtin_LINE()) noexcept {
    if (!model::internal::in_execution()) {
      return value_.compare_exchange_strong(expected, desired, success, failure);
    }
    uint64_t seen = to_bits(expected);
    const bool ok = model::internal::atomic_compare_exchange(
        link_, this, latest_bits(), seen, to_bits(desired), success, failure, Loc{file, line});
    if (ok) {
      value_.store(desired, std::memory_order_relaxed);
    } else {
      expected = from_bits(seen);
    }
    return ok;
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order order,
                               const char* file = __builtin_FILE(),
                               int line = __builtin_LINE()) noexcept {
    return compare_exchange_strong(expected, desired, order, failure_order(order), file, line);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure, const char* file = __builtin_FILE(),
                             int line = __builtin_LINE()) noexcept {
    if (!model::internal::in_execution()) {
      return value_.compare_exchange_weak(expected, desired, success, failure);
    }
    return compare_exchange_strong(expected, desired, success, failure, file, line);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order order,
                             const char* file = __builtin_FILE(),
                             int line = __builtin_LINE()) noexcept {
    return compare_exchange_weak(expected, desired, order, failure_order(order), file, line);
  }

  T fetch_add(T arg, std::memory_order order, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) noexcept
    requires std::is_integral_v<T>
  {
    if (!model::internal::in_execution()) return value_.fetch_add(arg, order);
    return rmw("fetch_add", &add, to_bits(arg), order, Loc{file, line});
  }
  T fetch_sub(T arg, std::memory_order order, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) noexcept
    requires std::is_integral_v<T>
  {
    if (!model::internal::in_execution()) return value_.fetch_sub(arg, order);
    return rmw("fetch_sub", &subtract, to_bits(arg), order, Loc{file, line});
  }
  T fetch_add(std::ptrdiff_t arg, std::memory_order order, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) noexcept
    requires std::is_pointer_v<T> && std::is_object_v<std::remove_pointer_t<T>>
  {
    if (!model::internal::in_execution()) return value_.fetch_add(arg, order);
    return rmw("fetch_add", &advance, pointer_offset(arg), order, Loc{file, line});
  }
  T fetch_sub(std::ptrdiff_t arg, std::memory_order order, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) noexcept
    requires std::is_pointer_v<T> && std::is_object_v<std::remove_pointer_t<T>>
  {
    if (!model::internal::in_execution()) return value_.fetch_sub(arg, order);
    return rmw("fetch_sub", &advance, pointer_offset(-arg), order, Loc{file, line});
  }
  T fetch_or(T arg, std::memory_order order, const char* file = __builtin_FILE(),
             int line = __builtin_LINE()) noexcept
    requires std::is_integral_v<T>
  {
    if (!model::internal::in_execution()) return value_.fetch_or(arg, order);
    return rmw("fetch_or", &bit_or, to_bits(arg), order, Loc{file, line});
  }
  T fetch_and(T arg, std::memory_order order, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) noexcept
    requires std::is_integral_v<T>
  {
    if (!model::internal::in_execution()) return value_.fetch_and(arg, order);
    return rmw("fetch_and", &bit_and, to_bits(arg), order, Loc{file, line});
  }
  T fetch_xor(T arg, std::memory_order order, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) noexcept
    requires std::is_integral_v<T>
  {
    if (!model::internal::in_execution()) return value_.fetch_xor(arg, order);
    return rmw("fetch_xor", &bit_xor, to_bits(arg), order, Loc{file, line});
  }

 private:
  using Bytes = std::array<unsigned char, sizeof(T)>;

  static uint64_t to_bits(T v) noexcept {
    const Bytes bytes = std::bit_cast<Bytes>(v);
    uint64_t bits = 0;
    std::memcpy(&bits, bytes.data(), sizeof(T));
    return bits;
  }
  static T from_bits(uint64_t bits) noexcept {
    Bytes bytes;
    std::memcpy(bytes.data(), &bits, sizeof(T));
    return std::bit_cast<T>(bytes);
  }
  uint64_t latest_bits() const noexcept { return to_bits(value_.load(std::memory_order_relaxed)); }

  static constexpr std::memory_order failure_order(std::memory_order o) noexcept {
    // As std::atomic: the failure order is the success order without its release part.
    if (o == std::memory_order_acq_rel) return std::memory_order_acquire;
    if (o == std::memory_order_release) return std::memory_order_relaxed;
    return o;
  }

  static uint64_t replace(uint64_t, uint64_t operand) { return operand; }
  // Pointer arithmetic on the address bits (wrapping, as the hardware does).
  static uint64_t pointer_offset(std::ptrdiff_t elements) noexcept {
    return static_cast<uint64_t>(elements) * sizeof(std::remove_pointer_t<T>);
  }
  static uint64_t advance(uint64_t old, uint64_t bytes) { return old + bytes; }
  static uint64_t add(uint64_t old, uint64_t operand) {
    return to_bits(static_cast<T>(from_bits(old) + from_bits(operand)));
  }
  static uint64_t subtract(uint64_t old, uint64_t operand) {
    return to_bits(static_cast<T>(from_bits(old) - from_bits(operand)));
  }
  static uint64_t bit_or(uint64_t old, uint64_t operand) {
    return to_bits(static_cast<T>(from_bits(old) | from_bits(operand)));
  }
  static uint64_t bit_and(uint64_t old, uint64_t operand) {
    return to_bits(static_cast<T>(from_bits(old) & from_bits(operand)));
  }
  static uint64_t bit_xor(uint64_t old, uint64_t operand) {
    return to_bits(static_cast<T>(from_bits(old) ^ from_bits(operand)));
  }

  T rmw(const char* name, model::internal::RmwFunction apply, uint64_t operand,
        std::memory_order order, Loc loc) noexcept {
    const model::internal::RmwResult r =
        model::internal::atomic_rmw(link_, this, latest_bits(), name, apply, operand, order, loc);
    value_.store(from_bits(r.new_bits), std::memory_order_relaxed);
    return from_bits(r.old_bits);
  }

  std::atomic<T> value_;  // the value itself outside executions; the newest one inside
  mutable model::internal::AtomicLink link_;
};

inline void atomic_fence(std::memory_order order, const char* file = __builtin_FILE(),
                         int line = __builtin_LINE()) noexcept {
  if (!model::internal::in_execution()) return std::atomic_thread_fence(order);
  model::internal::atomic_fence(order, model::internal::SourceLoc{file, line});
}

}  // namespace pollux::detail

#endif  // POLLUX_TESTS_MODEL_INSTRUMENTED_ATOMIC_H_
