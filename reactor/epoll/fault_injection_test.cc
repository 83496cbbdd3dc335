// Fault injection through Runtime::Builder::epoll_syscalls (internal/
// epoll_syscalls.h), the epoll analogue of uring/fault_injection_test.cc:
//   - epoll_wait failing with EINTR (many times: retried, not counted), with
//     ENOMEM twice in a row (counted, survived), and every time (the run
//     ends with that errno after three tries instead of spinning);
//   - epoll_ctl refusing a registration with ENOMEM: the op that needed it
//     ends with ResourceExhausted (errno ENOMEM), nothing leaks, the next op
//     on the same fd works;
//   - recv and send saying EAGAIN although readiness said go (another
//     reader took the data; a spurious wake): never surfaced, the op waits
//     for the next edge instead of spinning, and then gets every byte;
//   - accept4 out of descriptors (EMFILE): the AcceptStream hands out
//     ResourceExhausted, then backs off (a handful of accept4 calls in
//     300 ms, not thousands), and accepts the waiting connection once
//     descriptors are back.
// In every case no op slot or registration leaks and the runtime keeps
// working.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/accept_stream.h"
#include "reactor/epoll/epoll_backend.h"
#include "reactor/epoll/internal/epoll_syscalls.h"
#include "reactor/errno_status.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"

namespace pollux {
namespace {

using reactor::IoResult;
using testing::Watchdog;

class FaultySyscalls : public reactor::EpollSyscalls {
 public:
  // Faults still to inject; each is consumed as it fires (the real call is
  // then skipped).
  int fail_wait = 0;  // epoll_wait: -1 / wait_errno
  int wait_errno = EINTR;
  int fail_ctl_add = 0;  // epoll_ctl(ADD): -1 / ENOMEM
  int eagain_recv = 0;   // recv: -1 / EAGAIN
  int eagain_send = 0;   // send: -1 / EAGAIN
  int fail_accept = 0;   // accept4: -1 / EMFILE

  // What happened.
  int wait_calls = 0, recv_calls = 0, send_calls = 0, accept_calls = 0;

  int epoll_wait(int epfd, epoll_event* ev, int max, int timeout_ms) override {
    ++wait_calls;
    if (fail_wait > 0) {
      --fail_wait;
      errno = wait_errno;
      return -1;
    }
    return EpollSyscalls::epoll_wait(epfd, ev, max, timeout_ms);
  }
  int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) override {
    if (op == EPOLL_CTL_ADD && fail_ctl_add > 0) {
      --fail_ctl_add;
      errno = ENOMEM;
      return -1;
    }
    return EpollSyscalls::epoll_ctl(epfd, op, fd, ev);
  }
  ssize_t recv(int fd, void* buf, size_t len, int flags) override {
    ++recv_calls;
    if (eagain_recv > 0) {
      --eagain_recv;
      errno = EAGAIN;
      return -1;
    }
    return EpollSyscalls::recv(fd, buf, len, flags);
  }
  ssize_t send(int fd, const void* buf, size_t len, int flags) override {
    ++send_calls;
    if (eagain_send > 0) {
      --eagain_send;
      errno = EAGAIN;
      return -1;
    }
    return EpollSyscalls::send(fd, buf, len, flags);
  }
  int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) override {
    ++accept_calls;
    if (fail_accept > 0) {
      --fail_accept;
      errno = EMFILE;
      return -1;
    }
    return EpollSyscalls::accept4(fd, addr, len, flags);
  }
};

Runtime make_runtime(FaultySyscalls& sys) {
  absl::StatusOr<Runtime> rt = Runtime::Builder()
                                   .current_thread()
                                   .enable_all()
                                   .backend(BackendKind::kEpoll)
                                   .epoll_syscalls(&sys)
                                   .build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

reactor::EpollBackend& epoll_of(Runtime& rt) {
  auto* b = dynamic_cast<reactor::EpollBackend*>(rt.io_backend());
  POLLUX_CHECK(b != nullptr, "the runtime does not run on epoll");
  return *b;
}

struct Pair {
  OwnedFd a, b;
  static Pair make() {
    int sv[2];
    POLLUX_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
                 "socketpair");
    return Pair{OwnedFd(sv[0]), OwnedFd(sv[1])};
  }
};

std::vector<char> bytes(std::string_view s) { return std::vector<char>(s.begin(), s.end()); }

constexpr int kTrips = 8;
// Hoisted out of the coroutines (GCC 12 and literals inside them).
constexpr std::string_view kAbcdef = "abcdef";
constexpr std::string_view kPayload = "payload";
constexpr std::string_view kPing = "ping";

