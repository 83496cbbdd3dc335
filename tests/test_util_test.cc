// Tests for the shared test helpers: open_fd_count (fd_count.h) and
// raise_fd_limit (rlimit.h).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>

#include "gtest/gtest.h"
#include "tests/fd_count.h"
#include "tests/rlimit.h"

namespace pollux::testing {
namespace {

TEST(FdCount, CountsOpensAndCloses) {
  const int before = open_fd_count();
  ASSERT_GE(before, 3) << "stdin, stdout and stderr at least";
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  EXPECT_EQ(open_fd_count(), before + 2);
  int d = ::dup(p[0]);
  ASSERT_GE(d, 0);
  EXPECT_EQ(open_fd_count(), before + 3);
  ::close(d);
  ::close(p[0]);
  EXPECT_EQ(open_fd_count(), before + 1);
  ::close(p[1]);
  EXPECT_EQ(open_fd_count(), before);
}

TEST(FdCount, DoesNotCountItsOwnDirectoryFd) {
  // Called twice in a row with nothing in between: the listing's own fd
  // must not make the count drift.
  const int a = open_fd_count();
  const int b = open_fd_count();
  EXPECT_EQ(a, b);
}

TEST(RaiseFdLimit, ReachesTheHardLimit) {
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  const uint64_t soft = raise_fd_limit();
  rlimit after{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
  const uint64_t hard =
      after.rlim_max == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(after.rlim_max);
  const uint64_t cur =
      after.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(after.rlim_cur);
  EXPECT_EQ(soft, cur) << "returns the limit in force";
  EXPECT_EQ(cur, hard) << "an unprivileged process may always raise its soft limit to the hard one";
  EXPECT_GE(cur, before.rlim_cur == RLIM_INFINITY ? UINT64_MAX : before.rlim_cur);
  // Idempotent.
  EXPECT_EQ(raise_fd_limit(), soft);
}

}  // namespace
}  // namespace pollux::testing
