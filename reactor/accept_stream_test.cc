// Tests for AcceptStream (multishot accept): every connection arrives exactly
// once, one SQE serves many connections, and dropping the stream with
// connections still queued (or still arriving) leaks no fd.
#include "reactor/accept_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"

namespace pollux::reactor {
namespace {

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
OwnedFd listen_loopback(sockaddr_in* addr) {
  OwnedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid());
  *addr = {};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(addr), sizeof(*addr)), 0);
  EXPECT_EQ(::listen(fd.get(), 128), 0);
  socklen_t len = sizeof(*addr);
  EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(addr), &len), 0);
  return fd;
}

// A blocking client connect (the kernel completes it from the backlog).
OwnedFd connect_blocking(const sockaddr_in& addr) {
  OwnedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  EXPECT_TRUE(rt.ok()) << rt.status();
  return std::move(*rt);
}

TEST(AcceptStreamTest, EveryConnectionArrivesOnceFromOneArmedAccept) {
  const int fds_before = pollux::testing::open_fd_count();
  {
    Runtime rt = make_runtime();
    sockaddr_in addr;
    OwnedFd listener = listen_loopback(&addr);
    constexpr int kClients = 20;
    std::vector<OwnedFd> clients;
    for (int i = 0; i < kClients; ++i) clients.push_back(connect_blocking(addr));

    std::vector<int> peer_ports = rt.block_on([&]() -> Task<std::vector<int>> {
      AcceptStream incoming(listener.get());
      std::vector<int> ports;
      for (int i = 0; i < kClients; ++i) {
        absl::StatusOr<OwnedFd> conn = co_await incoming.next();
        EXPECT_TRUE(conn.ok()) << conn.status();
        sockaddr_in peer{};
        socklen_t len = sizeof(peer);
        ::getpeername(conn->get(), reinterpret_cast<sockaddr*>(&peer), &len);
        ports.push_back(ntohs(peer.sin_port));
      }
      co_return ports;
    }());
    // Each client's local port shows up exactly once among the accepted peers.
    std::vector<int> expected;
    for (const OwnedFd& c : clients) {
      sockaddr_in local{};
      socklen_t len = sizeof(local);
      ::getsockname(c.get(), reinterpret_cast<sockaddr*>(&local), &len);
      expected.push_back(ntohs(local.sin_port));
    }
    std::sort(expected.begin(), expected.end());
    std::sort(peer_ports.begin(), peer_ports.end());
    EXPECT_EQ(peer_ports, expected);
    // The stream was dropped at the end of the coroutine: once its cancel
    // completes, its slot is free.
    EXPECT_TRUE(rt.block_on(reactor::nop()).ok());
    EXPECT_EQ(rt.io_backend()->live_ops(), 0u);
  }
  EXPECT_EQ(pollux::testing::open_fd_count(), fds_before);
}

TEST(AcceptStreamTest, DroppingTheStreamClosesQueuedAndLateConnections) {
  const int fds_before = pollux::testing::open_fd_count();
  {
    Runtime rt = make_runtime();
    sockaddr_in addr;
    OwnedFd listener = listen_loopback(&addr);
    std::vector<OwnedFd> clients;
    clients.push_back(connect_blocking(addr));
    size_t queued = rt.block_on([&]() -> Task<size_t> {
      AcceptStream incoming(listener.get());
      absl::StatusOr<OwnedFd> first = co_await incoming.next();
      EXPECT_TRUE(first.ok());
      // More connections arrive while nobody asks for them.
      for (int i = 0; i < 5; ++i) clients.push_back(connect_blocking(addr));
      for (int i = 0; i < 20 && incoming.queued() < 5; ++i) {
        EXPECT_TRUE((co_await reactor::nop()).ok());  // lets the driver reap
      }
      co_return incoming.queued();  // the stream is dropped here with them queued
    }());
    if (std::string(rt.io_backend()->name()) == "epoll") {
      // epoll accepts only inside next(): nobody asked, so the five wait in
      // the listener's backlog (a dropped stream has had no effect on them)
      // and close with the listener.
      EXPECT_EQ(queued, 0u);
    } else {
      EXPECT_EQ(queued, 5u);  // io_uring's multishot accept took them all
    }
    // Let the cancel's completion arrive, then the slot is free.
    EXPECT_TRUE(rt.block_on(reactor::nop()).ok());
    EXPECT_EQ(rt.io_backend()->live_ops(), 0u);
  }
  EXPECT_EQ(pollux::testing::open_fd_count(), fds_before);
}

TEST(AcceptStreamTest, OutsideARuntimeIsAClearError) {
  LocalExecutor ex;
  AcceptStream incoming(0);
  absl::StatusOr<OwnedFd> r = ex.block_on(incoming.next());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("enable_io"), absl::string_view::npos);
}

}  // namespace
}  // namespace pollux::reactor
