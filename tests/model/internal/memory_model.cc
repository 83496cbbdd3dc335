#include "tests/model/internal/memory_model.h"

namespace pollux::model::internal {

AtomicHistory& MemoryModel::resolve(AtomicLink& link, const void* object, uint64_t latest,
                                    uint64_t execution, Trace& trace, SourceLoc loc) {
  if (link.execution != execution) {
    link.execution = execution;
    if (used_ == histories_.size()) histories_.emplace_back();
    link.index = static_cast<uint32_t>(used_++);
    AtomicHistory& h = histories_[link.index];
    h.object = trace.add_object(ObjectKind::kAtomic, object, loc);
    h.stores.clear();
    Store initial;
    initial.value = latest;  // thread -1: happens before everything in this execution
    h.stores.push_back(initial);
  }
  return histories_[link.index];
}

size_t MemoryModel::oldest_readable(const AtomicHistory& h, const ThreadMemory& reader,
                                    bool seq_cst_load) const noexcept {
  // The newest store that any rule pins is the floor: every rule says
  // "this store or a later one in modification order".
  for (size_t i = h.stores.size(); i-- > 0;) {
    const Store& s = h.stores[i];
    if (s.thread < 0) return i;
    if (reader.clock.has_seen(s.thread, s.thread_clock)) return i;
    if (reader.sc_fence_view.has_seen(s.thread, s.thread_clock)) return i;
    if (s.seq_cst && s.step < reader.last_sc_fence_step) return i;
    if (s.step <= reader.yield_visible_step) return i;
    if (seq_cst_load && (s.seq_cst || sc_fences_.has_seen(s.thread, s.thread_clock))) return i;
    for (int u = 0; u < kMaxThreads; ++u) {
      if (s.readers[u] != 0 && reader.clock.has_seen(u, s.readers[u])) return i;
    }
  }
  return 0;
}

void MemoryModel::observe(AtomicHistory& h, size_t index, int reader, ThreadMemory& m,
                          std::memory_order order) noexcept {
  Store& s = h.stores[index];
  // The reader's own clock only grows, so this read is its latest of `s`.
  s.readers.raise(reader, m.clock[reader]);
  if (!s.has_release) return;
  if (is_acquire(order)) {
    m.clock.join(s.release);
  } else {
    m.acquire_pending.join(s.release);
  }
}

void MemoryModel::append(AtomicHistory& h, int writer, ThreadMemory& m, uint64_t value,
                         std::memory_order order, uint64_t step, bool is_rmw) {
  Store s;
  s.value = value;
  s.thread = static_cast<int8_t>(writer);
  s.thread_clock = m.clock[writer];
  s.step = step;
  s.seq_cst = order == std::memory_order_seq_cst;
  if (is_rmw && h.stores.back().has_release) {
    s.release = h.stores.back().release;  // continues the release sequence it read
    s.has_release = true;
  }
  if (is_release(order)) {
    s.release.join(m.clock);
    s.has_release = true;
  } else if (m.has_release_fence) {
    s.release.join(m.release_fence);
    s.has_release = true;
  }
  h.stores.push_back(s);
}

void MemoryModel::fence(ThreadMemory& m, std::memory_order order, uint64_t step) noexcept {
  if (is_acquire(order)) m.clock.join(m.acquire_pending);
  if (is_release(order)) {
    m.release_fence = m.clock;
    m.has_release_fence = true;
  }
  if (order == std::memory_order_seq_cst) {
    sc_fences_.join(m.clock);
    m.sc_fence_view.join(sc_fences_);
    m.last_sc_fence_step = step;
  }
}

}  // namespace pollux::model::internal
