// AllocationTracker: leaks and double frees of the allocations a model
// makes, through the replaced global operator new/delete
// (tests/model/internal/new_delete.cc, linked into the checker).
//
// Tracked: every allocation a model thread makes during an execution,
// except the checker's own (CheckerScope) and those in a
// detail::ThreadLifetimeAllocation scope. A tracked block that is freed is
// poisoned and kept (quarantined) until the end of the execution, so its
// address is not reused meanwhile: freeing it again is a reported double
// free, and a use after the free reads the poison. At the end of an
// execution a tracked block not freed is a reported leak; then the
// quarantine is released.
//
// Everything else (other threads, allocations before or between
// executions) goes straight to malloc/free.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_ALLOCATION_TRACKER_H_
#define POLLUX_TESTS_MODEL_INTERNAL_ALLOCATION_TRACKER_H_

#include <cstddef>

namespace pollux::model::internal {

// operator new: `alignment` 0 for the default one. Null only when `nothrow`.
[[nodiscard]] void* tracked_allocate(size_t size, size_t alignment, bool nothrow);
// operator delete.
void tracked_free(void* p) noexcept;
// Called by model::check after each execution (on its own thread).
void check_allocations_after_execution();

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_ALLOCATION_TRACKER_H_
