#include "tests/model/internal/trace.h"

#include <cinttypes>
#include <cstring>

namespace pollux::model::internal {

const char* order_name(std::memory_order order) noexcept {
  switch (order) {
    case std::memory_order_relaxed:
      return "relaxed";
    case std::memory_order_consume:
      return "consume";
    case std::memory_order_acquire:
      return "acquire";
    case std::memory_order_release:
      return "release";
    case std::memory_order_acq_rel:
      return "acq_rel";
    case std::memory_order_seq_cst:
      return "seq_cst";
  }
  return "?";
}

const char* object_kind_name(ObjectKind kind) noexcept {
  switch (kind) {
    case ObjectKind::kNone:
      return "";
    case ObjectKind::kAtomic:
      return "atomic";
    case ObjectKind::kMutex:
      return "mutex";
    case ObjectKind::kCondVar:
      return "condvar";
    case ObjectKind::kCell:
      return "cell";
    case ObjectKind::kThread:
      return "thread";
  }
  return "?";
}

const char* short_file(const char* file) noexcept {
  if (file == nullptr) return "?";
  // Bazel compiles with paths relative to the workspace, sometimes behind
  // an external/ or bazel-out/ prefix; keep from the first known top-level
  // directory of the repository on, else the whole path.
  for (const char* top : {"executor/", "future/", "tests/", "timer/", "runtime/", "reactor/",
                          "sync/", "net/"}) {
    if (const char* p = std::strstr(file, top)) return p;
  }
  return file;
}

uint32_t Trace::add_object(ObjectKind kind, const void* address, SourceLoc first_use) {
  objects_.push_back(ObjectInfo{kind, address, first_use});
  return static_cast<uint32_t>(objects_.size() - 1);
}

namespace {

void print_event(FILE* out, const TraceEvent& e) {
  if (std::strcmp(e.op, "switch") == 0) {
    std::fprintf(out, "  %6" PRIu64 "  ---- T%d -> T%d (%s)\n", e.step, e.thread, e.other_thread,
                 e.note != nullptr ? e.note : "");
    return;
  }
  char object[32] = "";
  if (e.object_kind != ObjectKind::kNone && e.object_kind != ObjectKind::kThread) {
    std::snprintf(object, sizeof object, " %s#%u", object_kind_name(e.object_kind), e.object);
  }
  char order[16] = "";
  if (e.has_order) std::snprintf(order, sizeof order, "(%s)", order_name(e.order));
  std::fprintf(out, "  %6" PRIu64 "  T%d %s%s%s", e.step, e.thread, e.op, order, object);
  if (e.other_thread >= 0) std::fprintf(out, " T%d", e.other_thread);
  if (e.has_value) std::fprintf(out, " = 0x%" PRIx64, e.value);
  if (e.read_from >= 0) {
    if (e.read_from_thread < 0) {
      std::fprintf(out, "  <- store #%d (value before this execution)", e.read_from);
    } else {
      std::fprintf(out, "  <- store #%d by T%d at step %" PRIu64, e.read_from, e.read_from_thread,
                   e.read_from_step);
    }
  }
  if (e.note != nullptr) std::fprintf(out, "  [%s]", e.note);
  if (e.loc.file != nullptr) std::fprintf(out, "   %s:%d", short_file(e.loc.file), e.loc.line);
  std::fputc('\n', out);
}

}  // namespace

void Trace::print(FILE* out, size_t max_events) const {
  size_t first = events_.size() > max_events ? events_.size() - max_events : 0;
  if (first > 0) std::fprintf(out, "  ... %zu earlier events left out ...\n", first);
  for (size_t i = first; i < events_.size(); ++i) print_event(out, events_[i]);
  if (objects_.empty()) return;
  std::fprintf(out, "  objects:\n");
  for (size_t i = 0; i < objects_.size(); ++i) {
    const ObjectInfo& o = objects_[i];
    if (o.first_use.file == nullptr) {
      std::fprintf(out, "    %s#%zu at %p, made in this execution\n", object_kind_name(o.kind), i,
                   o.address);
    } else {
      std::fprintf(out, "    %s#%zu at %p, first used at %s:%d\n", object_kind_name(o.kind), i,
                   o.address, short_file(o.first_use.file), o.first_use.line);
    }
  }
}

}  // namespace pollux::model::internal
