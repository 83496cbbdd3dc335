// The per-runtime half of signals (runtime/signal.h): what ~RuntimeInner
// calls so that a runtime that goes away unsubscribes and closes its pipe.
//
// A runtime is known to signal.cc by its blocking-pool scheduler, the one
// RuntimeContext field that is the same on all its workers and unique to it
// (RuntimeContext::blocking, executor/context.h) while it lives.
//
// Thread-safety: any thread; after every task of the runtime is gone.
#ifndef POLLUX_RUNTIME_INTERNAL_SIGNAL_DRIVER_H_
#define POLLUX_RUNTIME_INTERNAL_SIGNAL_DRIVER_H_

namespace pollux::detail {

// Unsubscribes the runtime keyed `runtime_key` from every signal, closes its
// pipe and makes its Signals yield Cancelled. No-op for a runtime that never
// subscribed.
void signals_runtime_gone(const void* runtime_key) noexcept;

}  // namespace pollux::detail

#endif  // POLLUX_RUNTIME_INTERNAL_SIGNAL_DRIVER_H_
