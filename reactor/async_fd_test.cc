// Tests for AsyncFd (async_fd.h), on whichever backend the runtime runs (the
// BUILD file runs this binary on io_uring and on epoll): an eventfd fed from
// a foreign thread for 100,000 rounds with no lost wake, the tick rule (a
// clear with a stale guard never clears a newer edge), sticky readiness
// until cleared, hang-up, dropped waits that lose nothing, and the errors of
// create().
#include "reactor/async_fd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
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

namespace pollux::reactor {
namespace {

// ASSERT_* cannot return from a coroutine: fail and co_return instead.
#define CO_ASSERT_TRUE(cond)                      \
  if (!(cond)) {                                  \
    ADD_FAILURE() << "expected: " #cond;          \
    co_return;                                    \
  }

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

OwnedFd make_eventfd() {
  OwnedFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  POLLUX_CHECK(fd.valid(), "eventfd");
  return fd;
}

// Reads the eventfd's counter: its value, or 0 when it was 0 (EAGAIN).
uint64_t drain(int efd) {
  uint64_t n = 0;
  if (::read(efd, &n, sizeof(n)) != static_cast<ssize_t>(sizeof(n))) return 0;
  return n;
}

class AsyncFdTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // io_uring: a dropped AsyncFd's multishot poll ends with a CQE the
    // backend reaps at a later tick.
    for (int i = 0; i < 200 && rt_.io_backend()->live_ops() > 0; ++i) {
      rt_.block_on(pollux::sleep(absl::Milliseconds(1)));
    }
    EXPECT_EQ(rt_.io_backend()->live_ops(), 0u) << "an op slot is still live after the test";
  }
  Runtime rt_ = make_runtime();
  testing::Watchdog dog_{std::chrono::seconds(60), "async fd test"};
};

// The bar: a foreign thread writes an eventfd 100,000 times, each
// time waiting until the task has taken the previous one, so every round
// needs its own wake-up. A lost edge hangs the task: the timeout catches it.
TEST_F(AsyncFdTest, EventfdFromAForeignThreadHundredThousandRoundsNoLostWake) {
  constexpr uint64_t kRounds = 100'000;
  OwnedFd efd = make_eventfd();
  std::atomic<uint64_t> taken{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kRounds && !stop.load(); ++i) {
      // Wait for the task to take round i (acquire: pairs with its store).
      while (taken.load(std::memory_order_acquire) < i && !stop.load()) std::this_thread::yield();
      const uint64_t one = 1;
      ASSERT_EQ(::write(efd.get(), &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    }
  });
  absl::StatusOr<uint64_t> total = rt_.block_on(pollux::timeout(
      [&]() -> Task<uint64_t> {
        absl::StatusOr<AsyncFd> afd = AsyncFd::create(efd.get());
        EXPECT_TRUE(afd.ok()) << afd.status();
        if (!afd.ok()) co_return 0;
        uint64_t sum = 0;
        uint64_t clears = 0;
        while (sum < kRounds) {
          absl::StatusOr<ReadyGuard> g = co_await afd->readable();
          if (!g.ok()) {
            ADD_FAILURE() << g.status();
            break;
          }
          const uint64_t n = drain(efd.get());
          if (n == 0) {
            g->clear_ready();  // drained: the next write is a new edge
            ++clears;
            continue;
          }
          sum += n;
          // release: pairs with the writer's acquire load.
          taken.store(sum, std::memory_order_release);
        }
        EXPECT_GT(clears, 0u) << "the test never waited for an edge";
        co_return sum;
      }(),
      absl::Seconds(45)));
  stop.store(true);
  writer.join();
  ASSERT_TRUE(total.ok()) << "lost wake-up: " << total.status() << " after " << taken.load();
  EXPECT_EQ(*total, kRounds);
}

