#include "future/assert.h"

#include <cstdio>
#include <cstdlib>

namespace pollux::detail {

void check_failed(const char* condition, const char* message, const char* file,
                  int line) noexcept {
  std::fprintf(stderr, "pollux: %s\n  (check `%s` failed at %s:%d)\n", message, condition, file,
               line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace pollux::detail
