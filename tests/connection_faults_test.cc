// Connections that fail under a server (issue 16), on both backends and
// every flavour (cc_test_every_flavour), with real sockets on 127.0.0.1:
//   - ECONNRESET mid-write: the peer reads a little of a 32 MiB write_all,
//     then closes with SO_LINGER {1, 0} (an RST) while the rest is in
//     flight;
//   - EPIPE: a write after this end's own shutdown_write, and writes after
//     the peer closed, with SIGPIPE at its default action (which kills the
//     process): every send carries MSG_NOSIGNAL;
//   - a peer that vanishes (RST) with data in flight both ways: a write_all
//     of more than the peer reads in one task (split halves) and, in
//     another, reads of the same socket, which also holds bytes the server
//     never read; the reset reaches one of them as ECONNRESET (the kernel
//     reports it once), the write fails, the reads end.
// Each ends with a clear absl::Status (code, errno, and the peer's address
// in the message), leaves no op slot live (tests/flavour.h live_ops) and no
// fd open once the runtime is gone (tests/fd_count.h), and the runtime
// still serves an echo round trip afterwards.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "future/join.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "reactor/errno_status.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/sanitizers.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"

namespace pollux {
namespace {

using net::SocketAddr;
using net::TcpListener;
using net::TcpStream;
using net::WriteAllResult;
using reactor::IoResult;

constexpr size_t kBig = 32u << 20;  // more than any loopback socket buffers hold
constexpr std::string_view kHello = "hello after the fault";

Task<std::pair<TcpStream, TcpStream>> connected_pair(TcpListener& l) {
  auto [a, c] = co_await join(l.accept(), TcpStream::connect(l.local_addr()));
  POLLUX_CHECK(a.ok() && c.ok(), "connected_pair");
  co_return std::make_pair(std::move(*c), std::move(a->first));
}

// Sets SO_LINGER {1, 0}: closing then sends an RST, not a FIN.
void linger_zero(const TcpStream& s) {
  linger lg{1, 0};
  EXPECT_EQ(::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
}

bool is_peer_gone(const absl::Status& s) {
  const int e = errno_of(s);
  return e == ECONNRESET || e == EPIPE;
}

class ConnectionFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    // Default action: a SIGPIPE would end the test binary.
    old_sigpipe_ = ::signal(SIGPIPE, SIG_DFL);
    baseline_ = testing::open_fd_count();
    absl::StatusOr<Runtime> rt = testing::runtime_builder().enable_all().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_.emplace(std::move(*rt));
    absl::StatusOr<TcpListener> l = TcpListener::bind(SocketAddr::ipv4_loopback(0));
    ASSERT_TRUE(l.ok()) << l.status();
    listener_.emplace(std::move(*l));
  }
  void TearDown() override {
    if (rt_) {
      // The runtime still works: a fresh connection echoes.
      EXPECT_TRUE(rt_->block_on(round_trip(*listener_)).ok());
      // Cancels of ops dropped at the end of the last block_on may still be
      // in the kernel: let them come back before counting.
      for (int i = 0; i < 200 && testing::live_ops(*rt_) > 0; ++i) {
        rt_->block_on(sleep(absl::Milliseconds(1)));
      }
      EXPECT_EQ(testing::live_ops(*rt_), 0u) << "an op slot is still live";
    }
    listener_.reset();
    rt_.reset();
    // TSan's symbolizer may hold an fd of its own (tests/sanitizers.h).
    const int now = testing::open_fd_count();
    if (testing::kUnderTsan) {
      EXPECT_LE(now, baseline_ + 1) << "an fd leaked";
    } else {
      EXPECT_EQ(now, baseline_) << "an fd leaked";
    }
    ::signal(SIGPIPE, old_sigpipe_);
  }

