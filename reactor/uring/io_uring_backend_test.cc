// Tests for IoUringBackend (io_uring_backend.h): setup flags and the basic
// fallback, binding the ring to its thread, park/unpark, the slots' life
// cycle under cancellation (100,000 submit-then-drop reads, dropped accepts
// whose fd must not leak, a timeout around a read that never completes,
// shutdown with operations still in the kernel, a shutdown that gives up on
// an operation the kernel never returns), and the facts about O_NONBLOCK fds
// on the running kernel that the backend relies on.
#include "reactor/uring/io_uring_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/context.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/yield_now.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"
#include "timer/timeout.h"
#include "timer/time_driver.h"
#include "timer/timer_queue.h"

namespace pollux {
namespace {

using reactor::IoUringBackend;
using reactor::IoUringOptions;
using testing::open_fd_count;
using testing::Watchdog;

constexpr unsigned kSingleIssuerDefer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;

struct Pipe {
  OwnedFd r, w;
  static Pipe make() {
    int p[2];
    // Blocking on purpose: io_uring hands -EAGAIN back for O_NONBLOCK files
    // instead of waiting for readiness.
    POLLUX_CHECK(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
    return Pipe{OwnedFd(p[0]), OwnedFd(p[1])};
  }
};

// Bytes waiting in a pipe or socket.
int readable_bytes(int fd) {
  int n = -1;
  POLLUX_CHECK(::ioctl(fd, FIONREAD, &n) == 0, "FIONREAD");
  return n;
}

// A buffer holding `s` (gcc 12 rejects braced char lists inside coroutines).
std::vector<char> bytes(const std::string& s) { return std::vector<char>(s.begin(), s.end()); }

void write_all(int fd, const std::string& s) {
  POLLUX_CHECK(::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()), "write");
}

Runtime make_runtime(IoUringOptions o = {}) {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().backend(BackendKind::kIoUring).io_uring_options(o).build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

// Polls `f` once (it must be Pending: the operation is now submitted or
// queued) and completes.
template <class F>
auto poll_once(F& f) {
  return poll_fn([&f](Context& cx) -> Poll<bool> { return Ready(f.poll(cx).is_ready()); });
}

IoUringBackend& uring_of(Runtime& rt) {
  auto* b = dynamic_cast<IoUringBackend*>(rt.io_backend());
  POLLUX_CHECK(b != nullptr, "the runtime does not run on io_uring");
  return *b;
}

// Runs ticks (a nop each, then a 1 ms sleep now and then) until no op slot
// is live or 200 rounds have passed. Returns the slots still live.
size_t settle(Runtime& rt) {
  reactor::Backend* d = rt.io_backend();
  for (int i = 0; i < 200 && d->live_ops() != 0; ++i) {
    if (i % 2 == 0) {
      EXPECT_TRUE(rt.block_on(reactor::nop()).ok());
    } else {
      rt.block_on(sleep(absl::Milliseconds(1)));
    }
  }
  return d->live_ops();
}

// ---- Setup ----

TEST(IoUringBackendSetup, CreateUsesTheBestFlagsTheKernelAccepts) {
  absl::StatusOr<std::unique_ptr<IoUringBackend>> d = IoUringBackend::create();
  ASSERT_TRUE(d.ok()) << d.status();
  const unsigned f = (*d)->setup_flags();
  EXPECT_TRUE(f & IORING_SETUP_R_DISABLED) << "created disabled, enabled on its thread";
  EXPECT_TRUE(f & IORING_SETUP_CQSIZE);
  if ((f & kSingleIssuerDefer) != kSingleIssuerDefer) {
    std::fprintf(stderr,
                 "NOTE: this kernel refused SINGLE_ISSUER|DEFER_TASKRUN; setup flags 0x%x\n", f);
  } else {
    EXPECT_TRUE(f & IORING_SETUP_TASKRUN_FLAG);
  }
  EXPECT_TRUE((*d)->enable_on_current_thread().ok());
  EXPECT_TRUE((*d)->enable_on_current_thread().ok()) << "enabling twice is a no-op";
}

// A thread holds at most 16 registered rings. A runtime's backend is often
// destroyed after its thread stopped using it (on another thread, or later):
// shutdown() must drop the registration, or the 17th ring of a thread would
// go without (and the thread's table would pin every dead ring's memory).
TEST(IoUringBackendSetup, ShutdownDropsTheRingFdRegistrationBeforeTheRingIsDestroyed) {
  std::vector<std::unique_ptr<IoUringBackend>> shut_down_but_alive;
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<std::unique_ptr<IoUringBackend>> d = IoUringBackend::create();
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE((*d)->enable_on_current_thread().ok());
    if (i == 0 && !(*d)->ring_fd_registered()) {
      GTEST_SKIP() << "this kernel cannot register ring fds (before 5.18)";
    }
    EXPECT_TRUE((*d)->ring_fd_registered()) << "ring " << i;
    (*d)->shutdown();
    EXPECT_FALSE((*d)->ring_fd_registered());
    shut_down_but_alive.push_back(std::move(*d));
  }
}

TEST(IoUringBackendSetup, ForceBasicSetupUsesNoOptionalFlagsAndWorks) {
  IoUringOptions o;
  o.force_basic_setup = true;
  absl::StatusOr<std::unique_ptr<IoUringBackend>> d = IoUringBackend::create(o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->setup_flags() &
                (IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG),
            0u);

  Runtime rt = make_runtime(o);
  EXPECT_EQ(uring_of(rt).setup_flags() & kSingleIssuerDefer, 0u);
  Pipe p = Pipe::make();
  const int r = p.r.get(), w = p.w.get();
  std::string got = rt.block_on([r, w]() -> Task<std::string> {
    absl::Status s = co_await reactor::nop();
    EXPECT_TRUE(s.ok()) << s;
    reactor::IoResult wr = co_await reactor::write(w, bytes("abc"));
    EXPECT_EQ(wr.n.value_or(0), 3u);
    reactor::IoResult rd = co_await reactor::read(r, std::vector<char>(8));
    EXPECT_TRUE(rd.n.ok()) << rd.n.status();
    co_await sleep(absl::Milliseconds(2));
    co_return std::string(rd.buf.data(), rd.n.value_or(0));
  }());
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(settle(rt), 0u);
}

TEST(IoUringBackendSetup, CqSmallerThanSqIsAClearError) {
  IoUringOptions o;
  o.sq_entries = 64;
  o.cq_entries = 16;
  absl::StatusOr<std::unique_ptr<IoUringBackend>> d = IoUringBackend::create(o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
  EXPECT_NE(d.status().message().find("io_uring_queue_init"), absl::string_view::npos)
      << d.status();
}

TEST(IoUringBackendSetup, CreatedOnOneThreadEnabledAndUsedOnAnother) {
  absl::StatusOr<std::unique_ptr<IoUringBackend>> created = IoUringBackend::create();
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<IoUringBackend> d = std::move(*created);
  Pipe p = Pipe::make();
  std::string got;
  absl::Status enabled;
  Watchdog dog(std::chrono::seconds(20), "backend thread");
  std::thread t([&] {
    enabled = d->enable_on_current_thread();
    if (!enabled.ok()) return;
    {
      timer::TimeDriver timed(*d);
      RuntimeContext ctx;
      ctx.backend = d.get();
      ctx.timers = &timed.queue();
      RuntimeContext::Enter entered(ctx);
      LocalExecutor ex(timed);
      const int r = p.r.get(), w = p.w.get();
      got = ex.block_on([r, w]() -> Task<std::string> {
        reactor::IoResult wr = co_await reactor::write(w, bytes("hi"));
        EXPECT_EQ(wr.n.value_or(0), 2u);
        reactor::IoResult rd = co_await reactor::read(r, std::vector<char>(8));
        co_await sleep(absl::Milliseconds(1));
        co_return std::string(rd.buf.data(), rd.n.value_or(0));
      }());
    }
    d.reset();  // drained and closed on its own thread
  });
  t.join();
  ASSERT_TRUE(enabled.ok()) << enabled;
  EXPECT_EQ(got, "hi");
}

// ---- Park / unpark ----

TEST(IoUringBackendPark, UnparkFromAnotherThreadEndsAPark) {
  absl::StatusOr<std::unique_ptr<IoUringBackend>> d = IoUringBackend::create();
  ASSERT_TRUE(d.ok()) << d.status();
  IoUringBackend& drv = **d;
  ASSERT_TRUE(drv.enable_on_current_thread().ok());
  std::shared_ptr<Unparker> u = drv.unparker();
  Watchdog dog(std::chrono::seconds(20), "park with a remote unpark");
  for (int round = 0; round < 5; ++round) {
    std::atomic<bool> parked_soon{false};
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      parked_soon = true;
      u->unpark();
    });
    // No timers and no I/O: only the unpark can end this park.
    do {
      drv.park(std::nullopt);
    } while (!parked_soon.load());
    t.join();
  }
  EXPECT_GE(drv.uring_stats().unpark_writes, 1u)
      << "at least one unpark found the driver parked and wrote its eventfd";
}

TEST(IoUringBackendPark, UnparkWhileNotParkedIsRememberedAndCostsNoWrite) {
  absl::StatusOr<std::unique_ptr<IoUringBackend>> d = IoUringBackend::create();
  ASSERT_TRUE(d.ok()) << d.status();
  IoUringBackend& drv = **d;
  ASSERT_TRUE(drv.enable_on_current_thread().ok());
  Watchdog dog(std::chrono::seconds(20), "park after an early unpark");
  const uint64_t writes = drv.uring_stats().unpark_writes;
  drv.unparker()->unpark();
  drv.unparker()->unpark();  // idempotent
  drv.park(std::nullopt);                // returns at once: the notification was pending
  EXPECT_EQ(drv.uring_stats().unpark_writes, writes) << "nobody was parked: no eventfd write";
}

// ---- Op table life cycle ----

// 100,000 reads on pipes that never get data, each submitted and dropped
// (three ways: losing a select, polled once by hand then destroyed, and a
// spawned task aborted). Afterwards every slot is free, every dropped read's
// final CQE was handled for its own slot (none arrived stale), and the
// cancelled reads consumed nothing: data written afterwards is all there.
TEST(IoUringBackendOps, HundredThousandSubmitThenDropReadsLeaveNothingBehind) {
  constexpr int kOps = 100'000;
  constexpr int kPipes = 4;
  Runtime rt = make_runtime();
  IoUringBackend* drv = &uring_of(rt);
  std::vector<Pipe> pipes;
  std::vector<int> fds;
  for (int i = 0; i < kPipes; ++i) {
    pipes.push_back(Pipe::make());
    fds.push_back(pipes.back().r.get());
  }
  Watchdog dog(std::chrono::seconds(120), "100k submit-then-drop reads");
  ASSERT_TRUE(rt.block_on(reactor::nop()).ok());  // the stats below start after it
  const reactor::UringStats before = drv->uring_stats();
  int lost_select = 0, polled_once = 0, aborted = 0;
  rt.block_on([&]() -> Task<void> {
    for (int i = 0; i < kOps; ++i) {
      const int fd = fds[i % kPipes];
      switch (i % 3) {
        case 0: {
          auto r = co_await select(reactor::read(fd, std::vector<char>(64)), ready(i));
          if (r.index == 1) ++lost_select;
          break;
        }
        case 1: {
          auto op = reactor::read(fd, std::vector<char>(64));
          bool ready_at_once = co_await poll_once(op);
          if (!ready_at_once) ++polled_once;
          break;  // `op` is dropped here, its SQE maybe not even submitted yet
        }
        case 2: {
          JoinHandle<reactor::IoResult> h = pollux::spawn(reactor::read(fd, std::vector<char>(64)));
          co_await yield_now();  // the task runs and submits its read
          h.abort();
          JoinResult<reactor::IoResult> res = co_await h;
          if (res.is_cancelled()) ++aborted;
          break;
        }
      }
      if (i % 64 == 63) co_await yield_now();  // let the driver submit and reap
    }
  }());
  EXPECT_EQ(lost_select + polled_once + aborted, kOps);
  ASSERT_EQ(settle(rt), 0u) << "an op slot leaked";
  const reactor::UringStats after = drv->uring_stats();
  EXPECT_EQ(after.stale_cqes, before.stale_cqes) << "a CQE arrived for a slot already freed";
  EXPECT_GE(after.completions - before.completions, static_cast<uint64_t>(kOps))
      << "every dropped read's final CQE is handled for its (ignored) slot";
  std::fprintf(stderr, "100k drops: completions %llu, stale %llu, enters %llu, overflows %llu\n",
               static_cast<unsigned long long>(after.completions - before.completions),
               static_cast<unsigned long long>(after.stale_cqes - before.stale_cqes),
               static_cast<unsigned long long>(after.kernel_entries - before.kernel_entries),
               static_cast<unsigned long long>(after.cq_overflows - before.cq_overflows));

  // No cancelled read is still waiting in the kernel: what we write now stays
  // in the pipe, and a fresh read gets all of it.
  for (int i = 0; i < kPipes; ++i) {
    write_all(pipes[i].w.get(), "payload" + std::to_string(i));
    EXPECT_EQ(readable_bytes(pipes[i].r.get()), 8) << "a dropped read consumed data";
    reactor::IoResult r = rt.block_on(reactor::read(pipes[i].r.get(), std::vector<char>(64)));
    ASSERT_TRUE(r.n.ok()) << r.n.status();
    EXPECT_EQ(std::string(r.buf.data(), *r.n), "payload" + std::to_string(i));
  }
  EXPECT_EQ(settle(rt), 0u);
}

bool has_pending_connection(int listen_fd) {
  pollfd pf{listen_fd, POLLIN, 0};
  return ::poll(&pf, 1, 0) == 1;
}

// Accepts dropped around the moment a client connects: the kernel may hand
// the accepted fd to a slot nobody reads any more. The driver (or the op's
// destructor, when the CQE is already in) must close it. Even rounds drop the
// accept right after the connect (racing the kernel: without DEFER_TASKRUN
// the accept runs as task work when connect() returns, so the fd reaches a
// slot that is then Ignored); odd rounds wait until the kernel has taken the
// connection off the backlog (the CQE is in) and drop it unclaimed.
class DroppedAccept : public ::testing::TestWithParam<bool> {};

TEST_P(DroppedAccept, NeverLeaksTheAcceptedFd) {
  IoUringOptions options;
  options.force_basic_setup = GetParam();
  const int baseline = open_fd_count();
  ASSERT_GT(baseline, 0);
  int delivered_before_drop = 0, left_in_backlog = 0;
  {
    Runtime rt = make_runtime(options);
    OwnedFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(listener.valid());
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(listener.get(), 64), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    Watchdog dog(std::chrono::seconds(60), "dropped accepts");
    const int lfd = listener.get();
    for (int round = 0; round < 40; ++round) {
      ASSERT_FALSE(has_pending_connection(lfd));
      OwnedFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      ASSERT_TRUE(client.valid());
      rt.block_on([&]() -> Task<void> {
        std::optional<reactor::AcceptOp> acc;
        acc.emplace(reactor::accept(lfd));
        EXPECT_FALSE(co_await poll_once(*acc));
        EXPECT_TRUE((co_await reactor::nop()).ok());  // the accept is in the kernel now
        // A loopback connect completes against the backlog: no accept needed.
        EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
        if (round % 2 == 1) {
          for (int k = 0; k < 50; ++k) {
            EXPECT_TRUE((co_await reactor::nop()).ok());
            if (!has_pending_connection(lfd)) {
              ++delivered_before_drop;  // the accept took it; its CQE is reaped
              break;
            }
          }
        }
        acc.reset();  // dropped: cancelled, or its delivered fd closed
      }());
      EXPECT_EQ(settle(rt), 0u);
      // A connection the cancelled accept did not take: accept and close it
      // here, so every round starts with an empty backlog.
      while (has_pending_connection(lfd)) {
        int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        ASSERT_GE(fd, 0);
        ::close(fd);
        ++left_in_backlog;
      }
    }
    std::fprintf(stderr,
                 "dropped accepts (%s setup): %d of 20 delayed drops held a delivered fd; %d "
                 "of 20 immediate drops still got one; %d connections left in the backlog\n",
                 GetParam() ? "basic" : "default", delivered_before_drop,
                 40 - delivered_before_drop - left_in_backlog, left_in_backlog);
    EXPECT_EQ(delivered_before_drop, 20) << "the kernel never delivered within 50 ticks";
  }
  EXPECT_EQ(open_fd_count(), baseline) << "an accepted fd (or the ring) leaked";
}

INSTANTIATE_TEST_SUITE_P(Setups, DroppedAccept, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? std::string("Basic") : std::string("Default");
                         });