// The same with the writer never waiting: counts add up, nothing is lost.
TEST_F(AsyncFdTest, EventfdBlastedFromAForeignThreadSumsExactly) {
  constexpr uint64_t kWrites = 100'000;
  OwnedFd efd = make_eventfd();
  std::thread writer([&] {
    for (uint64_t i = 0; i < kWrites; ++i) {
      const uint64_t one = 1;
      ASSERT_EQ(::write(efd.get(), &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
      if (i % 1024 == 0) std::this_thread::yield();
    }
  });
  absl::StatusOr<uint64_t> total = rt_.block_on(pollux::timeout(
      [&]() -> Task<uint64_t> {
        absl::StatusOr<AsyncFd> afd = AsyncFd::create(efd.get());
        if (!afd.ok()) co_return 0;
        uint64_t sum = 0;
        while (sum < kWrites) {
          absl::StatusOr<ReadyGuard> g = co_await afd->readable();
          if (!g.ok()) break;
          const uint64_t n = drain(efd.get());
          if (n == 0) g->clear_ready();
          sum += n;
        }
        co_return sum;
      }(),
      absl::Seconds(45)));
  writer.join();
  ASSERT_TRUE(total.ok()) << "lost wake-up: " << total.status();
  EXPECT_EQ(*total, kWrites);
}

// A guard taken before an edge must not clear that edge: here the eventfd
// is drained, then written again and the backend sees that event, and only
// then is the stale guard cleared. If the clear ignored the tick, the next
// readable() would wait for an edge that already came (forever).
TEST_F(AsyncFdTest, AStaleGuardNeverClearsANewerEdge) {
  OwnedFd efd = make_eventfd();
  absl::Status s = rt_.block_on(pollux::timeout(
      [&]() -> Task<absl::Status> {
        absl::StatusOr<AsyncFd> afd = AsyncFd::create(efd.get());
        if (!afd.ok()) co_return afd.status();
        const uint64_t one = 1;
        EXPECT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
        absl::StatusOr<ReadyGuard> stale = co_await afd->readable();
        if (!stale.ok()) co_return stale.status();
        EXPECT_TRUE(stale->is_readable());
        EXPECT_EQ(drain(efd.get()), 1u);
        // A new edge, delivered to the backend while we hold the old guard.
        EXPECT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
        co_await pollux::sleep(absl::Milliseconds(5));
        stale->clear_ready();  // must be a no-op: an event came since
        absl::StatusOr<ReadyGuard> fresh = co_await afd->readable();
        if (!fresh.ok()) co_return fresh.status();
        EXPECT_EQ(drain(efd.get()), 1u);
        co_return absl::OkStatus();
      }(),
      absl::Seconds(5)));
  EXPECT_TRUE(s.ok()) << "the stale clear lost an edge: " << s;
}

// Readiness stays until cleared; cleared, the next wait needs a new edge.
TEST_F(AsyncFdTest, ReadinessIsStickyUntilClearedAndACleanWaitNeedsAnEdge) {
  OwnedFd efd = make_eventfd();
  rt_.block_on([&]() -> Task<void> {
    absl::StatusOr<AsyncFd> afd = AsyncFd::create(efd.get());
    EXPECT_TRUE(afd.ok()) << afd.status();
    if (!afd.ok()) co_return;
    const uint64_t one = 1;
    EXPECT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
    absl::StatusOr<ReadyGuard> a = co_await afd->readable();
    CO_ASSERT_TRUE(a.ok());
    absl::StatusOr<ReadyGuard> b = co_await afd->readable();  // not cleared: at once
    CO_ASSERT_TRUE(b.ok());
    EXPECT_EQ(drain(efd.get()), 1u);
    EXPECT_EQ(drain(efd.get()), 0u);
    b->clear_ready();
    // Nothing written: the wait must still be pending after a while.
    auto t = co_await pollux::timeout(afd->readable(), absl::Milliseconds(20));
    EXPECT_TRUE(absl::IsDeadlineExceeded(t.status())) << t.status();
    // A new write is a new edge.
    EXPECT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
    auto c = co_await pollux::timeout(afd->readable(), absl::Seconds(5));
    EXPECT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(drain(efd.get()), 1u);
  }());
}

// A dropped wait consumes nothing: the next wait sees the same readiness.
TEST_F(AsyncFdTest, ADroppedWaitLosesNothing) {
  OwnedFd efd = make_eventfd();
  rt_.block_on([&]() -> Task<void> {
    absl::StatusOr<AsyncFd> afd = AsyncFd::create(efd.get());
    if (!afd.ok()) co_return;
    for (int i = 0; i < 10; ++i) {
      auto r = co_await pollux::select(afd->readable(), pollux::ready(0));
      EXPECT_EQ(r.index, 1u) << "nothing was written yet";
    }
    const uint64_t one = 1;
    EXPECT_EQ(::write(efd.get(), &one, sizeof(one)), 8);
    auto g = co_await pollux::timeout(afd->readable(), absl::Seconds(5));
    EXPECT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(drain(efd.get()), 1u);
  }());
}

TEST_F(AsyncFdTest, WritableAtOnceAndHangUpWhenTheReaderGoes) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  OwnedFd r(p[0]), w(p[1]);
  rt_.block_on([&]() -> Task<void> {
    absl::StatusOr<AsyncFd> afd = AsyncFd::create(w.get());
    EXPECT_TRUE(afd.ok()) << afd.status();
    if (!afd.ok()) co_return;
    auto g = co_await pollux::timeout(afd->writable(), absl::Seconds(5));
    CO_ASSERT_TRUE(g.ok());
    EXPECT_TRUE(g->is_writable());
    r.reset();  // the reader goes: the write end reports an error/hang-up
    g->clear_ready();
    auto h = co_await pollux::timeout(afd->writable(), absl::Seconds(5));
    CO_ASSERT_TRUE(h.ok());
    EXPECT_TRUE(h->is_error() || h->is_hang_up()) << h->ready();
    // Final states stay: a clear does not make it wait again.
    h->clear_ready();
    auto again = co_await pollux::timeout(afd->writable(), absl::Seconds(5));
    EXPECT_TRUE(again.ok()) << again.status();
  }());
}

TEST_F(AsyncFdTest, CreateErrorsAreClear) {
  // Outside a runtime.
  OwnedFd efd = make_eventfd();
  absl::StatusOr<AsyncFd> outside = AsyncFd::create(efd.get());
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kFailedPrecondition) << outside.status();
  rt_.block_on([&]() -> Task<void> {
    EXPECT_EQ(AsyncFd::create(-1).status().code(), absl::StatusCode::kInvalidArgument);
    absl::StatusOr<AsyncFd> first = AsyncFd::create(efd.get());
    EXPECT_TRUE(first.ok()) << first.status();
    absl::StatusOr<AsyncFd> second = AsyncFd::create(efd.get());
    EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists) << second.status();
    // A regular file: epoll cannot watch one; io_uring's poll says ready.
    char tmpl[] = "/tmp/pollux_afd_XXXXXX";
    OwnedFd file(::mkstemp(tmpl));
    ::unlink(tmpl);
    absl::StatusOr<AsyncFd> f = AsyncFd::create(file.get());
    if (std::string(rt_.io_backend()->name()) == "epoll") {
      EXPECT_EQ(f.status().code(), absl::StatusCode::kPermissionDenied) << f.status();
      EXPECT_NE(f.status().message().find("fd"), absl::string_view::npos) << f.status();
    } else {
      EXPECT_TRUE(f.ok()) << f.status();
    }
    co_return;
  }());
}

TEST_F(AsyncFdTest, DroppingItLeavesTheFdOpenAndNothingBehind) {
  const int fds_before = testing::open_fd_count();
  OwnedFd efd = make_eventfd();
  rt_.block_on([&]() -> Task<void> {
    for (int i = 0; i < 100; ++i) {
      absl::StatusOr<AsyncFd> afd = AsyncFd::create(efd.get());
      EXPECT_TRUE(afd.ok()) << afd.status();
      auto r = co_await pollux::select(afd->readable(), pollux::ready(0));
      EXPECT_EQ(r.index, 1u);
    }
    EXPECT_TRUE((co_await reactor::nop()).ok());
  }());
  const uint64_t one = 1;
  EXPECT_EQ(::write(efd.get(), &one, sizeof(one)), 8) << "the fd must still be open";
  efd.reset();
  // Let io_uring's cancelled polls come back before the live-op check.
  for (int i = 0; i < 50 && rt_.io_backend()->live_ops() > 0; ++i) {
    rt_.block_on(pollux::sleep(absl::Milliseconds(1)));
  }
  EXPECT_EQ(testing::open_fd_count(), fds_before);
}

}  // namespace
}  // namespace pollux::reactor
