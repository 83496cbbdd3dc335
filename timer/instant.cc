#include "timer/instant.h"

#include <time.h>

#include <ostream>

namespace pollux {

Instant Instant::now() noexcept {
  struct timespec ts;
  // CLOCK_MONOTONIC is served by the vDSO: no syscall. It cannot fail with a
  // valid clock id and pointer.
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Instant(static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec);
}

std::ostream& operator<<(std::ostream& os, Instant t) {
  if (t == Instant::max()) return os << "Instant::max()";
  if (t == Instant::min()) return os << "Instant::min()";
  return os << "Instant(" << absl::FormatDuration(absl::Nanoseconds(t.nanos())) << ")";
}

}  // namespace pollux
