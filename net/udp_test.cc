// Tests for UdpSocket (udp.h) on 127.0.0.1 and ::1: send_to/recv_from with
// the sender's address, a receive woken by a later send, truncation,
// connect/send/recv, address in use, errors naming the address, and the open
// fd count back to its start after each test's runtime is destroyed. The
// runtime is the flavour the BUILD target names (tests/flavour.h).
#include "net/udp.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "reactor/errno_status.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"

namespace pollux::net {
namespace {

using reactor::IoResult;

std::vector<char> bytes(const std::string& s) { return std::vector<char>(s.begin(), s.end()); }

bool has_ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  SocketAddr a = SocketAddr::ipv6_loopback(0);
  bool ok = ::bind(fd, a.as_sockaddr(), a.len()) == 0;
  ::close(fd);
  return ok;
}

class UdpTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !has_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback (::1) here";
    baseline_ = pollux::testing::open_fd_count();
    absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_.emplace(std::move(*rt));
  }
  void TearDown() override {
    if (!rt_) return;
    EXPECT_EQ(pollux::testing::live_ops(*rt_), 0u);
    rt_.reset();
    EXPECT_EQ(pollux::testing::open_fd_count(), baseline_) << "an fd leaked";
  }
  SocketAddr loopback() const {
    return GetParam() ? SocketAddr::ipv6_loopback(0) : SocketAddr::ipv4_loopback(0);
  }
  Runtime& rt() { return *rt_; }

  std::optional<Runtime> rt_;
  int baseline_ = 0;
  pollux::testing::Watchdog dog_{std::chrono::seconds(30), "udp test"};
};

TEST_P(UdpTest, SendToRecvFromReportsTheSender) {
  absl::StatusOr<UdpSocket> a = UdpSocket::bind(loopback());
  absl::StatusOr<UdpSocket> b = UdpSocket::bind(loopback());
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_NE(a->local_addr().port(), 0);
  EXPECT_EQ(a->local_addr().is_ipv6(), GetParam());
  rt().block_on([&]() -> Task<void> {
    for (int i = 0; i < 10; ++i) {
      std::string msg = absl::StrCat("datagram ", i);
      IoResult w = co_await a->send_to(bytes(msg), b->local_addr());
      EXPECT_TRUE(w.n.ok()) << w.n.status();
      EXPECT_EQ(w.n.value_or(0), msg.size());
      EXPECT_EQ(w.buf.size(), msg.size());
      RecvFromResult r = co_await b->recv_from(std::vector<char>(1500));
      EXPECT_TRUE(r.n.ok()) << r.n.status();
      EXPECT_EQ(r.buf.size(), 1500u);
      EXPECT_EQ(std::string(r.buf.data(), r.n.value_or(0)), msg);
      EXPECT_EQ(r.from, a->local_addr());
      EXPECT_FALSE(r.truncated);
    }
  }());
}

TEST_P(UdpTest, PendingRecvIsWokenByALaterSend) {
  absl::StatusOr<UdpSocket> a = UdpSocket::bind(loopback());
  absl::StatusOr<UdpSocket> b = UdpSocket::bind(loopback());
  ASSERT_TRUE(a.ok() && b.ok());
  std::string got;
  rt().block_on([&]() -> Task<void> {
    JoinHandle<void> sender = pollux::spawn([&]() -> Task<void> {
      co_await pollux::sleep(absl::Milliseconds(10));
      IoResult w = co_await a->send_to(bytes("late"), b->local_addr());
      EXPECT_TRUE(w.n.ok()) << w.n.status();
    });
    RecvFromResult r = co_await b->recv_from(std::vector<char>(64));
    if (r.n.ok()) got.assign(r.buf.data(), *r.n);
    EXPECT_TRUE((co_await sender).ok());
  }());
  EXPECT_EQ(got, "late");
}

TEST_P(UdpTest, LongDatagramIsTruncated) {
  absl::StatusOr<UdpSocket> a = UdpSocket::bind(loopback());
  absl::StatusOr<UdpSocket> b = UdpSocket::bind(loopback());
  ASSERT_TRUE(a.ok() && b.ok());
  RecvFromResult r = rt().block_on([&]() -> Task<RecvFromResult> {
    IoResult w = co_await a->send_to(bytes("0123456789"), b->local_addr());
    EXPECT_TRUE(w.n.ok());
    co_return co_await b->recv_from(std::vector<char>(4));
  }());
  ASSERT_TRUE(r.n.ok()) << r.n.status();
  EXPECT_EQ(*r.n, 4u);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(std::string(r.buf.data(), 4), "0123");
}

TEST_P(UdpTest, ConnectedSendAndRecv) {
  absl::StatusOr<UdpSocket> a = UdpSocket::bind(loopback());
  absl::StatusOr<UdpSocket> b = UdpSocket::bind(loopback());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->peer_addr().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(a->connect(b->local_addr()).ok());
  ASSERT_TRUE(b->connect(a->local_addr()).ok());
  EXPECT_EQ(*a->peer_addr(), b->local_addr());
  std::string got_b, got_a;
  rt().block_on([&]() -> Task<void> {
    IoResult w = co_await a->send(bytes("ping"));
    EXPECT_TRUE(w.n.ok()) << w.n.status();
    IoResult r = co_await b->recv(std::vector<char>(64));
    if (r.n.ok()) got_b.assign(r.buf.data(), *r.n);
    w = co_await b->send(bytes("pong"));
    EXPECT_TRUE(w.n.ok()) << w.n.status();
    r = co_await a->recv(std::vector<char>(64));
    if (r.n.ok()) got_a.assign(r.buf.data(), *r.n);
  }());
  EXPECT_EQ(got_b, "ping");
  EXPECT_EQ(got_a, "pong");
}

TEST_P(UdpTest, BindToAPortInUseIsAlreadyExists) {
  absl::StatusOr<UdpSocket> a = UdpSocket::bind(loopback());
  ASSERT_TRUE(a.ok());
  absl::StatusOr<UdpSocket> b = UdpSocket::bind(a->local_addr());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kAlreadyExists) << b.status();
  EXPECT_EQ(errno_of(b.status()), EADDRINUSE);
  EXPECT_NE(b.status().message().find(a->local_addr().to_string()), absl::string_view::npos)
      << b.status();
}

TEST_P(UdpTest, SendToTheWrongFamilyIsAnErrorNamingTheAddress) {
  absl::StatusOr<UdpSocket> a = UdpSocket::bind(loopback());
  ASSERT_TRUE(a.ok());
  // An IPv4 socket cannot send to an IPv6 address (and an IPv6 socket
  // refuses a too-short IPv4 sockaddr).
  const SocketAddr other =
      GetParam() ? SocketAddr::ipv4_loopback(9) : SocketAddr::ipv6_loopback(9);
  IoResult w = rt().block_on(a->send_to(bytes("x"), other));
  ASSERT_FALSE(w.n.ok());
  EXPECT_NE(w.n.status().message().find(absl::StrCat("send_to ", other.to_string())),
            absl::string_view::npos)
      << w.n.status();
  EXPECT_NE(errno_of(w.n.status()), 0) << w.n.status();
  EXPECT_EQ(w.buf.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Families, UdpTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "Ipv6" : "Ipv4";
                         });

}  // namespace
}  // namespace pollux::net
