// Trace: what one execution did, step by step, for the failure report.
//
// Every instrumented operation records an event (thread, operation, object,
// value, and for a load which store it read); every thread switch records
// one too, with its reason (a preemption, a blocked or finished thread, a
// timeout). Objects are named per execution by kind and number
// ("atomic#3"); the legend maps numbers to addresses and first uses.
// The trace is the checker's bookkeeping: it is reused across executions.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_TRACE_H_
#define POLLUX_TESTS_MODEL_INTERNAL_TRACE_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "tests/model/internal/hooks.h"

namespace pollux::model::internal {

enum class ObjectKind : uint8_t { kNone, kAtomic, kMutex, kCondVar, kCell, kThread };

struct TraceEvent {
  uint64_t step = 0;
  int8_t thread = -1;
  const char* op = "";  // a static string: "load", "store", "lock", "switch", ...
  ObjectKind object_kind = ObjectKind::kNone;
  uint32_t object = 0;
  bool has_order = false;
  std::memory_order order = std::memory_order_relaxed;
  bool has_value = false;
  uint64_t value = 0;
  // For a load: the store it read (its index in modification order, its
  // thread (-1: the value before this execution) and step).
  int32_t read_from = -1;
  int8_t read_from_thread = -1;
  uint64_t read_from_step = 0;
  int8_t other_thread = -1;  // a switch's target, a spawned or joined thread
  const char* note = nullptr;
  SourceLoc loc{nullptr, 0};
};

struct ObjectInfo {
  ObjectKind kind;
  const void* address;
  SourceLoc first_use;
};

class Trace {
 public:
  void clear() noexcept {
    events_.clear();
    objects_.clear();
  }
  void record(const TraceEvent& e) { events_.push_back(e); }
  // Registers an object seen for the first time in this execution; returns its number.
  uint32_t add_object(ObjectKind kind, const void* address, SourceLoc first_use);
  [[nodiscard]] const ObjectInfo& object(uint32_t id) const { return objects_[id]; }
  [[nodiscard]] size_t size() const noexcept { return events_.size(); }
  // Prints the last `max_events` events and the legend of the objects they name.
  void print(FILE* out, size_t max_events) const;

 private:
  std::vector<TraceEvent> events_;
  std::vector<ObjectInfo> objects_;
};

const char* order_name(std::memory_order order) noexcept;
const char* object_kind_name(ObjectKind kind) noexcept;
// "file:line" without the directories Bazel puts in front.
const char* short_file(const char* file) noexcept;

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_TRACE_H_