// kTrips round trips, each reader waiting before its writer writes (so
// every one registers and parks in epoll_wait); true if all came back.
Task<int> workload(std::vector<Pair>* pairs) {
  std::vector<JoinHandle<IoResult>> readers;
  for (int i = 0; i < kTrips; ++i) {
    readers.push_back(pollux::spawn(reactor::recv((*pairs)[i].a.get(), std::vector<char>(16))));
  }
  co_await sleep(absl::Milliseconds(2));
  for (int i = 0; i < kTrips; ++i) {
    IoResult w = co_await reactor::send((*pairs)[i].b.get(), bytes(kPing));
    EXPECT_TRUE(w.n.ok()) << w.n.status();
  }
  int ok = 0;
  for (auto& h : readers) {
    JoinResult<IoResult> r = co_await h;
    if (r.ok() && r.value().n.ok() && *r.value().n == 4) ++ok;
  }
  co_return ok;
}

class EpollFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kTrips; ++i) pairs_.push_back(Pair::make());
  }
  // The runtime recovered: no slot or registration left, and a workload
  // runs clean.
  void expect_recovered(Runtime& rt) {
    EXPECT_EQ(rt.block_on(workload(&pairs_)), kTrips);
    EXPECT_EQ(rt.io_backend()->live_ops(), 0u) << "an op slot leaked";
    (void)rt.block_on(sleep(absl::Milliseconds(1)));  // released registrations are freed
    EXPECT_EQ(epoll_of(rt).registered_fds(), 0u) << "a registration leaked";
    EXPECT_TRUE(rt.io_backend()->status().ok());
  }

  std::vector<Pair> pairs_;
  Watchdog dog_{std::chrono::seconds(60), "epoll fault injection test"};
};

// ---- epoll_wait ----

TEST_F(EpollFaultTest, EintrFromEpollWaitIsRetriedAndNotCounted) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());
  sys.fail_wait = 50;
  const uint64_t errors_before = rt.io_backend()->stats().enter_errors;
  const int calls_before = sys.wait_calls;
  for (int i = 0; i < 20 && sys.fail_wait > 0; ++i) {
    EXPECT_EQ(rt.block_on(workload(&pairs_)), kTrips) << "run " << i;
  }
  EXPECT_EQ(sys.fail_wait, 0) << "the workload did not reach every injected EINTR";
  EXPECT_GT(sys.wait_calls - calls_before, 50) << "the real epoll_wait ran after the faults";
  EXPECT_EQ(rt.io_backend()->stats().enter_errors, errors_before) << "EINTR is not an error";
  expect_recovered(rt);
}

TEST_F(EpollFaultTest, EnomemFromEpollWaitTwiceInARowIsSurvived) {
  FaultySyscalls sys;
  sys.wait_errno = ENOMEM;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());
  const uint64_t errors_before = rt.io_backend()->stats().enter_errors;
  sys.fail_wait = 2;
  EXPECT_EQ(rt.block_on(workload(&pairs_)), kTrips);
  EXPECT_EQ(sys.fail_wait, 0);
  EXPECT_EQ(rt.io_backend()->stats().enter_errors - errors_before, 2u);
  expect_recovered(rt);
}

// An epoll_wait that fails every time ends the run with its error after
// three tries instead of spinning: try_block_on returns it.
TEST_F(EpollFaultTest, AnEpollWaitThatAlwaysFailsEndsTheRunWithItsError) {
  FaultySyscalls sys;
  sys.wait_errno = ENOMEM;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());
  sys.fail_wait = 1'000'000;
  const int calls_before = sys.wait_calls;
  absl::StatusOr<IoResult> r =
      rt.try_block_on(reactor::recv(pairs_[0].a.get(), std::vector<char>(8)));
  ASSERT_FALSE(r.ok()) << "the run should have ended";
  EXPECT_EQ(errno_of(r.status()), ENOMEM) << r.status();
  EXPECT_NE(r.status().message().find("3 times in a row"), absl::string_view::npos) << r.status();
  EXPECT_LE(sys.wait_calls - calls_before, 5) << "kept entering a kernel that refuses";
  EXPECT_FALSE(rt.io_backend()->status().ok());
}

// ---- epoll_ctl ----

TEST_F(EpollFaultTest, EpollCtlEnomemFailsTheWaitingOpWithAClearStatus) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());
  sys.fail_ctl_add = 1;
  // No data: the recv says EAGAIN and must register, which fails.
  IoResult r = rt.block_on(reactor::recv(pairs_[0].a.get(), std::vector<char>(8)));
  ASSERT_FALSE(r.n.ok()) << "the recv cannot wait without a registration";
  EXPECT_EQ(r.n.status().code(), absl::StatusCode::kResourceExhausted) << r.n.status();
  EXPECT_EQ(errno_of(r.n.status()), ENOMEM) << r.n.status();
  EXPECT_EQ(r.buf.size(), 8u) << "the buffer comes back";
  EXPECT_EQ(sys.fail_ctl_add, 0);
  EXPECT_EQ(rt.io_backend()->live_ops(), 0u);
  EXPECT_EQ(epoll_of(rt).registered_fds(), 0u);
  expect_recovered(rt);  // the same fds register fine now
}

