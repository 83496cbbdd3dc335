// Fallback for real (issue 13): io_uring refused by a seccomp filter, as
// Docker's and containerd's default profiles refuse it. Each case forks a
// child that installs the filter (tests/seccomp.h: no root, no sysctl) and
// then, in the child:
//   - kAuto builds a runtime, runs an echo round trip over 127.0.0.1 on it,
//     and Runtime::backend() says epoll and why (the refused syscall and its
//     errno): with io_uring_setup failing EPERM, with it failing ENOSYS (a
//     kernel without io_uring, or a profile that pretends so), and with only
//     io_uring_enter refused (a ring can be made but never entered);
//   - kIoUring, and POLLUX_BACKEND=io_uring, fail build() with a status that
//     names the errno and the way out (POLLUX_BACKEND=epoll).
// The child's exit code says which check failed; its output is shown.
#include <stdlib.h>
#include <sys/syscall.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"
#include "tests/seccomp.h"
#include "tests/watchdog.h"
#include "timer/timeout.h"

namespace pollux {
namespace {

struct Case {
  long nr;
  int err;
  BackendKind kind;       // what the child asks for
  bool env_io_uring;      // ... or POLLUX_BACKEND=io_uring with kAuto
};

// One echo round trip through a listener and a client on `rt`.
absl::Status echo_round_trip(Runtime& rt) {
  absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(net::SocketAddr::ipv4_loopback(0));
  if (!l.ok()) return l.status();
  return rt.block_on(pollux::timeout(
      [&]() -> Task<absl::Status> {
        JoinHandle<absl::Status> server = pollux::spawn([&]() -> Task<absl::Status> {
          auto a = co_await l->accept();
          if (!a.ok()) co_return a.status();
          net::TcpStream s = std::move(a->first);
          absl::StatusOr<std::vector<char>> got = co_await s.read_exact(5);
          if (!got.ok()) co_return got.status();
          net::WriteAllResult w = co_await s.write_all(std::move(*got));
          co_return w.status;
        });
        absl::StatusOr<net::TcpStream> c = co_await net::TcpStream::connect(l->local_addr());
        if (!c.ok()) co_return c.status();
        std::vector<char> msg(5);
        for (size_t i = 0; i < msg.size(); ++i) msg[i] = "hello"[i];
        net::WriteAllResult w = co_await c->write_all(std::move(msg));
        if (!w.status.ok()) co_return w.status;
        absl::StatusOr<std::vector<char>> back = co_await c->read_exact(5);
        if (!back.ok()) co_return back.status();
        if (std::string(back->begin(), back->end()) != "hello") {
          co_return absl::DataLossError("the echo came back different");
        }
        JoinResult<absl::Status> srv = co_await std::move(server);
        if (!srv.ok()) co_return absl::InternalError("server task failed");
        co_return srv.value();
      }(),
      absl::Seconds(10)));
}

// Exit codes: 0 all good; 99 the kernel refused the filter; others say
// which expectation failed (printed).
int child(void* arg) {
  const Case* c = static_cast<const Case*>(arg);
  ::unsetenv("POLLUX_BACKEND");  // this binary may run under the epoll variant's env
  if (!pollux::testing::refuse_syscall(c->nr, c->err)) return 99;
  if (c->env_io_uring) ::setenv("POLLUX_BACKEND", "io_uring", 1);
  absl::StatusOr<Runtime> rt =
      Runtime::Builder().current_thread().enable_all().backend(c->kind).build();
  const bool want_io_uring = c->kind == BackendKind::kIoUring || c->env_io_uring;
  if (want_io_uring) {
    if (rt.ok()) {
      std::printf("build() succeeded on %s; expected a clear error\n", rt->backend().name());
      return 2;
    }
    std::printf("build(): %s\n", rt.status().ToString().c_str());
    return 0;
  }
  if (!rt.ok()) {
    std::printf("build() failed: %s\n", rt.status().ToString().c_str());
    return 3;
  }
  std::printf("backend: %s\nreason: %s\n", rt->backend().name(), rt->backend().reason.c_str());
  if (rt->backend().kind != BackendKind::kEpoll) return 4;
  absl::Status s = echo_round_trip(*rt);
  std::printf("echo: %s\n", s.ToString().c_str());
  return s.ok() ? 0 : 5;
}

pollux::testing::ChildResult run(Case c) {
  pollux::testing::ChildResult r = pollux::testing::run_in_child(child, &c);
  std::printf("child (exit %d):\n%s", r.exit_code, r.out.c_str());
  EXPECT_NE(r.exit_code, 99) << "the kernel refused the seccomp filter itself";
  EXPECT_EQ(r.exit_code, 0) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;
  return r;
}

class FallbackTest : public ::testing::Test {
 protected:
  pollux::testing::Watchdog dog_{std::chrono::seconds(60), "fallback test"};
};

TEST_F(FallbackTest, SetupRefusedWithEpermRunsOnEpollAndSaysWhy) {
  pollux::testing::ChildResult r = run({__NR_io_uring_setup, EPERM, BackendKind::kAuto, false});
  EXPECT_NE(r.out.find("backend: epoll"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("io_uring_setup"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Operation not permitted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("echo: OK"), std::string::npos) << r.out;
}

TEST_F(FallbackTest, SetupRefusedWithEnosysRunsOnEpollAndSaysWhy) {
  pollux::testing::ChildResult r = run({__NR_io_uring_setup, ENOSYS, BackendKind::kAuto, false});
  EXPECT_NE(r.out.find("backend: epoll"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Function not implemented"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("echo: OK"), std::string::npos) << r.out;
}

// A ring can be set up but never entered: only the probe's NOP sees it.
TEST_F(FallbackTest, EnterRefusedRunsOnEpollToo) {
  pollux::testing::ChildResult r = run({__NR_io_uring_enter, EPERM, BackendKind::kAuto, false});
  EXPECT_NE(r.out.find("backend: epoll"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("io_uring_enter"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("echo: OK"), std::string::npos) << r.out;
}

TEST_F(FallbackTest, DemandingIoUringIsAClearErrorNamingTheWayOut) {
  pollux::testing::ChildResult r = run({__NR_io_uring_setup, EPERM, BackendKind::kIoUring, false});
  EXPECT_NE(r.out.find("Operation not permitted"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("POLLUX_BACKEND=epoll"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Builder::backend(kIoUring)"), std::string::npos) << r.out;
}

TEST_F(FallbackTest, PolluxBackendIoUringIsTheSameClearError) {
  pollux::testing::ChildResult r = run({__NR_io_uring_setup, ENOSYS, BackendKind::kAuto, true});
  EXPECT_NE(r.out.find("Function not implemented"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("POLLUX_BACKEND=io_uring"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("POLLUX_BACKEND=epoll"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pollux