TEST(IoUringBackendOps, TimeoutAroundANeverReadyReadIsDeadlineExceededAndFreesTheSlot) {
  Runtime rt = make_runtime();
  Pipe p = Pipe::make();
  Watchdog dog(std::chrono::seconds(20), "timeout around a read");
  const absl::Time start = absl::Now();
  absl::StatusOr<reactor::IoResult> r =
      rt.block_on(timeout(reactor::read(p.r.get(), std::vector<char>(16)), absl::Milliseconds(20)));
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_GE(took, absl::Milliseconds(20)) << "timed out early";
  EXPECT_EQ(settle(rt), 0u) << "the timed-out read's slot leaked";
  write_all(p.w.get(), "late");
  EXPECT_EQ(readable_bytes(p.r.get()), 4) << "the timed-out read still consumed data";
}

// Shutdown with reads, an accept and a kernel timeout still in flight: the
// runtime's destructor cancels them, waits for the kernel, and closes
// everything it opened (the ring, the eventfd).
TEST(IoUringBackendOps, ShutdownWithOperationsInFlightLeaksNoFd) {
  const int baseline = open_fd_count();
  Pipe p = Pipe::make();
  OwnedFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  const int with_fds = open_fd_count();
  Watchdog dog(std::chrono::seconds(30), "shutdown with ops in flight");
  {
    Runtime rt = make_runtime();
    const int r = p.r.get(), l = listener.get();
    rt.block_on([&]() -> Task<void> {
      for (int i = 0; i < 8; ++i) {
        (void)pollux::spawn(reactor::read(r, std::vector<char>(1 << 16)));
      }
      (void)pollux::spawn(reactor::accept(l));
      (void)pollux::spawn(reactor::timeout(absl::Hours(1)));
      co_await yield_now();
      EXPECT_TRUE((co_await reactor::nop()).ok());
      EXPECT_EQ(rt.io_backend()->live_ops(), 10u);
    }());
  }
  EXPECT_EQ(open_fd_count(), with_fds);
  write_all(p.w.get(), "x");
  EXPECT_EQ(readable_bytes(p.r.get()), 1) << "a read outlived its runtime";
  p = Pipe{};
  listener.reset();
  EXPECT_EQ(open_fd_count(), baseline);
}

