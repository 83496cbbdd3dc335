// BoxFuture<T>: a type-erased future with Output = T, in one heap allocation.
//
// Use it to store futures of different types in one container, to return a
// future from a virtual function, or to break a recursive type. The boxed
// future is moved into its allocation once and never moved again, so a
// BoxFuture itself may be moved freely, even after it was polled.
//
// Cancellation: dropping a BoxFuture drops the future inside (with that
// future's cancellation semantics) and frees the allocation.
#ifndef POLLUX_FUTURE_BOX_FUTURE_H_
#define POLLUX_FUTURE_BOX_FUTURE_H_

#include <type_traits>
#include <utility>

#include "future/assert.h"
#include "future/future.h"

namespace pollux {

// A type-erased Future with Output = T in one heap allocation; movable even
// after a poll.
template <class T>
class [[nodiscard]] BoxFuture {
 public:
  using Output = T;

  BoxFuture() noexcept = default;  // empty; polling it is a bug

  template <Future F>
    requires(!std::is_same_v<F, BoxFuture> && std::is_same_v<output_t<F>, T>)
  BoxFuture(F f)  // NOLINT: implicit, like converting to a base class
      : ptr_(new Holder<F>(std::move(f))), vtable_(&kVTable<F>) {}

  BoxFuture(BoxFuture&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), vtable_(std::exchange(o.vtable_, nullptr)) {}
  BoxFuture& operator=(BoxFuture&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      vtable_ = std::exchange(o.vtable_, nullptr);
    }
    return *this;
  }
  ~BoxFuture() { reset(); }

  Poll<T> poll(Context& cx) {
    POLLUX_DCHECK(ptr_ != nullptr, "polled an empty (moved-from or reset) BoxFuture");
    return vtable_->poll(ptr_, cx);
  }

  bool empty() const noexcept { return ptr_ == nullptr; }
  // Drops the boxed future (cancelling it) and frees its allocation.
  void reset() noexcept {
    if (ptr_ != nullptr) vtable_->destroy(std::exchange(ptr_, nullptr));
  }

 private:
  template <class F>
  struct Holder {
    explicit Holder(F f) : fut(std::move(f)) {}
    F fut;
  };
  struct VTable {
    Poll<T> (*poll)(void*, Context&);
    void (*destroy)(void*) noexcept;
  };
  template <class F>
  static constexpr VTable kVTable = {
      [](void* p, Context& cx) -> Poll<T> { return static_cast<Holder<F>*>(p)->fut.poll(cx); },
      [](void* p) noexcept { delete static_cast<Holder<F>*>(p); },
  };

  void* ptr_ = nullptr;
  const VTable* vtable_ = nullptr;
};

}  // namespace pollux

#endif  // POLLUX_FUTURE_BOX_FUTURE_H_
