#include "reactor/internal/slab.h"

#include <vector>

#include "future/internal/mutex.h"

namespace pollux::reactor::detail {

void keep_forever(const void* storage) {
  static auto* mu = new pollux::detail::Mutex;
  static auto* kept = new std::vector<const void*>;  // never destroyed, on purpose
  pollux::detail::MutexLock lock(*mu);
  kept->push_back(storage);
}

}  // namespace pollux::reactor::detail
