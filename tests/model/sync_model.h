// What the models of sync/ share (tests/model/notify_, semaphore_,
// atomic_waker_, oneshot_ and mpsc_model_test.cc): a parker a model thread
// sleeps on, wakers the checker can see, block_on, and a value type whose
// every copy is accounted for.
//
//   Parker p;
//   Notified n = notify.notified();
//   block_on(n, p);             // polls; parks on `p` until woken; polls again
//   Poll<void> r = poll_once(n, p);
//
// - Parker: park() sleeps on a detail::Mutex/CondVar until unpark() (one
//   unpark before the park is not lost). A model thread that parks and is
//   never woken is the checker's deadlock: the lost wake-up the models look
//   for.
// - Parker::waker(): every clone is a heap object of its own holding a
//   RaceCell. Cloning or waking by reference reads it, waking by value or
//   dropping frees it (a write: the cell's destruction). So a waker used on
//   one thread while another frees it is a reported race, a waker never
//   dropped is a reported leak, one dropped twice a double free. (will_wake
//   is false between two clones: a re-poll always replaces a stored waker,
//   the path that drops the old one.)
// - Tracked: a move-only value with an id; tracked_destroyed(id) counts how
//   many times a live (not moved-from) instance was destroyed: 1 at the end
//   of an execution means the value was received, handed back or dropped
//   exactly once. The counters are std::atomic (not scheduling points);
//   models read them after joining the threads.
//
// Parkers must outlive every waker made from them (declare them first, in
// the model's body, and join the threads before they go).
//
// Thread-safety: Parker::unpark and the wakers from any thread; park from
// the thread that owns the parker; Tracked as any value.
#ifndef POLLUX_TESTS_MODEL_SYNC_MODEL_H_
#define POLLUX_TESTS_MODEL_SYNC_MODEL_H_

#include <atomic>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "future/context.h"
#include "future/internal/mutex.h"
#include "future/internal/race_cell.h"
#include "future/poll.h"
#include "future/waker.h"
#include "tests/model/checker.h"

namespace pollux::model {

class Parker {
 public:
  Parker() = default;
  Parker(const Parker&) = delete;
  Parker& operator=(const Parker&) = delete;

  // A new waker of this parker (see the header comment).
  Waker waker() { return Waker::from_raw(new Handle{this}, &kVTable); }

  void unpark() {
    detail::MutexLock lock(mu_);
    unparked_ = true;
    cv_.notify_one();
  }
  // Returns once unpark() was called since the last park() returned.
  void park() {
    detail::MutexLock lock(mu_);
    while (!unparked_) cv_.wait(mu_);
    unparked_ = false;
  }

 private:
  struct Handle {
    Parker* parker;
    detail::RaceCell<int> cell{0};
  };
  static Handle* handle(void* p) { return static_cast<Handle*>(p); }
  static Waker clone(void* p) noexcept {
    (void)handle(p)->cell.get();
    return handle(p)->parker->waker();
  }
  static void wake(void* p) noexcept {
    Handle* h = handle(p);
    (void)h->cell.get();
    h->parker->unpark();
    delete h;
  }
  static void wake_by_ref(void* p) noexcept {
    (void)handle(p)->cell.get();
    handle(p)->parker->unpark();
  }
  static void drop(void* p) noexcept { delete handle(p); }
  static constexpr WakerVTable kVTable = {&clone, &wake, &wake_by_ref, &drop};

  detail::Mutex mu_;
  detail::CondVar cv_;
  bool unparked_ ABSL_GUARDED_BY(mu_) = false;
};

// Polls `f` once with a fresh waker of `p` (an unlimited budget: the models
// look at the protocols, not at coop yields).
template <class F>
auto poll_once(F& f, Parker& p) {
  const Waker w = p.waker();
  Budget budget = Budget::unlimited();
  Context cx(w, budget);
  return f.poll(cx);
}

// Polls `f` until Ready, parking on `p` in between; returns its output.
template <class F>
auto block_on(F& f, Parker& p) {
  const Waker w = p.waker();
  Budget budget = Budget::unlimited();
  for (;;) {
    Context cx(w, budget);
    auto r = f.poll(cx);
    if (r.is_ready()) {
      if constexpr (std::is_void_v<typename decltype(r)::value_type>) {
        return;
      } else {
        return std::move(r).value();
      }
    }
    p.park();
  }
}

// A move-only value whose live instances' destructions are counted per id.
class Tracked {
 public:
  static constexpr int kIds = 4;

  explicit Tracked(int id) noexcept : id_(id) {}
  Tracked(Tracked&& o) noexcept : id_(std::exchange(o.id_, -1)) {}
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() {
    // relaxed: read after the threads are joined.
    if (id_ >= 0) destroyed_[id_].fetch_add(1, std::memory_order_relaxed);
  }

  int id() const noexcept { return id_; }

  static void reset() {
    for (auto& d : destroyed_) d.store(0, std::memory_order_relaxed);
  }
  // Destructions of a live instance of value `id` so far.
  static int destroyed(int id) { return destroyed_[id].load(std::memory_order_relaxed); }

 private:
  int id_;  // -1 once moved from
  static inline std::atomic<int> destroyed_[kIds];
};

}  // namespace pollux::model

#endif  // POLLUX_TESTS_MODEL_SYNC_MODEL_H_
