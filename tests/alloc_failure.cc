#include "tests/alloc_failure.h"

#include <execinfo.h>
#include <unistd.h>

#include <cstdlib>
#include <new>

namespace pollux::testing {
namespace {

enum class Mode : uint8_t { kOff, kCount, kFailNth, kFailAll };

// Per thread (see the header): plain thread-locals of trivial types, so
// reading them needs no allocation and no guard variable.
thread_local Mode t_mode = Mode::kOff;
thread_local uint64_t t_count = 0;
thread_local uint64_t t_fail_at = 0;
thread_local uint64_t t_failures = 0;

// True: this allocation must fail.
bool on_allocation() noexcept {
  if (t_mode == Mode::kOff) return false;
  ++t_count;
  const bool fail = t_mode == Mode::kFailAll || (t_mode == Mode::kFailNth && t_count == t_fail_at);
  if (fail) {
    ++t_failures;
    // POLLUX_ALLOC_FAILURE_TRACE=1: where each injected failure hits (to
    // find the code a failing run points at). backtrace() may allocate:
    // the injector is off meanwhile.
    static const bool trace = std::getenv("POLLUX_ALLOC_FAILURE_TRACE") != nullptr;
    if (trace) {
      const Mode saved = t_mode;
      t_mode = Mode::kOff;
      void* frames[32];
      const int n = ::backtrace(frames, 32);
      ::write(2, "---- injected allocation failure at:\n", 38);
      ::backtrace_symbols_fd(frames, n, 2);
      t_mode = saved;
    }
  }
  return fail;
}

void* allocate(std::size_t n, std::size_t align) noexcept {
  if (on_allocation()) return nullptr;
  if (n == 0) n = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(n);
  void* p = nullptr;
  return ::posix_memalign(&p, align, n) == 0 ? p : nullptr;
}

void* allocate_or_throw(std::size_t n, std::size_t align) {
  void* p = allocate(n, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void arm(Mode m, uint64_t fail_at) noexcept {
  t_count = 0;
  t_failures = 0;
  t_fail_at = fail_at;
  t_mode = m;
}

}  // namespace

void AllocFailure::count_only() noexcept { arm(Mode::kCount, 0); }
void AllocFailure::fail_nth(uint64_t n) noexcept { arm(Mode::kFailNth, n); }
void AllocFailure::fail_all() noexcept { arm(Mode::kFailAll, 0); }
void AllocFailure::disarm() noexcept { t_mode = Mode::kOff; }
uint64_t AllocFailure::count() noexcept { return t_count; }
uint64_t AllocFailure::failures() noexcept { return t_failures; }

bool AllocFailure::replacement_active() noexcept {
  const Mode saved_mode = t_mode;
  const uint64_t saved_count = t_count;
  t_mode = Mode::kCount;
  t_count = 0;
  // volatile: the compiler may otherwise elide a new/delete pair.
  int* volatile p = new int(1);
  delete p;
  const bool active = t_count == 1;
  t_mode = saved_mode;
  t_count = saved_count;
  return active;
}

}  // namespace pollux::testing

// ---- The replaced operators ([new.delete]: every replaceable form) ----

using pollux::testing::allocate;
using pollux::testing::allocate_or_throw;

void* operator new(std::size_t n) { return allocate_or_throw(n, 0); }
void* operator new[](std::size_t n) { return allocate_or_throw(n, 0); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return allocate_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return allocate_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, static_cast<std::size_t>(a));
}

void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