// ---- Shutdown that gives up ----

// Hides the CQEs of data reads from the backend, as if the kernel never gave
// those operations back (their cancels included).
class SwallowReads : public reactor::UringSyscalls {
 public:
  void on_prep(io_uring_sqe* sqe) override {
    // The backend's own eventfd read has an 8-byte buffer; data reads here are larger.
    if (sqe->opcode == IORING_OP_READ && sqe->len > sizeof(uint64_t)) reads_.push_back(sqe->user_data);
  }
  bool on_cqe(io_uring_cqe* cqe) override {
    for (uint64_t ud : reads_) {
      if (ud == cqe->user_data) return false;
    }
    return true;
  }

 private:
  std::vector<uint64_t> reads_;
};

// DESIGN §5/§9: a slot whose kernel operation never returns is kept (leaked
// on purpose and counted), never freed under the kernel; and shutdown gives
// up after drain_timeout instead of waiting forever.
TEST(IoUringBackendShutdown, AnOperationTheKernelNeverReturnsIsLeakedAndCounted) {
  SwallowReads sys;
  IoUringOptions o;
  o.syscalls = &sys;
  o.drain_timeout = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<IoUringBackend>> created = IoUringBackend::create(o);
  ASSERT_TRUE(created.ok()) << created.status();
  IoUringBackend& b = **created;
  ASSERT_TRUE(b.enable_on_current_thread().ok());
  Pipe p = Pipe::make();
  Watchdog dog(std::chrono::seconds(20), "a shutdown that must give up");
  {
    RuntimeContext ctx;
    ctx.backend = &b;
    RuntimeContext::Enter entered(ctx);
    LocalExecutor ex(b);
    const int r = p.r.get();
    ex.block_on([r]() -> Task<void> {
      auto op = reactor::read(r, std::vector<char>(64));
      EXPECT_FALSE(co_await poll_once(op));
      EXPECT_TRUE((co_await reactor::nop()).ok());  // the read is in the kernel
    }());  // dropped here: cancelled, but its final CQE never shows
  }
  EXPECT_EQ(b.live_ops(), 1u);
  const absl::Time start = absl::Now();
  b.shutdown();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(b.stats().leaked_ops, 1u);
  EXPECT_GE(took, absl::Milliseconds(90)) << "gave up before its drain_timeout";
  EXPECT_LT(took, absl::Seconds(5)) << "kept waiting past its drain_timeout";
}

