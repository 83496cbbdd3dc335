#include "tests/model/internal/allocation_tracker.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>

#include "tests/model/internal/execution.h"
#include "tests/model/internal/report.h"

namespace pollux::model::internal {

namespace {

struct Block {
  size_t size;
  int8_t thread;
  uint64_t step;
  bool freed;
  int8_t free_thread;
  uint64_t free_step;
};

// Touched only by the model thread holding the baton, or by the controller
// between executions (the baton hand-offs order those accesses), and only
// inside a CheckerScope, so its own nodes are never tracked.
std::unordered_map<void*, Block>& blocks() {
  // Never destroyed: operator delete runs during static destruction too.
  static auto* map = new std::unordered_map<void*, Block>();
  return *map;
}

inline constexpr unsigned char kPoison = 0xdb;
inline constexpr size_t kLeaksListed = 20;

}  // namespace

void* tracked_allocate(size_t size, size_t alignment, bool nothrow) {
  void* p = nullptr;
  const size_t n = size == 0 ? 1 : size;
  if (alignment > alignof(std::max_align_t)) {
    if (posix_memalign(&p, alignment, n) != 0) p = nullptr;
  } else {
    p = std::malloc(n);
  }
  if (p == nullptr) {
    if (nothrow) return nullptr;
    throw std::bad_alloc();
  }
  if (tracking_allocations()) {
    CheckerScope scope;
    const Execution& e = *current_execution();
    blocks()[p] = Block{size, static_cast<int8_t>(e.running_id()), e.step(), false, -1, 0};
  }
  return p;
}

void tracked_free(void* p) noexcept {
  if (p == nullptr) return;
  if (checking_frees()) {
    CheckerScope scope;
    auto it = blocks().find(p);
    if (it != blocks().end()) {
      Block& b = it->second;
      const Execution& e = *current_execution();
      if (b.freed) {
        char text[256];
        std::snprintf(text, sizeof text,
                      "%p (%zu bytes, allocated by T%d at step %" PRIu64
                      ", freed by T%d at step %" PRIu64 ") freed again by T%d at step %" PRIu64,
                      p, b.size, b.thread, b.step, b.free_thread, b.free_step, e.running_id(),
                      e.step());
        report_failure(FailureKind::kDoubleFree, text);
      }
      b.freed = true;
      b.free_thread = static_cast<int8_t>(e.running_id());
      b.free_step = e.step();
      std::memset(p, kPoison, b.size);
      return;  // quarantined until the end of the execution
    }
  }
  std::free(p);
}

void check_allocations_after_execution() {
  CheckerScope scope;
  size_t leaked_blocks = 0;
  size_t leaked_bytes = 0;
  std::string listed;
  for (const auto& [p, b] : blocks()) {
    if (b.freed) continue;
    ++leaked_blocks;
    leaked_bytes += b.size;
    if (leaked_blocks <= kLeaksListed) {
      char line[160];
      std::snprintf(line, sizeof line, "  %zu bytes at %p, allocated by T%d at step %" PRIu64 "\n",
                    b.size, p, b.thread, b.step);
      listed += line;
    }
  }
  if (leaked_blocks > 0) {
    report_failure(FailureKind::kLeak,
                   "leak of " + std::to_string(leaked_bytes) + " bytes in " +
                       std::to_string(leaked_blocks) +
                       " allocation(s) still live at the end of the execution (an allocation "
                       "meant to outlive it belongs in a detail::ThreadLifetimeAllocation "
                       "scope):\n" +
                       listed);
  }
  for (const auto& [p, b] : blocks()) std::free(p);
  blocks().clear();
}

}  // namespace pollux::model::internal