// ---- EAGAIN after readiness ----

TEST_F(EpollFaultTest, RecvEagainAfterAnEdgeWaitsForTheNextEdgeWithoutSpinning) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  const int a = pairs_[0].a.get(), b = pairs_[0].b.get();
  rt.block_on([&]() -> Task<void> {
    JoinHandle<IoResult> reader = pollux::spawn(reactor::recv(a, std::vector<char>(64)));
    co_await sleep(absl::Milliseconds(2));  // registered, waiting
    EXPECT_FALSE(reader.is_finished());
    const uint64_t retries_before = rt.io_backend()->stats().eagain_retries;
    sys.eagain_recv = 1;  // the edge's recv finds "nothing" (another reader took it)
    EXPECT_EQ(::write(b, kAbcdef.data(), 3), 3);
    co_await sleep(absl::Milliseconds(20));
    EXPECT_EQ(sys.eagain_recv, 0) << "the edge never woke the recv";
    EXPECT_FALSE(reader.is_finished()) << "a spurious EAGAIN was surfaced";
    const int calls = sys.recv_calls;
    EXPECT_LE(calls, 4) << "the recv spun on a readiness that said nothing";
    EXPECT_GT(rt.io_backend()->stats().eagain_retries, retries_before);
    EXPECT_EQ(::write(b, kAbcdef.data() + 3, 3), 3);  // the next edge
    JoinResult<IoResult> r = co_await reader;
    EXPECT_TRUE(r.ok() && r.value().n.ok());
    if (r.ok() && r.value().n.ok()) {
      EXPECT_EQ(std::string(r.value().buf.data(), *r.value().n), std::string_view(kAbcdef));
    }
  }());
  expect_recovered(rt);
}

TEST_F(EpollFaultTest, SendEagainWhenWritableIsRetriedAfterReadinessNeverSurfaced) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  const int a = pairs_[0].a.get(), b = pairs_[0].b.get();
  rt.block_on([&]() -> Task<void> {
    sys.eagain_send = 2;  // the try-first and the attempt after registering
    JoinHandle<IoResult> writer = pollux::spawn(reactor::send(a, bytes(kPayload)));
    co_await sleep(absl::Milliseconds(20));
    EXPECT_EQ(sys.eagain_send, 0);
    // Any event on the socket carries EPOLLOUT (it is writable): the peer
    // writing to it is one.
    if (!writer.is_finished()) {
      EXPECT_EQ(::write(b, kPayload.data(), 1), 1);
    }
    JoinResult<IoResult> r = co_await writer;
    EXPECT_TRUE(r.ok() && r.value().n.ok());
    if (r.ok() && r.value().n.ok()) {
      EXPECT_EQ(*r.value().n, 7u);
    }
    EXPECT_LE(sys.send_calls, 4) << "the send spun";
  }());
  char got[16];
  EXPECT_EQ(::read(b, got, sizeof got), 7);
  EXPECT_EQ(std::string(got, 7), "payload");
  (void)::read(a, got, sizeof got);  // the poke, if it was needed
  expect_recovered(rt);
}

// ---- accept4 out of descriptors ----

TEST_F(EpollFaultTest, AcceptEmfileBacksOffAndAcceptsOnceFdsAreBack) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  OwnedFd l(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof addr;
  ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(l.get(), 16), 0);
  ASSERT_EQ(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&addr), &alen), 0);
  OwnedFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const int lfd = l.get();
  rt.block_on([&]() -> Task<void> {
    reactor::AcceptStream incoming(lfd);
    sys.fail_accept = 1'000'000;  // out of descriptors until further notice
    int errors = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(300)) {
      absl::StatusOr<OwnedFd> c = co_await incoming.next();
      EXPECT_FALSE(c.ok());
      if (c.ok()) break;
      EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted) << c.status();
      EXPECT_EQ(errno_of(c.status()), EMFILE) << c.status();
      ++errors;
    }
    const int calls = sys.accept_calls;
    std::fprintf(stderr, "accept4 calls while out of descriptors for 300 ms: %d\n", calls);
    // 10 + 20 + 40 + 80 + 100 ms: about six tries in 300 ms.
    EXPECT_GE(calls, 3);
    EXPECT_LE(calls, 12) << "the accept re-armed without backing off";
    EXPECT_EQ(errors, calls);
    EXPECT_GE(incoming.backoffs(), 3u);
    sys.fail_accept = 0;  // a descriptor came free
    const auto t1 = std::chrono::steady_clock::now();
    absl::StatusOr<OwnedFd> c = co_await incoming.next();
    const auto took = std::chrono::steady_clock::now() - t1;
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) {
      EXPECT_TRUE(c->valid());
    }
    EXPECT_LT(took, std::chrono::milliseconds(500)) << "the backoff is capped at 100 ms";
  }());
  EXPECT_EQ(rt.io_backend()->live_ops(), 0u);
}

}  // namespace
}  // namespace pollux
