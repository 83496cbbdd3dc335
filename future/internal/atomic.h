// detail::Atomic<T> and detail::atomic_fence: the atomics of every
// cross-thread protocol in pollux (task state words, queues, unparkers).
//
// Normally they are std::atomic<T> and std::atomic_thread_fence, at no cost.
// Under `--config=model` (POLLUX_MODEL) they are the instrumented versions of
// tests/model/: every access is a scheduling point of the model checker, and
// a load may return any store that coherence and happens-before allow, so
// the checker finds ordering bugs and not only bad interleavings (DESIGN §10).
//
// Use only what both versions provide: construction from a value, and load,
// store, exchange, compare_exchange_{strong,weak}, fetch_{add,sub,or,and,xor}
// with an explicit std::memory_order (no operators, no implicit loads). T is
// trivially copyable and at most 8 bytes. Every access carries a comment
// naming why its ordering suffices and the access it pairs with.
#ifndef POLLUX_FUTURE_INTERNAL_ATOMIC_H_
#define POLLUX_FUTURE_INTERNAL_ATOMIC_H_

#include <atomic>

#if defined(POLLUX_MODEL)
#include "tests/model/instrumented.h"
#else

namespace pollux::detail {

template <class T>
using Atomic = std::atomic<T>;

inline void atomic_fence(std::memory_order order) noexcept { std::atomic_thread_fence(order); }

}  // namespace pollux::detail

#endif  // POLLUX_MODEL

#endif  // POLLUX_FUTURE_INTERNAL_ATOMIC_H_