// ---- What the backend relies on, checked on the running kernel ----

int fd_flags(int fd) { return ::fcntl(fd, F_GETFL); }
int fd_descriptor_flags(int fd) { return ::fcntl(fd, F_GETFD); }

// DESIGN §5: RECV and SEND on O_NONBLOCK sockets wait in the kernel (io_uring
// arms its own poll) instead of completing with -EAGAIN; and if a -EAGAIN
// does come back, the backend retries it after readiness, never surfaces it.
TEST(IoUringFacts, RecvOnANonBlockingSocketWaitsForData) {
  Runtime rt = make_runtime();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  OwnedFd a(sv[0]), b(sv[1]);
  Watchdog dog(std::chrono::seconds(20), "recv on O_NONBLOCK");
  const uint64_t retries_before = rt.io_backend()->stats().eagain_retries;
  std::thread writer([fd = b.get()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    write_all(fd, "late");
  });
  reactor::IoResult r = rt.block_on(reactor::recv(a.get(), std::vector<char>(16)));
  writer.join();
  ASSERT_TRUE(r.n.ok()) << r.n.status() << " (a -EAGAIN must never surface)";
  EXPECT_EQ(std::string(r.buf.data(), *r.n), "late");
  std::fprintf(stderr, "recv on O_NONBLOCK: %llu -EAGAIN retries\n",
               static_cast<unsigned long long>(rt.io_backend()->stats().eagain_retries -
                                               retries_before));
  EXPECT_EQ(settle(rt), 0u);
}

