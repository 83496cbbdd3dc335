// Tests for the io_uring multishot recv and its provided-buffer ring: a ring
// that runs dry stops the stream without an error and without losing or
// reordering a byte (-ENOBUFS re-arms once a lease comes back); a cancel
// with arrivals queued puts their buffers back; every buffer is back in the
// ring at the end; a lease that outlives its runtime is a CHECK failure.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "reactor/recv_stream.h"
#include "reactor/uring/io_uring_backend.h"
#include "runtime/runtime.h"
#include "timer/sleep.h"

namespace pollux::reactor {
namespace {

std::pair<OwnedFd, OwnedFd> tcp_pair() {
  OwnedFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(l.get(), 4), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::getsockname(l.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  OwnedFd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  OwnedFd s(::accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  EXPECT_TRUE(s.valid());
  return {std::move(c), std::move(s)};
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// A current_thread io_uring runtime with a ring of `n` buffers of `bytes`.
Runtime make_runtime(unsigned n, unsigned bytes, unsigned queued_max = 16) {
  IoUringOptions o;
  o.recv_buffers = n;
  o.recv_buffer_bytes = bytes;
  o.recv_queued_max = queued_max;
  absl::StatusOr<Runtime> rt = Runtime::Builder()
                                   .current_thread()
                                   .enable_all()
                                   .backend(BackendKind::kIoUring)
                                   .io_uring_options(o)
                                   .build();
  EXPECT_TRUE(rt.ok()) << rt.status();
  return std::move(*rt);
}

IoUringBackend& uring_of(Runtime& rt) {
  auto* b = dynamic_cast<IoUringBackend*>(rt.io_backend());
  EXPECT_NE(b, nullptr);
  return *b;
}

size_t settle(Runtime& rt) {
  for (int i = 0; i < 200 && rt.io_backend()->live_ops() != 0; ++i) {
    rt.block_on(sleep(absl::Milliseconds(1)));
  }
  return rt.io_backend()->live_ops();
}

TEST(RecvMultiTest, ADryRingStopsTheStreamUntilALeaseComesBackAndLosesNothing) {
  Runtime rt = make_runtime(4, 64);
  IoUringBackend& b = uring_of(rt);
  auto conn = tcp_pair();
  const std::string sent = pattern(4096);  // 64 buffers' worth, in the socket at once
  ASSERT_EQ(::write(conn.first.get(), sent.data(), sent.size()),
            static_cast<ssize_t>(sent.size()));
  ::shutdown(conn.first.get(), SHUT_WR);
  struct Out {
    std::string got;
    unsigned in_ring_when_dry = 99;
    size_t queued_when_dry = 99;
    bool ok = true;
  };
  Out out = rt.block_on([&]() -> Task<Out> {
    Out o;
    RecvStream in(conn.second.get());
    std::vector<RecvBuf> held;
    // Hold every lease the ring can give: 4.
    for (int i = 0; i < 4; ++i) {
      absl::StatusOr<RecvBuf> r = co_await in.next();
      if (!r.ok() || r->empty()) {
        o.ok = false;
        co_return o;
      }
      EXPECT_LE(r->size(), 64u);
      held.push_back(std::move(*r));
    }
    // The ring is dry: the multishot ended with -ENOBUFS, which the stream
    // does not see; nothing more arrives however long we wait.
    co_await sleep(absl::Milliseconds(20));
    o.in_ring_when_dry = b.recv_buffers_in_ring();
    o.queued_when_dry = in.queued();
    for (RecvBuf& h : held) o.got.append(h.data(), h.size());
    held.clear();  // back to the ring: the multishot is armed again
    for (int i = 0; i < 10000; ++i) {
      absl::StatusOr<RecvBuf> r = co_await in.next();
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        o.ok = false;
        break;
      }
      if (r->empty()) break;
      o.got.append(r->data(), r->size());
    }
    co_return o;
  }());
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.in_ring_when_dry, 0u);
  EXPECT_EQ(out.queued_when_dry, 0u);
  EXPECT_EQ(out.got.size(), sent.size());
  EXPECT_TRUE(out.got == sent) << "bytes lost, duplicated or reordered across -ENOBUFS";
  EXPECT_EQ(settle(rt), 0u);
  EXPECT_EQ(b.recv_buffers_in_ring(), 4u);
  EXPECT_EQ(b.recv_buffers_leased(), 0u);
  const BackendStats s = b.stats();
  EXPECT_EQ(s.ops_submitted, s.ops_completed + s.ops_cancelled);
}

TEST(RecvMultiTest, AStreamNobodyReadsStopsTakingBuffersAndResumesWithoutLoss) {
  Runtime rt = make_runtime(64, 64, /*queued_max=*/4);
  IoUringBackend& b = uring_of(rt);
  auto conn = tcp_pair();
  const std::string sent = pattern(64 * 64);
  // 64 chunks of one buffer each, 1 ms apart: each arrives on its own.
  std::atomic<bool> written{false};
  std::thread writer([&, fd = conn.first.get()] {
    for (int i = 0; i < 64; ++i) {
      EXPECT_EQ(::write(fd, sent.data() + i * 64, 64), 64);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ::shutdown(fd, SHUT_WR);
    written.store(true);  // seq_cst; partner: the reader's load below
  });
  struct Out {
    size_t queued = 0;
    unsigned in_ring = 0;
    std::string got;
  };
  Out out = rt.block_on([&]() -> Task<Out> {
    Out o;
    RecvStream in(conn.second.get());
    absl::StatusOr<RecvBuf> first = co_await in.next();  // arms it
    EXPECT_TRUE(first.ok() && !first->empty());
    if (first.ok()) o.got.append(first->data(), first->size());
    // Not reading while the rest arrives: the multishot pauses at 4 queued.
    for (int i = 0; i < 500 && !written.load(); ++i) co_await sleep(absl::Milliseconds(10));
    co_await sleep(absl::Milliseconds(30));
    o.queued = in.queued();
    o.in_ring = b.recv_buffers_in_ring();
    for (int i = 0; i < 10000; ++i) {
      absl::StatusOr<RecvBuf> r = co_await in.next();
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        break;
      }
      if (r->empty()) break;
      o.got.append(r->data(), r->size());
    }
    co_return o;
  }());
  writer.join();
  // A few may land before the pause's cancel does; never the whole ring.
  EXPECT_GE(out.queued, 4u);
  EXPECT_LE(out.queued, 12u);
  EXPECT_GE(out.in_ring, 64u - 1 - 12);  // the first lease is still held then
  EXPECT_TRUE(out.got == sent) << "bytes lost or reordered across a pause (" << out.got.size()
                               << " of " << sent.size() << ")";
  EXPECT_EQ(settle(rt), 0u);
  EXPECT_EQ(b.recv_buffers_in_ring(), 64u);
}

TEST(RecvMultiTest, CancellingWithArrivalsQueuedPutsTheirBuffersBack) {
  Runtime rt = make_runtime(8, 64);
  IoUringBackend& b = uring_of(rt);
  auto conn = tcp_pair();
  const std::string sent = pattern(256);  // 4 buffers' worth
  struct Out {
    size_t queued = 0;
    unsigned leased_after_drop = 99;
    std::string lease;
  };
  Out out = rt.block_on([&]() -> Task<Out> {
    Out o;
    RecvBuf keep;
    {
      RecvStream in(conn.second.get());
      EXPECT_EQ(::write(conn.first.get(), sent.data(), sent.size()),
                static_cast<ssize_t>(sent.size()));
      absl::StatusOr<RecvBuf> r = co_await in.next();
      EXPECT_TRUE(r.ok() && !r->empty());
      if (r.ok()) keep = std::move(*r);
      co_await sleep(absl::Milliseconds(10));
      o.queued = in.queued();
    }
    co_await sleep(absl::Milliseconds(5));
    o.leased_after_drop = b.recv_buffers_leased();
    o.lease = std::string(keep.view());
    co_return o;
  }());
  EXPECT_GT(out.queued, 0u) << "the test needs arrivals queued when the stream is dropped";
  EXPECT_EQ(out.leased_after_drop, 1u);
  EXPECT_EQ(out.lease, sent.substr(0, out.lease.size()));
  EXPECT_EQ(settle(rt), 0u);
  // The queued ones went back with the cancel, the lease when it was dropped.
  EXPECT_EQ(b.recv_buffers_in_ring(), 8u);
  EXPECT_EQ(b.recv_buffers_leased(), 0u);
}

TEST(RecvMultiTest, ManyConnectionsShareOneRing) {
  Runtime rt = make_runtime(4, 64);
  IoUringBackend& b = uring_of(rt);
  constexpr int kConns = 6;  // more connections than buffers
  std::vector<std::pair<OwnedFd, OwnedFd>> conns;
  const std::string sent = pattern(1000);
  for (int i = 0; i < kConns; ++i) {
    conns.push_back(tcp_pair());
    ASSERT_EQ(::write(conns.back().first.get(), sent.data(), sent.size()),
              static_cast<ssize_t>(sent.size()));
    ::shutdown(conns.back().first.get(), SHUT_WR);
  }
  // A task per connection, each holding one lease at a time: every stream
  // keeps finding the ring dry and waiting for the others' returns.
  std::vector<std::string> got = rt.block_on([&]() -> Task<std::vector<std::string>> {
    std::vector<JoinHandle<std::string>> tasks;
    for (auto& c : conns) {
      const int fd = c.second.get();
      tasks.push_back(pollux::spawn([](int fd) -> Task<std::string> {
        std::string all;
        RecvStream in(fd);
        for (int i = 0; i < 10000; ++i) {
          absl::StatusOr<RecvBuf> r = co_await in.next();
          if (!r.ok()) {
            ADD_FAILURE() << r.status();
            break;
          }
          if (r->empty()) break;
          all.append(r->data(), r->size());
        }
        co_return all;
      }(fd)));
    }
    std::vector<std::string> all;
    for (JoinHandle<std::string>& h : tasks) {
      JoinResult<std::string> r = co_await h;
      all.push_back(r.ok() ? std::move(r.value()) : std::string("<task failed>"));
    }
    co_return all;
  }());
  for (int i = 0; i < kConns; ++i) EXPECT_TRUE(got[i] == sent) << "connection " << i;
  EXPECT_EQ(settle(rt), 0u);
  EXPECT_EQ(b.recv_buffers_in_ring(), 4u);
}

TEST(RecvMultiDeathTest, ALeaseThatOutlivesItsRuntimeIsACheckFailure) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        RecvBuf keep;
        {
          Runtime rt = make_runtime(4, 64);
          auto conn = tcp_pair();
          (void)::write(conn.first.get(), "x", 1);
          keep = rt.block_on([&]() -> Task<RecvBuf> {
            RecvStream in(conn.second.get());
            absl::StatusOr<RecvBuf> r = co_await in.next();
            co_return r.ok() ? std::move(*r) : RecvBuf();
          }());
        }
      },
      "RecvBuf outlived");
}

}  // namespace
}  // namespace pollux::reactor
