#include "tests/fd_count.h"

#include <dirent.h>

#include <cstdlib>

namespace pollux::testing {

int open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  const int own = ::dirfd(dir);
  int count = 0;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;  // "." and ".."
    if (std::atoi(e->d_name) == own) continue;
    ++count;
  }
  ::closedir(dir);
  return count;
}

}  // namespace pollux::testing
