// The process-wide signal registry behind runtime/signal.h (DESIGN §9).
//
// Per signal number: 64 slots, each {fd, pending, users}; a slot is claimed
// by one runtime for one signal and holds that runtime's pipe write end. The
// process's one handler per signal (installed by install(), never removed)
// scans the slots: for each claimed one it sets `pending` and writes a byte to
// its fd; when it found none it passes the signal to the disposition that
// was there before (see signal.h for what that means per disposition).
//
// The handler's hot path takes no lock and allocates nothing: per slot one
// fetch_add/fetch_sub around one load of the fd, a store to the pending flag
// and a write(2) (signal_slot.h has the slot protocol and why a released fd
// is never written after its close). errno is saved and restored. A handler
// counts as "found a subscriber" only for a slot whose fd it saw.
//
// Thread-safety: claim/release/take_pending from any thread (one caller per
// slot at a time: the runtime that claimed it); install under its own lock.
#ifndef POLLUX_RUNTIME_INTERNAL_SIGNAL_REGISTRY_H_
#define POLLUX_RUNTIME_INTERNAL_SIGNAL_REGISTRY_H_

#include <csignal>

#include "absl/status/status.h"

namespace pollux::detail::signal_registry {

inline constexpr int kSlotsPerSignal = 64;
inline constexpr int kMaxSignal = NSIG;  // signal numbers are 1..NSIG-1

// OK, or InvalidArgument (with the reason) for a number subscribe refuses.
absl::Status validate(int signo);

// Installs the handler for `signo` once per process (later calls are no-ops)
// and remembers the previous disposition. The errno of sigaction otherwise.
absl::Status install(int signo);

// Claims a free slot of `signo` for `fd`; the slot index, or -1 when all 64
// are taken.
int claim(int signo, int fd) noexcept;

// Frees the slot; after it returns no handler will write to its fd.
void release(int signo, int slot) noexcept;

// Whether a delivery came since the last call (and clears it).
bool take_pending(int signo, int slot) noexcept;

// How many times the handler passed `signo` on to the previous disposition
// (tests).
unsigned long chained_count(int signo) noexcept;

}  // namespace pollux::detail::signal_registry

#endif  // POLLUX_RUNTIME_INTERNAL_SIGNAL_REGISTRY_H_
