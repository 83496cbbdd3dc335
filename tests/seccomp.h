// refuse_syscall(nr, err): makes syscall `nr` fail with `err` for the calling
// thread and everything it starts or execs from then on (a seccomp filter,
// as Docker's default profile does to io_uring). For tests that fork a child
// first: there is no way back.
//
//   pid_t pid = fork();
//   if (pid == 0) {
//     pollux::testing::refuse_syscall(__NR_io_uring_enter, EPERM);
//     ... _exit(code);
//   }
//
// Returns false (errno set) when the kernel refuses the filter itself.
#ifndef POLLUX_TESTS_SECCOMP_H_
#define POLLUX_TESTS_SECCOMP_H_

#include <string>

namespace pollux::testing {

bool refuse_syscall(long nr, int err);

// Runs `body` in a forked child with its stdout and stderr captured, and
// waits for it. The child's exit code is `body`'s return value.
struct ChildResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string out;
  std::string err;
};
ChildResult run_in_child(int (*body)(void* arg), void* arg);

}  // namespace pollux::testing

#endif  // POLLUX_TESTS_SECCOMP_H_