// A READ on an O_NONBLOCK pipe returns -EAGAIN on some kernels (before 5.15,
// and a 6.12-rc regression): the backend then waits for readiness and reads
// again. Either way the caller gets the data, never EAGAIN.
TEST(IoUringFacts, ReadOnANonBlockingPipeGetsTheDataNeverEagain) {
  Runtime rt = make_runtime();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  OwnedFd r(p[0]), w(p[1]);
  Watchdog dog(std::chrono::seconds(20), "read on O_NONBLOCK pipe");
  const uint64_t retries_before = rt.io_backend()->stats().eagain_retries;
  std::thread writer([fd = w.get()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    write_all(fd, "pipe");
  });
  reactor::IoResult got = rt.block_on(reactor::read(r.get(), std::vector<char>(16)));
  writer.join();
  ASSERT_TRUE(got.n.ok()) << got.n.status();
  EXPECT_EQ(std::string(got.buf.data(), *got.n), "pipe");
  std::fprintf(stderr, "read on an O_NONBLOCK pipe: this kernel returned -EAGAIN %llu time(s)\n",
               static_cast<unsigned long long>(rt.io_backend()->stats().eagain_retries -
                                               retries_before));
  EXPECT_EQ(settle(rt), 0u);
}

// Accepted sockets come back SOCK_NONBLOCK|SOCK_CLOEXEC, from a
// non-blocking listener that the accept waited on.
TEST(IoUringFacts, AcceptOnANonBlockingListenerWaitsAndGivesNonBlockingSockets) {
  Runtime rt = make_runtime();
  OwnedFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  Watchdog dog(std::chrono::seconds(20), "accept on O_NONBLOCK");
  std::thread client([addr] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    OwnedFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    POLLUX_CHECK(::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0,
                 "connect");
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  });
  absl::StatusOr<reactor::Accepted> a = rt.block_on(reactor::accept(listener.get()));
  client.join();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(fd_flags(a->fd.get()) & O_NONBLOCK);
  EXPECT_TRUE(fd_descriptor_flags(a->fd.get()) & FD_CLOEXEC);
  EXPECT_EQ(settle(rt), 0u);
}

