// raise_fd_limit(): raises the soft RLIMIT_NOFILE to the hard limit, for
// socket-heavy tests and examples (DESIGN.md section 6):
//
//   if (pollux::testing::raise_fd_limit() < 4096) GTEST_SKIP() << "fd limit too low";
//
// Returns the soft limit in force afterwards (unchanged when raising fails;
// 0 if it cannot even be read). RLIM_INFINITY comes back as UINT64_MAX.
#ifndef POLLUX_TESTS_RLIMIT_H_
#define POLLUX_TESTS_RLIMIT_H_

#include <cstdint>

namespace pollux::testing {

uint64_t raise_fd_limit();

}  // namespace pollux::testing

#endif  // POLLUX_TESTS_RLIMIT_H_