  static Task<absl::Status> round_trip(TcpListener& l) {
    auto [client, server] = co_await connected_pair(l);
    std::vector<char> msg(kHello.begin(), kHello.end());
    WriteAllResult w = co_await client.write_all(std::move(msg));
    if (!w.status.ok()) co_return w.status;
    absl::StatusOr<std::vector<char>> got = co_await server.read_exact(kHello.size());
    if (!got.ok()) co_return got.status();
    WriteAllResult back = co_await server.write_all(std::move(*got));
    if (!back.status.ok()) co_return back.status;
    absl::StatusOr<std::vector<char>> echoed = co_await client.read_exact(kHello.size());
    if (!echoed.ok()) co_return echoed.status();
    if (std::string_view(echoed->data(), echoed->size()) != kHello) {
      co_return absl::DataLossError("the echo came back different");
    }
    co_return absl::OkStatus();
  }

  std::optional<Runtime> rt_;
  std::optional<TcpListener> listener_;
  int baseline_ = 0;
  void (*old_sigpipe_)(int) = SIG_DFL;
  testing::Watchdog dog_{std::chrono::seconds(90), "connection faults test"};
};

TEST_F(ConnectionFaults, PeerResetMidWriteAllIsAbortedEconnresetWithTheBytesSoFar) {
  WriteAllResult w;
  size_t peer_read = 0;
  std::string peer;
  rt_->block_on([&]() -> Task<void> {
    auto [client, server] = co_await connected_pair(*listener_);
    peer = server.peer_addr().to_string();
    JoinHandle<WriteAllResult> writer = pollux::spawn(
        [](TcpStream s) -> Task<WriteAllResult> {
          co_return co_await s.write_all(std::vector<char>(kBig, 'x'));
        }(std::move(server)));
    // Read some of it (the write is surely in flight), then vanish.
    while (peer_read < (256u << 10)) {
      IoResult r = co_await client.read(std::vector<char>(64u << 10));
      if (!r.n.ok() || *r.n == 0) break;
      peer_read += *r.n;
    }
    EXPECT_FALSE(writer.is_finished()) << "32 MiB fit in the socket buffers";
    linger_zero(client);
    { TcpStream gone = std::move(client); }  // RST
    JoinResult<WriteAllResult> r = co_await writer;
    EXPECT_TRUE(r.ok());
    if (r.ok()) w = std::move(r.value());
  }());
  ASSERT_FALSE(w.status.ok()) << "a write_all to a reset peer succeeded";
  EXPECT_TRUE(is_peer_gone(w.status)) << w.status;
  if (errno_of(w.status) == ECONNRESET) {
    EXPECT_EQ(w.status.code(), absl::StatusCode::kAborted) << w.status;
  }
  EXPECT_NE(w.status.message().find(absl::StrCat("write to ", peer)), absl::string_view::npos)
      << "the message names the peer: " << w.status;
  EXPECT_EQ(w.buf.size(), kBig) << "the buffer comes back";
  EXPECT_GE(w.written, peer_read) << "what the peer read was written";
  EXPECT_LT(w.written, kBig);
}

TEST_F(ConnectionFaults, WriteAfterOwnShutdownIsEpipeAndNoSigpipe) {
  absl::Status write_err, write_all_err;
  rt_->block_on([&]() -> Task<void> {
    auto [client, server] = co_await connected_pair(*listener_);
    EXPECT_TRUE(server.shutdown_write().ok());
    IoResult r = co_await server.write(std::vector<char>(100, 'y'));
    EXPECT_EQ(r.buf.size(), 100u);
    if (!r.n.ok()) write_err = r.n.status();
    WriteAllResult w = co_await server.write_all(std::vector<char>(1u << 20, 'z'));
    write_all_err = w.status;
    EXPECT_EQ(w.written, 0u);
    // Reading still works: the client's bytes arrive.
    std::vector<char> msg(kHello.begin(), kHello.end());
    EXPECT_TRUE((co_await client.write_all(std::move(msg))).status.ok());
    absl::StatusOr<std::vector<char>> got = co_await server.read_exact(kHello.size());
    EXPECT_TRUE(got.ok()) << got.status();
    // And the client sees end of stream, not the refused bytes.
    IoResult eof = co_await client.read(std::vector<char>(16));
    EXPECT_TRUE(eof.n.ok() && *eof.n == 0);
  }());
  EXPECT_EQ(errno_of(write_err), EPIPE) << write_err;
  EXPECT_EQ(write_err.code(), absl::StatusCode::kFailedPrecondition) << write_err;
  EXPECT_EQ(errno_of(write_all_err), EPIPE) << write_all_err;
}

TEST_F(ConnectionFaults, WritesAfterThePeerClosedEndInEpipeOrEconnresetNoSigpipe) {
  absl::Status err;
  int writes = 0;
  rt_->block_on([&]() -> Task<void> {
    auto [client, server] = co_await connected_pair(*listener_);
    { TcpStream gone = std::move(client); }  // a FIN; our next write draws an RST
    for (; writes < 200 && err.ok(); ++writes) {
      WriteAllResult w = co_await server.write_all(std::vector<char>(4096, 'w'));
      if (!w.status.ok()) err = w.status;
      co_await sleep(absl::Milliseconds(1));  // let the RST arrive
    }
  }());
  ASSERT_FALSE(err.ok()) << "writes to a closed peer kept succeeding";
  EXPECT_TRUE(is_peer_gone(err)) << err;
  EXPECT_LT(writes, 200);
}

TEST_F(ConnectionFaults, PeerVanishingWithDataInFlightBothWaysFailsTheReadAndTheWrite) {
  IoResult read_result;
  WriteAllResult write_result;
  rt_->block_on([&]() -> Task<void> {
    auto [client, server] = co_await connected_pair(*listener_);
    // The client sends bytes the server never reads (they sit in the
    // server's receive queue) and the server sends more than the client
    // reads; then the client resets.
    EXPECT_TRUE((co_await client.write_all(std::vector<char>(8192, 'c'))).status.ok());
    auto [rd, wr] = std::move(server).split();
    JoinHandle<WriteAllResult> writer = pollux::spawn(
        [](net::WriteHalf w) -> Task<WriteAllResult> {
          co_return co_await w.write_all(std::vector<char>(kBig, 's'));
        }(std::move(wr)));
    co_await sleep(absl::Milliseconds(20));  // the write fills the buffers and waits
    EXPECT_FALSE(writer.is_finished());
    linger_zero(client);
    { TcpStream gone = std::move(client); }
    // A read after the reset: the unread bytes are discarded by the RST,
    // and the read reports it.
    for (int i = 0; i < 10; ++i) {
      read_result = co_await rd.read(std::vector<char>(64u << 10));
      if (!read_result.n.ok() || *read_result.n == 0) break;
    }
    JoinResult<WriteAllResult> r = co_await writer;
    EXPECT_TRUE(r.ok());
    if (r.ok()) write_result = std::move(r.value());
  }());
  // The kernel reports a reset once (sock_error() takes sk_err): whichever
  // of the two ops asks first gets ECONNRESET, the write after it EPIPE and
  // the read after it end of stream (io_uring's send usually wins, epoll's
  // read). Ten reads of 64 KiB get past the 8 KiB a read may still find.
  const bool read_reset = !read_result.n.ok();
  if (read_reset) {
    EXPECT_EQ(errno_of(read_result.n.status()), ECONNRESET) << read_result.n.status();
    EXPECT_EQ(read_result.n.status().code(), absl::StatusCode::kAborted);
  } else {
    EXPECT_EQ(*read_result.n, 0u) << "the reads never ended";
  }
  ASSERT_FALSE(write_result.status.ok()) << "a write_all to a reset peer succeeded";
  EXPECT_TRUE(is_peer_gone(write_result.status)) << write_result.status;
  EXPECT_TRUE(read_reset || errno_of(write_result.status) == ECONNRESET)
      << "nobody saw the reset: " << write_result.status;
  EXPECT_LT(write_result.written, kBig);
}

}  // namespace
}  // namespace pollux
