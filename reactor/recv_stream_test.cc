// Tests for RecvStream on both backends (the _epoll target runs them on the
// fallback): every byte arrives once and in order, the end of the stream is
// an empty lease, a dropped next() loses nothing, and dropping the stream
// with arrivals queued and leases outstanding leaves no op slot behind. On
// io_uring they also check that one submission serves the whole stream.
#include "reactor/recv_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace pollux::reactor {
namespace {

// A connected TCP pair on 127.0.0.1: {client (blocking), server (non-blocking)}.
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

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    ASSERT_GT(w, 0);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  EXPECT_TRUE(rt.ok()) << rt.status();
  return std::move(*rt);
}

bool on_uring(Runtime& rt) { return std::string(rt.io_backend()->name()) == "io_uring"; }

// Ticks until no op slot is live (bounded); returns the slots still live.
size_t settle(Runtime& rt) {
  for (int i = 0; i < 200 && rt.io_backend()->live_ops() != 0; ++i) {
    rt.block_on(sleep(absl::Milliseconds(1)));
  }
  return rt.io_backend()->live_ops();
}

TEST(RecvStreamTest, EveryByteArrivesOnceInOrderThenAnEmptyLeaseForTheEnd) {
  Runtime rt = make_runtime();
  auto conn = tcp_pair();
  OwnedFd& client = conn.first;
  OwnedFd& server = conn.second;
  const std::string sent = pattern(64 * 1000);
  // 64 messages with pauses, so that the stream sees many arrivals.
  std::thread writer([&, fd = client.get()] {
    for (int i = 0; i < 64; ++i) {
      write_all(fd, sent.data() + i * 1000, 1000);
      if (i % 4 == 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ::shutdown(fd, SHUT_WR);
  });
  const BackendStats before = rt.io_backend()->stats();
  struct Out {
    std::string got;
    int arrivals = 0;
    bool multishot = false;
    bool end_again = false;
  };
  Out out = rt.block_on([&]() -> Task<Out> {
    Out o;
    RecvStream in(server.get());
    for (int i = 0; i < 100000; ++i) {
      absl::StatusOr<RecvBuf> b = co_await in.next();
      EXPECT_TRUE(b.ok()) << b.status();
      if (!b.ok() || b->empty()) break;
      EXPECT_LE(b->size(), kRecvStreamFallbackBytes);
      o.got.append(b->data(), b->size());
      ++o.arrivals;
    }
    o.multishot = in.multishot();
    absl::StatusOr<RecvBuf> again = co_await in.next();
    o.end_again = again.ok() && again->empty();
    co_return o;
  }());
  writer.join();
  EXPECT_EQ(out.got.size(), sent.size());
  EXPECT_TRUE(out.got == sent) << "bytes lost, duplicated or reordered";
  EXPECT_TRUE(out.end_again) << "next() after the end must say the end again";
  const BackendStats after = rt.io_backend()->stats();
  EXPECT_EQ(out.multishot, on_uring(rt));
  if (on_uring(rt)) {
    // One multishot recv for the whole stream (a re-arm after the kernel
    // ends it on its own is rare, and -ENOBUFS re-arms are no new op).
    EXPECT_LE(after.ops_submitted - before.ops_submitted, 3u);
    EXPECT_GT(out.arrivals, 3);
  }
  EXPECT_EQ(settle(rt), 0u);
  const BackendStats done = rt.io_backend()->stats();
  EXPECT_EQ(done.ops_submitted, done.ops_completed + done.ops_cancelled);
}

TEST(RecvStreamTest, ADroppedNextLosesNothing) {
  Runtime rt = make_runtime();
  auto conn = tcp_pair();
  OwnedFd& client = conn.first;
  OwnedFd& server = conn.second;
  std::string got = rt.block_on([&, fd = client.get()]() -> Task<std::string> {
    RecvStream in(server.get());
    // Nothing sent yet: the next() times out and is dropped.
    auto bounded = pollux::timeout(in.next(), absl::Milliseconds(20));
    auto early = co_await std::move(bounded);
    EXPECT_FALSE(early.ok());
    const std::string msg = "after the drop";
    write_all(fd, msg.data(), msg.size());
    absl::StatusOr<RecvBuf> b = co_await in.next();
    EXPECT_TRUE(b.ok()) << b.status();
    co_return b.ok() ? std::string(b->view()) : std::string();
  }());
  EXPECT_EQ(got, "after the drop");
  EXPECT_EQ(settle(rt), 0u);
}

TEST(RecvStreamTest, DroppingTheStreamWithArrivalsQueuedAndALeaseOutFreesEverything) {
  Runtime rt = make_runtime();
  auto conn = tcp_pair();
  OwnedFd& client = conn.first;
  OwnedFd& server = conn.second;
  std::string kept = rt.block_on([&, fd = client.get()]() -> Task<std::string> {
    RecvBuf lease;
    {
      RecvStream in(server.get());
      const std::string first = "first";
      write_all(fd, first.data(), first.size());
      absl::StatusOr<RecvBuf> b = co_await in.next();
      EXPECT_TRUE(b.ok()) << b.status();
      if (b.ok()) lease = std::move(*b);
      // More arrives and (io_uring) is queued in the stream, unread.
      for (int i = 0; i < 3; ++i) {
        const std::string more = "more";
        write_all(fd, more.data(), more.size());
        co_await sleep(absl::Milliseconds(5));
      }
    }  // the stream is dropped: its multishot is cancelled
    co_await sleep(absl::Milliseconds(5));
    // The lease outlives its stream and still holds its bytes.
    co_return std::string(lease.view());
  }());
  EXPECT_EQ(kept, "first");
  EXPECT_EQ(settle(rt), 0u);
  const BackendStats s = rt.io_backend()->stats();
  EXPECT_EQ(s.ops_submitted, s.ops_completed + s.ops_cancelled);
}

TEST(RecvStreamTest, AResetConnectionIsAnErrorNamingTheRecv) {
  Runtime rt = make_runtime();
  auto conn = tcp_pair();
  OwnedFd& client = conn.first;
  OwnedFd& server = conn.second;
  // SO_LINGER 0: close sends a RST.
  linger lg{1, 0};
  ASSERT_EQ(::setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  client.reset();
  absl::Status st = rt.block_on([&]() -> Task<absl::Status> {
    RecvStream in(server.get());
    absl::StatusOr<RecvBuf> b = co_await in.next();
    co_return b.status();
  }());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("recv from fd"), std::string::npos) << st;
  EXPECT_EQ(settle(rt), 0u);
}

}  // namespace
}  // namespace pollux::reactor