// The unparker's eventfd is read through the ring and is blocking: a park
// with nothing to do sleeps in one kernel entry until the unpark (an
// O_NONBLOCK eventfd read with IORING_OP_READ can complete with -EAGAIN at
// once on some kernels, and then every park would spin).
TEST(IoUringFacts, AnIdleParkSleepsInOneKernelEntryUntilUnparked) {
  absl::StatusOr<std::unique_ptr<IoUringBackend>> d = IoUringBackend::create();
  ASSERT_TRUE(d.ok()) << d.status();
  IoUringBackend& b = **d;
  ASSERT_TRUE(b.enable_on_current_thread().ok());
  b.poll_now();
  Watchdog dog(std::chrono::seconds(20), "idle park");
  std::shared_ptr<Unparker> u = b.unparker();
  std::thread t([u] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    u->unpark();
  });
  const uint64_t entries_before = b.stats().kernel_entries;
  const absl::Time start = absl::Now();
  EXPECT_TRUE(b.park(std::nullopt));
  const absl::Duration took = absl::Now() - start;
  t.join();
  EXPECT_GE(took, absl::Milliseconds(30)) << "the park returned before the unpark";
  EXPECT_LE(b.stats().kernel_entries - entries_before, 2u) << "the park spun in the kernel";
}

}  // namespace
}  // namespace pollux
