// The allocator behind every Task coroutine frame: a per-thread free list per
// size class, so that a program that keeps starting short coroutines reuses
// the same few frames instead of going to malloc each time.
//
// Frames of up to kMaxPooledFrame bytes are rounded up to a multiple of
// kFrameGranule and served from the calling thread's list for that class
// (falling back to ::operator new when it is empty). A freed frame goes onto
// the *freeing* thread's list for its class, whichever thread allocated it:
// every block of a class has the same size, so any thread may hand it out
// again. Each list is capped (kFrameCacheBytesPerClass, at least
// kFrameCacheMinBlocks blocks); beyond the cap a freed frame goes back to
// ::operator delete, so a burst of frames does not pin memory forever. A
// thread's lists are returned to ::operator delete when the thread exits;
// frames freed after that (by later thread_local destructors) bypass the
// lists. Larger frames always go straight to ::operator new / delete.
//
// Under a sanitizer build (POLLUX_SANITIZER, set by --config=asan/tsan/ubsan)
// the lists are bypassed entirely, so AddressSanitizer sees a use of a freed
// frame as a heap-use-after-free instead of a silent reuse; so they are under
// the model checker (POLLUX_MODEL), which counts what an execution leaves.
//
// sync/ uses it too, for its small per-use blocks (a oneshot channel).
//
// Thread-safety: each thread has its own lists and touches only those; no
// locks and no atomics.
#ifndef POLLUX_FUTURE_INTERNAL_FRAME_ALLOCATOR_H_
#define POLLUX_FUTURE_INTERNAL_FRAME_ALLOCATOR_H_

#include <cstddef>

namespace pollux::detail {

inline constexpr std::size_t kFrameGranule = 64;
inline constexpr std::size_t kMaxPooledFrame = 2048;
inline constexpr std::size_t kFrameCacheBytesPerClass = 16 * 1024;
inline constexpr std::size_t kFrameCacheMinBlocks = 8;

// Allocates `size` bytes for a coroutine frame (aligned for any fundamental
// type, like ::operator new). Throws std::bad_alloc on failure.
void* frame_alloc(std::size_t size);

// Frees a frame from frame_alloc; `size` must be the size passed to it (the
// coroutine machinery passes the frame size to a sized operator delete).
void frame_free(void* p, std::size_t size) noexcept;

// For tests: how many free frames of `size`'s class this thread keeps cached
// (always 0 under a sanitizer build or for sizes above kMaxPooledFrame).
std::size_t frame_cache_count(std::size_t size) noexcept;

// For tests: the most blocks one class's list keeps.
std::size_t frame_cache_capacity(std::size_t size) noexcept;

}  // namespace pollux::detail

#endif  // POLLUX_FUTURE_INTERNAL_FRAME_ALLOCATOR_H_
