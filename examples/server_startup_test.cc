// A server must not announce "listening" on a runtime that cannot do I/O.
// Each case forks a child that refuses one io_uring syscall with a seccomp
// filter (as a container's profile might, after the ring was set up) and
// runs the echo server's main() body there with io_uring demanded
// (POLLUX_BACKEND=io_uring; left to kAuto the runtime would fall back to
// epoll, which tests/fallback_test.cc covers): it must exit 1 with the
// kernel's reason on stderr, never print "listening", and never spin.
#include <stdlib.h>
#include <sys/syscall.h>

#include <cerrno>
#include <string>

#include "examples/echo_service.h"
#include "gtest/gtest.h"
#include "tests/seccomp.h"
#include "tests/watchdog.h"

namespace pollux::examples {
namespace {

struct Refusal {
  long nr;
  int err;
};

int serve_with_refusal(void* arg) {
  const Refusal* r = static_cast<const Refusal*>(arg);
  if (!pollux::testing::refuse_syscall(r->nr, r->err)) return 99;
  ::setenv("POLLUX_BACKEND", "io_uring", /*overwrite=*/1);
  char prog[] = "echo_server";
  char port[] = "--port=0";
  char* argv[] = {prog, port, nullptr};
  return run_server(2, argv, 0, echo_connection);
}

void expect_refused_before_listening(Refusal refusal, const char* what) {
  pollux::testing::Watchdog dog(std::chrono::seconds(30), what);
  pollux::testing::ChildResult child = pollux::testing::run_in_child(serve_with_refusal, &refusal);
  ASSERT_NE(child.exit_code, 99) << "the kernel refused the seccomp filter itself";
  EXPECT_EQ(child.exit_code, 1) << "stdout: " << child.out << "\nstderr: " << child.err;
  EXPECT_EQ(child.out.find("listening"), std::string::npos) << child.out;
  EXPECT_NE(child.err.find("Operation not permitted"), std::string::npos) << child.err;
}

// The ring is created (io_uring_setup is allowed) but cannot be enabled on
// the server's thread.
TEST(ServerStartupTest, ARingThatCannotBeEnabledIsReportedBeforeListening) {
  expect_refused_before_listening({__NR_io_uring_register, EPERM}, "refused ring enable");
}

// The ring is enabled but every kernel entry fails: three tries, then the
// runtime stops with that error (DESIGN §5) and the server says so.
TEST(ServerStartupTest, AKernelEntryThatAlwaysFailsIsReportedBeforeListening) {
  expect_refused_before_listening({__NR_io_uring_enter, EPERM}, "refused kernel entry");
}

}  // namespace
}  // namespace pollux::examples
