// Tests for FdOwner and the fd records behind it: epochs, a second owner of
// one fd refused, listeners told exactly once before release returns (with
// the epoch they listened at), a listen that races a release refused, and
// claims, listens and releases from many threads at once (TSan).
#include "reactor/fd_owner.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "reactor/internal/fd_records.h"

namespace pollux::reactor {
namespace {

struct CountingListener final : detail::FdCloseListener {
  std::atomic<int> calls{0};
  std::atomic<int> last_fd{-1};
  std::atomic<uint32_t> last_epoch{0};
  void fd_closing(int fd, uint32_t epoch) noexcept override {
    calls.fetch_add(1);
    last_fd.store(fd);
    last_epoch.store(epoch);
  }
};

// A real fd, so the number is ours while the test uses it.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe(p), 0);
    r = p[0];
    w = p[1];
  }
  ~Pipe() {
    ::close(r);
    ::close(w);
  }
};

TEST(FdOwnerTest, EpochsAreOddWhileClaimedAndNeverRepeat) {
  Pipe p;
  const uint32_t before = detail::fd_epoch(p.r);
  EXPECT_EQ(before % 2, 0u);
  uint32_t first;
  {
    FdOwner owner(p.r);
    ASSERT_TRUE(owner.claimed());
    first = detail::fd_epoch(p.r);
    EXPECT_EQ(first % 2, 1u);
    EXPECT_EQ(first, before + 1);
  }
  EXPECT_EQ(detail::fd_epoch(p.r), first + 1);
  FdOwner again(p.r);
  EXPECT_EQ(detail::fd_epoch(p.r), first + 2) << "a new claim is a new epoch";
}

TEST(FdOwnerTest, ASecondOwnerIsRefused) {
  Pipe p;
  FdOwner a(p.r);
  FdOwner b(p.r);
  EXPECT_TRUE(a.claimed());
  EXPECT_FALSE(b.claimed());
  b.release();  // releasing a refused claim does nothing
  EXPECT_EQ(detail::fd_epoch(p.r) % 2, 1u) << "b must not have released a's claim";
}

TEST(FdOwnerTest, BadFdsAreNeverClaimed) {
  EXPECT_FALSE(FdOwner(-1).claimed());
  EXPECT_FALSE(FdOwner(detail::kMaxTrackedFd).claimed());
  EXPECT_FALSE(FdOwner().claimed());
}

TEST(FdOwnerTest, MovingKeepsOneClaim) {
  Pipe p;
  FdOwner a(p.r);
  FdOwner b(std::move(a));
  EXPECT_FALSE(a.claimed());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(b.claimed());
  const uint32_t e = detail::fd_epoch(p.r);
  a.release();
  EXPECT_EQ(detail::fd_epoch(p.r), e);
  b = FdOwner();
  EXPECT_EQ(detail::fd_epoch(p.r), e + 1);
}

TEST(FdOwnerTest, ListenersAreToldOnceBeforeReleaseReturns) {
  Pipe p;
  auto l1 = std::make_shared<CountingListener>();
  auto l2 = std::make_shared<CountingListener>();
  uint32_t epoch;
  {
    FdOwner owner(p.r);
    epoch = detail::fd_epoch(p.r);
    ASSERT_TRUE(detail::fd_listen(p.r, epoch, l1));
    ASSERT_TRUE(detail::fd_listen(p.r, epoch, l1)) << "listening twice is one listener";
    ASSERT_TRUE(detail::fd_listen(p.r, epoch, l2));
    EXPECT_EQ(l1->calls.load(), 0);
  }
  EXPECT_EQ(l1->calls.load(), 1);
  EXPECT_EQ(l2->calls.load(), 1);
  EXPECT_EQ(l1->last_fd.load(), p.r);
  EXPECT_EQ(l1->last_epoch.load(), epoch);
  // The next owner starts with no listeners.
  { FdOwner next(p.r); }
  EXPECT_EQ(l1->calls.load(), 1);
}

TEST(FdOwnerTest, ListeningToAReleasedOrUnclaimedFdIsRefused) {
  Pipe p;
  auto l = std::make_shared<CountingListener>();
  uint32_t epoch;
  {
    FdOwner owner(p.r);
    epoch = detail::fd_epoch(p.r);
  }
  EXPECT_FALSE(detail::fd_listen(p.r, epoch, l));
  EXPECT_FALSE(detail::fd_listen(p.r, detail::fd_epoch(p.r), l)) << "nobody owns it now";
  EXPECT_EQ(l->calls.load(), 0);
}

// Each round, one thread claims and releases while another listens at the
// claim's epoch: a listener either is refused or is told exactly once.
TEST(FdOwnerTest, ListenRacingReleaseIsToldExactlyOnceOrRefused) {
  Pipe p;
  constexpr int kRounds = 2000;
  int told = 0, refused = 0;
  for (int i = 0; i < kRounds; ++i) {
    auto l = std::make_shared<CountingListener>();
    auto owner = std::make_unique<FdOwner>(p.r);
    ASSERT_TRUE(owner->claimed());
    const uint32_t epoch = detail::fd_epoch(p.r);
    bool listened = false;
    std::thread t([&] { listened = detail::fd_listen(p.r, epoch, l); });
    owner.reset();
    t.join();
    if (listened) {
      EXPECT_EQ(l->calls.load(), 1) << "round " << i;
      ++told;
    } else {
      EXPECT_EQ(l->calls.load(), 0) << "round " << i;
      ++refused;
    }
  }
  EXPECT_EQ(told + refused, kRounds);
}

TEST(FdOwnerTest, ManyThreadsManyFds) {
  constexpr int kThreads = 4;
  std::vector<Pipe> pipes(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> calls{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto l = std::make_shared<CountingListener>();
      for (int i = 0; i < 2000; ++i) {
        FdOwner o(pipes[t].r);
        ASSERT_TRUE(o.claimed());
        ASSERT_TRUE(detail::fd_listen(pipes[t].r, detail::fd_epoch(pipes[t].r), l));
      }
      calls.fetch_add(l->calls.load());
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(calls.load(), kThreads * 2000);
}

}  // namespace
}  // namespace pollux::reactor
