// MemoryModel: which store each atomic load may read.
//
// Per atomic, a history of its stores in modification order (mo). Stores
// are appended, so mo is the order in which the execution made them (the
// search over schedules supplies the other orders). Each store remembers
// who made it and when (for happens-before), whether it was seq_cst, and
// the release clock an acquire reading it joins.
//
// A load may read any store from oldest_readable() to the newest:
// - not older than the newest store that happens before the load
//   (write-read coherence), nor than a store that this thread, or one whose
//   read happens before the load, already read (read-read coherence);
// - a seq_cst load: not older than the newest seq_cst store, nor than a
//   store that happens before a seq_cst fence (all seq_cst operations and
//   fences share one total order S: the execution order);
// - after a seq_cst fence of its own thread: not older than the newest
//   seq_cst store before that fence in S, nor than a store that happens
//   before that fence or before an earlier seq_cst fence of any thread;
// - after a spin-wait's yield (hooks.h's thread_yield): not older than the
//   newest store made before the thread came back from it. The standard
//   only says stores become visible "within a reasonable amount of time";
//   without this a spin loop could read one stale value for ever, which
//   no machine does. It adds no happens-before edge.
// Read-modify-writes (and compare-exchanges, even failing ones: an
// approximation) read the newest store.
//
// Release sequences: a release store carries its thread's clock; an RMW
// carries the clock of the store it read (so it continues a release
// sequence) joined with its own when it is a release. A relaxed store
// after a release fence carries the clock of that fence. An acquire load
// joins the clock of the store it read; a relaxed load keeps it for the
// thread's next acquire fence.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_MEMORY_MODEL_H_
#define POLLUX_TESTS_MODEL_INTERNAL_MEMORY_MODEL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tests/model/internal/hooks.h"
#include "tests/model/internal/trace.h"
#include "tests/model/internal/vector_clock.h"

namespace pollux::model::internal {

// A model thread's view of memory.
struct ThreadMemory {
  VectorClock clock;            // what happens before this thread's next operation
  VectorClock acquire_pending;  // release clocks read by non-acquire loads, for an acquire fence
  VectorClock release_fence;    // the clock at this thread's last release fence
  bool has_release_fence = false;
  VectorClock sc_fence_view;    // the seq_cst-fence clock at this thread's last seq_cst fence
  uint64_t last_sc_fence_step = 0;
  // The step at which this thread last came back from a spin-wait's yield:
  // every store made by then is visible to it (see oldest_readable).
  uint64_t yield_visible_step = 0;

  void reset() noexcept { *this = ThreadMemory(); }
};

struct Store {
  uint64_t value = 0;
  int8_t thread = -1;         // -1: the value the object had when this execution first saw it
  uint32_t thread_clock = 0;  // the storing thread's own clock at the store
  uint64_t step = 0;
  bool seq_cst = false;
  bool has_release = false;
  VectorClock release;  // joined by an acquire that reads this store
  VectorClock readers;  // per thread, its own clock at its latest read of this store
};

struct AtomicHistory {
  uint32_t object = 0;  // number in the trace
  std::vector<Store> stores;
};

[[nodiscard]] constexpr bool is_acquire(std::memory_order o) noexcept {
  return o == std::memory_order_acquire || o == std::memory_order_consume ||
         o == std::memory_order_acq_rel || o == std::memory_order_seq_cst;
}
[[nodiscard]] constexpr bool is_release(std::memory_order o) noexcept {
  return o == std::memory_order_release || o == std::memory_order_acq_rel ||
         o == std::memory_order_seq_cst;
}

class MemoryModel {
 public:
  // Forgets every history (a new execution); keeps the storage.
  void reset() noexcept {
    used_ = 0;
    sc_fences_.clear();
  }
  // The history of the atomic behind `link`, started with `latest` as its
  // only store when this execution has not seen the atomic yet.
  AtomicHistory& resolve(AtomicLink& link, const void* object, uint64_t latest, uint64_t execution,
                         Trace& trace, SourceLoc loc);
  // The oldest store of `h` that `reader` may read now.
  [[nodiscard]] size_t oldest_readable(const AtomicHistory& h, const ThreadMemory& reader,
                                       bool seq_cst_load) const noexcept;
  // `reader` reads store `index` with `order`.
  static void observe(AtomicHistory& h, size_t index, int reader, ThreadMemory& m,
                      std::memory_order order) noexcept;
  // `writer` stores `value` (mo-last). `is_rmw`: it read the store that was
  // last until now, whose release sequence it continues.
  static void append(AtomicHistory& h, int writer, ThreadMemory& m, uint64_t value,
                     std::memory_order order, uint64_t step, bool is_rmw);
  void fence(ThreadMemory& m, std::memory_order order, uint64_t step) noexcept;

 private:
  std::vector<AtomicHistory> histories_;
  size_t used_ = 0;
  VectorClock sc_fences_;  // the join of every thread's clock at its seq_cst fences so far
};

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_MEMORY_MODEL_H_
