// open_fd_count(): how many file descriptors this process has open, for
// leak tests:
//
//   const int before = pollux::testing::open_fd_count();
//   { ... create and destroy a runtime, sockets ... }
//   EXPECT_EQ(pollux::testing::open_fd_count(), before);
//
// Counts the entries of /proc/self/fd, leaving out the descriptor used to
// list the directory itself. Fds opened or closed by other threads while it
// runs may or may not be counted; call it when the process is quiet.
// Returns -1 if /proc/self/fd cannot be read.
#ifndef POLLUX_TESTS_FD_COUNT_H_
#define POLLUX_TESTS_FD_COUNT_H_

namespace pollux::testing {

int open_fd_count();

}  // namespace pollux::testing

#endif  // POLLUX_TESTS_FD_COUNT_H_
