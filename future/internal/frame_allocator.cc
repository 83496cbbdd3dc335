#include "future/internal/frame_allocator.h"

#include <algorithm>
#include <cstdint>
#include <new>

// Sanitizers must see every free (a reuse would hide a use-after-free), and
// the model checker counts what an execution leaves allocated: both get the
// plain allocator.
#if defined(POLLUX_SANITIZER) || defined(POLLUX_MODEL)
#define POLLUX_FRAME_CACHE_OFF 1
#endif

namespace pollux::detail {
namespace {

static_assert(kMaxPooledFrame % kFrameGranule == 0);
static_assert(kFrameGranule % alignof(std::max_align_t) == 0,
              "blocks of a class must keep ::operator new's alignment");

// Class i holds blocks of (i + 1) * kFrameGranule bytes. Zero-sized requests
// (never made by a coroutine) share class 0.
constexpr std::size_t class_index(std::size_t size) noexcept {
  return size == 0 ? 0 : (size - 1) / kFrameGranule;
}
constexpr std::size_t class_bytes(std::size_t index) noexcept {
  return (index + 1) * kFrameGranule;
}
constexpr std::size_t class_capacity(std::size_t index) noexcept {
  return std::max(kFrameCacheMinBlocks, kFrameCacheBytesPerClass / class_bytes(index));
}

#ifndef POLLUX_FRAME_CACHE_OFF

constexpr std::size_t kClasses = kMaxPooledFrame / kFrameGranule;

// A free block: its first bytes hold the link to the next free block.
struct FreeBlock {
  FreeBlock* next;
};

// The calling thread's lists. Constant-initialised; the destructor (run at
// thread exit) hands every cached block back to ::operator delete.
struct ThreadCache {
  FreeBlock* head[kClasses] = {};
  uint32_t count[kClasses] = {};
  ~ThreadCache();
};

thread_local ThreadCache cache;
// Set once `cache` has been destroyed at thread exit, so that frames freed by
// thread_local destructors that run later bypass the lists. Trivially
// destructible, so it stays readable until the thread is gone.
constinit thread_local bool cache_dead = false;

ThreadCache::~ThreadCache() {
  for (std::size_t i = 0; i < kClasses; ++i) {
    while (head[i] != nullptr) {
      FreeBlock* b = head[i];
      head[i] = b->next;
      ::operator delete(static_cast<void*>(b));
    }
    count[i] = 0;
  }
  cache_dead = true;
}

#endif  // POLLUX_FRAME_CACHE_OFF

}  // namespace

#ifdef POLLUX_FRAME_CACHE_OFF

void* frame_alloc(std::size_t size) { return ::operator new(size); }
void frame_free(void* p, std::size_t) noexcept { ::operator delete(p); }
std::size_t frame_cache_count(std::size_t) noexcept { return 0; }

#else

void* frame_alloc(std::size_t size) {
  if (size > kMaxPooledFrame) return ::operator new(size);
  const std::size_t i = class_index(size);
  if (!cache_dead) {
    ThreadCache& c = cache;
    if (FreeBlock* b = c.head[i]; b != nullptr) {
      c.head[i] = b->next;
      --c.count[i];
      return b;
    }
  }
  // Always the full class size, so the block can later serve any request of
  // its class on whichever thread frees it.
  return ::operator new(class_bytes(i));
}

void frame_free(void* p, std::size_t size) noexcept {
  if (p == nullptr) return;
  if (size > kMaxPooledFrame) {
    ::operator delete(p);
    return;
  }
  const std::size_t i = class_index(size);
  if (!cache_dead) {
    ThreadCache& c = cache;
    if (c.count[i] < class_capacity(i)) {
      // SAFETY: `p` is a dead frame of class_bytes(i) >= sizeof(FreeBlock)
      // bytes, suitably aligned; a FreeBlock is created in it and it is
      // reused only through this list.
      c.head[i] = ::new (p) FreeBlock{c.head[i]};
      ++c.count[i];
      return;
    }
  }
  ::operator delete(p);
}

std::size_t frame_cache_count(std::size_t size) noexcept {
  if (size > kMaxPooledFrame || cache_dead) return 0;
  return cache.count[class_index(size)];
}

#endif  // POLLUX_FRAME_CACHE_OFF

std::size_t frame_cache_capacity(std::size_t size) noexcept {
  return class_capacity(class_index(size));
}

}  // namespace pollux::detail
