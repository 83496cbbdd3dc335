// The atomic entry points of hooks.h: a scheduling point, then the access
// against the execution's MemoryModel, then a trace event.
#include <cstddef>

#include "tests/model/internal/execution.h"
#include "tests/model/internal/hooks.h"
#include "tests/model/internal/memory_model.h"

namespace pollux::model::internal {

namespace {

TraceEvent event(const char* op, const AtomicHistory& h, std::memory_order order, uint64_t value,
                 SourceLoc loc) {
  return TraceEvent{.op = op,
                    .object_kind = ObjectKind::kAtomic,
                    .object = h.object,
                    .has_order = true,
                    .order = order,
                    .has_value = true,
                    .value = value,
                    .loc = loc};
}

void note_read_from(TraceEvent& ev, const AtomicHistory& h, size_t index) {
  const Store& s = h.stores[index];
  ev.read_from = static_cast<int32_t>(index);
  ev.read_from_thread = s.thread;
  ev.read_from_step = s.step;
}

}  // namespace

uint64_t atomic_load(AtomicLink& link, const void* object, uint64_t latest,
                     std::memory_order order, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  const int me = e.running_id();
  ThreadMemory& m = e.running().memory;
  AtomicHistory& h = e.memory().resolve(link, object, latest, e.number(), e.trace(), loc);
  const size_t newest = h.stores.size() - 1;
  const size_t oldest = e.memory().oldest_readable(h, m, order == std::memory_order_seq_cst);
  // Alternative 0 reads the newest store, then older ones.
  size_t index = newest;
  if (oldest < newest) {
    index = newest - e.choose(ChoiceKind::kLoad, static_cast<uint32_t>(newest - oldest + 1));
  }
  MemoryModel::observe(h, index, me, m, order);
  TraceEvent ev = event("load", h, order, h.stores[index].value, loc);
  note_read_from(ev, h, index);
  if (index != newest) ev.note = "not the newest store";
  e.record(ev);
  return h.stores[index].value;
}

void atomic_store(AtomicLink& link, const void* object, uint64_t latest, uint64_t value,
                  std::memory_order order, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  AtomicHistory& h = e.memory().resolve(link, object, latest, e.number(), e.trace(), loc);
  MemoryModel::append(h, e.running_id(), e.running().memory, value, order, e.step(),
                      /*is_rmw=*/false);
  e.record(event("store", h, order, value, loc));
}

RmwResult atomic_rmw(AtomicLink& link, const void* object, uint64_t latest, const char* name,
                     RmwFunction apply, uint64_t operand, std::memory_order order,
                     SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  const int me = e.running_id();
  ThreadMemory& m = e.running().memory;
  AtomicHistory& h = e.memory().resolve(link, object, latest, e.number(), e.trace(), loc);
  const size_t read = h.stores.size() - 1;  // atomicity: an RMW reads the newest store
  const uint64_t old_bits = h.stores[read].value;
  const uint64_t new_bits = apply(old_bits, operand);
  MemoryModel::observe(h, read, me, m, order);
  MemoryModel::append(h, me, m, new_bits, order, e.step(), /*is_rmw=*/true);
  TraceEvent ev = event(name, h, order, new_bits, loc);
  note_read_from(ev, h, read);
  e.record(ev);
  return RmwResult{old_bits, new_bits};
}

bool atomic_compare_exchange(AtomicLink& link, const void* object, uint64_t latest,
                             uint64_t& expected, uint64_t desired, std::memory_order success,
                             std::memory_order failure, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  const int me = e.running_id();
  ThreadMemory& m = e.running().memory;
  AtomicHistory& h = e.memory().resolve(link, object, latest, e.number(), e.trace(), loc);
  const size_t read = h.stores.size() - 1;
  const uint64_t seen = h.stores[read].value;
  if (seen == expected) {
    MemoryModel::observe(h, read, me, m, success);
    MemoryModel::append(h, me, m, desired, success, e.step(), /*is_rmw=*/true);
    TraceEvent ev = event("compare_exchange", h, success, desired, loc);
    note_read_from(ev, h, read);
    ev.note = "succeeded";
    e.record(ev);
    return true;
  }
  MemoryModel::observe(h, read, me, m, failure);
  expected = seen;
  TraceEvent ev = event("compare_exchange", h, failure, seen, loc);
  note_read_from(ev, h, read);
  ev.note = "failed";
  e.record(ev);
  return false;
}

void atomic_fence(std::memory_order order, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  e.memory().fence(e.running().memory, order, e.step());
  e.record(TraceEvent{.op = "fence", .has_order = true, .order = order, .loc = loc});
}

}  // namespace pollux::model::internal
