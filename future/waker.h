// Waker: a handle that tells an executor "poll this task again".
//
// A Waker is `{data, vtable}`; the vtable decides what waking means (push a
// task onto a run queue, set a flag and unpark a thread, count in a test).
// Copying a Waker clones it (the vtable's `clone`, usually a reference count
// increment); destroying it drops it. `wake()` consumes the waker, while
// `wake_by_ref()` keeps it.
//
// Thread-safety: every vtable function may be called from any thread, at any
// time, including after the executor that made the waker is gone (it then
// does nothing). Waking is idempotent: waking an already scheduled task is a
// no-op, and waking a task that is being polled makes it run once more after
// that poll.
//
// An empty Waker (default-constructed or moved-from) is a valid "no waker"
// state: waking it does nothing. It is what a future stores before its first
// Pending.
#ifndef POLLUX_FUTURE_WAKER_H_
#define POLLUX_FUTURE_WAKER_H_

#include <utility>

namespace pollux {

class Waker;

// The behaviour behind a Waker. All four functions are noexcept and
// thread-safe; `data` is whatever the waker's creator put there.
struct WakerVTable {
  // Returns a new owning waker for the same target (e.g. refcount + 1).
  Waker (*clone)(void* data) noexcept;
  // Wakes the target and releases this waker's ownership of `data`.
  void (*wake)(void* data) noexcept;
  // Wakes the target; ownership is unchanged.
  void (*wake_by_ref)(void* data) noexcept;
  // Releases this waker's ownership of `data` without waking.
  void (*drop)(void* data) noexcept;
};

// A handle that makes an executor poll its task again; copying clones it (see
// above).
class Waker {
 public:
  // The empty waker: wake/clone/drop do nothing.
  constexpr Waker() noexcept = default;

  // Adopts ownership of `data` (the caller has already counted this waker).
  static Waker from_raw(void* data, const WakerVTable* vtable) noexcept {
    return Waker(data, vtable);
  }

  Waker(const Waker& other) noexcept : Waker(other.clone_raw()) {}
  Waker(Waker&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        vtable_(std::exchange(other.vtable_, nullptr)) {}
  Waker& operator=(const Waker& other) noexcept {
    if (this != &other && !will_wake(other)) *this = other.clone_raw();
    return *this;
  }
  Waker& operator=(Waker&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      vtable_ = std::exchange(other.vtable_, nullptr);
    }
    return *this;
  }
  ~Waker() { reset(); }

  // Wakes the target and leaves this waker empty.
  void wake() && noexcept {
    if (vtable_ != nullptr) {
      const WakerVTable* vt = std::exchange(vtable_, nullptr);
      vt->wake(std::exchange(data_, nullptr));
    }
  }
  // Wakes the target; this waker stays valid.
  void wake_by_ref() const noexcept {
    if (vtable_ != nullptr) vtable_->wake_by_ref(data_);
  }

  // True when both wakers wake the same target, so re-cloning can be skipped.
  bool will_wake(const Waker& other) const noexcept {
    return data_ == other.data_ && vtable_ == other.vtable_;
  }
  bool empty() const noexcept { return vtable_ == nullptr; }
  explicit operator bool() const noexcept { return !empty(); }

  // Drops the waker (if any) and leaves it empty.
  void reset() noexcept {
    if (vtable_ != nullptr) {
      const WakerVTable* vt = std::exchange(vtable_, nullptr);
      vt->drop(std::exchange(data_, nullptr));
    }
  }

  // Drops the waker (if any) and adopts `data` and `vtable`, as from_raw.
  void reset_raw(void* data, const WakerVTable* vtable) noexcept {
    reset();
    data_ = data;
    vtable_ = vtable;
  }
  // Gives up ownership without dropping; the caller takes over `data()`.
  void* release() noexcept {
    vtable_ = nullptr;
    return std::exchange(data_, nullptr);
  }

  void* data() const noexcept { return data_; }
  const WakerVTable* vtable() const noexcept { return vtable_; }

 private:
  constexpr Waker(void* data, const WakerVTable* vtable) noexcept : data_(data), vtable_(vtable) {}
  Waker clone_raw() const noexcept { return vtable_ == nullptr ? Waker() : vtable_->clone(data_); }

  void* data_ = nullptr;
  const WakerVTable* vtable_ = nullptr;
};

// A waker whose wake does nothing; for polling futures outside any executor.
const Waker& noop_waker() noexcept;

}  // namespace pollux

#endif  // POLLUX_FUTURE_WAKER_H_
