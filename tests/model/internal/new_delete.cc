// The global operator new and delete of a model-checker binary: every form
// goes through the AllocationTracker (allocation_tracker.h), which passes
// straight to malloc/free outside model executions. Only under
// --config=model: the sanitizer configs bring their own allocator, and a
// plain build has nothing to track.
#include <cstddef>
#include <new>

#include "tests/model/internal/allocation_tracker.h"

#if defined(POLLUX_MODEL)

using pollux::model::internal::tracked_allocate;
using pollux::model::internal::tracked_free;

void* operator new(std::size_t n) { return tracked_allocate(n, 0, false); }
void* operator new[](std::size_t n) { return tracked_allocate(n, 0, false); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return tracked_allocate(n, 0, true);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return tracked_allocate(n, 0, true);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return tracked_allocate(n, static_cast<std::size_t>(a), false);
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return tracked_allocate(n, static_cast<std::size_t>(a), false);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return tracked_allocate(n, static_cast<std::size_t>(a), true);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return tracked_allocate(n, static_cast<std::size_t>(a), true);
}

void operator delete(void* p) noexcept { tracked_free(p); }
void operator delete[](void* p) noexcept { tracked_free(p); }
void operator delete(void* p, std::size_t) noexcept { tracked_free(p); }
void operator delete[](void* p, std::size_t) noexcept { tracked_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { tracked_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { tracked_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { tracked_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { tracked_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { tracked_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { tracked_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  tracked_free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  tracked_free(p);
}

#endif  // POLLUX_MODEL
