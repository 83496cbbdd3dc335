// Abuse tests for the example servers' limits (issue 16; http_service.h,
// echo_service.h ServeOptions), on real sockets on 127.0.0.1 with the
// client and the server on one runtime. Each abuse is followed by the same
// health check: a normal request is still answered byte for byte, the
// process's open fds settle back to what they were with only the listener
// open (every server-side socket of the abuse was closed), and the resident
// set grew by less than a bound (no per-connection memory kept).
//
// Abuses: 10,000 connections opened and closed in waves of 500, half with
// an RST (SO_LINGER 0), each with a request or half a request in flight;
// 500 slowloris connections (one header byte every 50 ms) closed by the
// header timeout; connections that send nothing (header timeout) or go
// quiet after a response (idle timeout); 2,000 pipelined requests in one
// write answered in order; binary garbage -> 400 and close; a 1 MiB head
// with no end -> 431; clients that pipeline without reading (output
// backpressure, then the write timeout); clients closing mid-response; the
// echo server's idle and write timeouts. Counts shrink under sanitizers.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/echo_service.h"
#include "examples/http_service.h"
#include "examples/http_wire.h"
#include "examples/testing/server_test.h"
#include "executor/join_handle.h"
#include "future/join.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "tests/fd_count.h"
#include "tests/rlimit.h"
#include "tests/sanitizers.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace pollux::examples {
namespace {

using net::SocketAddr;
using net::TcpStream;

#if defined(POLLUX_SANITIZER)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Small limits, so the timeouts fire within the test's time.
ServeOptions test_options() {
  ServeOptions o;
  o.header_timeout = absl::Milliseconds(500);
  o.idle_timeout = absl::Milliseconds(400);
  o.write_timeout = absl::Milliseconds(500);
  o.grace = absl::Seconds(1);
  return o;
}

std::vector<char> bytes(std::string_view s) { return std::vector<char>(s.begin(), s.end()); }

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out.append(s);
  return out;
}

// Bytes from a xorshift generator (fixed seed: the same garbage every run).
std::vector<char> garbage(size_t n, uint32_t seed) {
  std::vector<char> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return v;
}

// Resident set size of this process in bytes (/proc/self/statm).
uint64_t rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (got != 2) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// What the resident set may grow by during one abuse: far below what
// keeping a connection's buffers (16 KiB read buffer, responses) for each
// abusive connection would cost, above allocator and sanitizer noise.
constexpr uint64_t kRssGrowthBound = (kSanitized ? 192 : 48) << 20;

// Waits (bounded: 10 s) until the process has `expected` fds open (the
// server closes its side of a connection when it sees the close, an RST or
// a timeout). Output: the count last seen.
Task<int> settle_fd_count(int expected) {
  int now = pollux::testing::open_fd_count();
  for (int i = 0; i < 1000 && now != expected; ++i) {
    co_await pollux::sleep(absl::Milliseconds(10));
    now = pollux::testing::open_fd_count();
  }
  co_return now;
}

// The health check after an abuse (see the header comment).
Task<void> expect_healthy(SocketAddr addr, int fds_with_listener, uint64_t rss_before,
                          std::string_view after) {
  std::optional<TcpStream> stream = co_await connect_to(addr);
  if (!stream) co_return;
  absl::StatusOr<std::string> r = co_await http::http_get(*stream, 1);
  EXPECT_TRUE(r.ok() && *r == http::kHelloResponse)
      << "after " << after << ": " << (r.ok() ? *r : r.status().ToString());
  stream.reset();
  EXPECT_EQ(co_await settle_fd_count(fds_with_listener), fds_with_listener)
      << "after " << after << ": server-side sockets still open";
  const uint64_t rss = rss_bytes();
  EXPECT_LT(rss, rss_before + kRssGrowthBound)
      << "after " << after << ": resident set grew by " << ((rss - rss_before) >> 20) << " MiB";
}

// Sets SO_LINGER 0: closing the socket then sends RST instead of FIN.
void reset_on_close(const TcpStream& s) {
  const linger abort_on_close{1, 0};
  EXPECT_EQ(::setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close)),
            0);
}

// Reads until end of stream or an error (at most `bound`). Output: true
// when the peer closed (EOF or reset) within the bound.
Task<bool> closed_within(TcpStream& s, absl::Duration bound) {
  const Instant deadline = timer::now() + bound;
  std::vector<char> buf(16 * 1024);
  for (;;) {
    absl::StatusOr<reactor::IoResult> r = co_await pollux::timeout_at(s.read(std::move(buf)), deadline);
    if (!r.ok()) co_return false;  // still open at the deadline
    if (!r->n.ok() || *r->n == 0) co_return true;
    buf = std::move(r->buf);
  }
}

class ServerAbuseTest : public ServerTest {
 protected:
  void SetUp() override {
    if (pollux::testing::raise_fd_limit() < 4096) GTEST_SKIP() << "RLIMIT_NOFILE below 4096";
    ServerTest::SetUp();
  }

  // Runs `abuse(addr)` against an HTTP server with test_options(), then the
  // health check.
  template <class Abuse>
  void abuse_http(std::string_view name, Abuse abuse, ServeOptions options = test_options()) {
    run(name, std::move(abuse), options, /*echo=*/false);
  }
  template <class Abuse>
  void abuse_echo(std::string_view name, Abuse abuse, ServeOptions options = test_options()) {
    run(name, std::move(abuse), options, /*echo=*/true);
  }

 private:
  template <class Abuse>
  void run(std::string_view name, Abuse abuse, ServeOptions options, bool echo) {
    rt_->block_on([](std::string name, Abuse abuse, ServeOptions options,
                     bool echo) -> Task<void> {
      absl::StatusOr<net::TcpListener> listener =
          net::TcpListener::bind(SocketAddr::ipv4_loopback(0));
      CO_ASSERT_TRUE(listener.ok(), listener.status());
      const SocketAddr addr = listener->local_addr();
      const int fds_with_listener = pollux::testing::open_fd_count();
      const uint64_t rss_before = rss_bytes();
      auto stats = std::make_shared<ServeStats>();
      // The HTTP server for the health check; echo abuses get their own.
      JoinHandle<void> server = pollux::spawn(
          http::serve_http(std::move(*listener), options, ShutdownTrigger{}, stats));
      if (echo) {
        absl::StatusOr<net::TcpListener> echo_listener =
            net::TcpListener::bind(SocketAddr::ipv4_loopback(0));
        CO_ASSERT_TRUE(echo_listener.ok(), echo_listener.status());
        const SocketAddr echo_addr = echo_listener->local_addr();
        const int fds = pollux::testing::open_fd_count();
        JoinHandle<void> echo_server = pollux::spawn(
            serve_echo(std::move(*echo_listener), options, ShutdownTrigger{}, stats));
        absl::Status done = co_await pollux::timeout(abuse(echo_addr), absl::Seconds(40));
        EXPECT_TRUE(done.ok()) << name << ": " << done;
        EXPECT_EQ(co_await settle_fd_count(fds), fds) << name << ": echo sockets still open";
        echo_server.abort();
        (void)co_await std::move(echo_server);
      } else {
        absl::Status done = co_await pollux::timeout(abuse(addr), absl::Seconds(40));
        EXPECT_TRUE(done.ok()) << name << ": " << done;
      }
      co_await expect_healthy(addr, fds_with_listener, rss_before, name);
      EXPECT_FALSE(server.is_finished()) << "the server stopped on its own";
      server.abort();
      (void)co_await std::move(server);
    }(std::string(name), std::move(abuse), options, echo));
  }
};

TEST_F(ServerAbuseTest, TenThousandConnectionsInWavesOfFiveHundredHalfReset) {
  int waves = kSanitized || pollux::testing::kUnderTsan ? 4 : 20;  // not const: captured
  abuse_http("connection churn", [waves](SocketAddr addr) -> Task<void> {
    constexpr int kWave = 500;
    int connected = 0;
    for (int wave = 0; wave < waves; ++wave) {
      std::vector<TcpStream> open;
      open.reserve(kWave);
      for (int i = 0; i < kWave; ++i) {
        absl::StatusOr<TcpStream> s = co_await TcpStream::connect(addr);
        if (!s.ok()) continue;
        ++connected;
        // Data in flight: a whole request (its response then arrives at a
        // socket about to close) or half of one.
        const std::string_view sent =
            i % 3 == 0 ? http::kHelloRequest : http::kHelloRequest.substr(0, 9);
        net::WriteAllResult w = co_await s->write_all(bytes(sent));
        EXPECT_TRUE(w.status.ok()) << w.status;
        if (i % 2 == 0) reset_on_close(*s);
        open.push_back(std::move(*s));
      }
      open.clear();  // the wave closes at once: half FIN, half RST
    }
    EXPECT_EQ(connected, waves * kWave);
  });
}

TEST_F(ServerAbuseTest, FiveHundredSlowlorisConnectionsAreClosedByTheHeaderTimeout) {
  const int clients = pollux::testing::kUnderTsan ? 100 : 500;
  abuse_http("slowloris", [clients](SocketAddr addr) -> Task<void> {
    auto closed = std::make_shared<std::atomic<int>>(0);
    auto early = std::make_shared<std::atomic<int>>(0);
    std::vector<JoinHandle<void>> tasks;
    for (int c = 0; c < clients; ++c) {
      tasks.push_back(pollux::spawn([addr, closed, early]() -> Task<void> {
        absl::StatusOr<TcpStream> s = co_await TcpStream::connect(addr);
        if (!s.ok()) co_return;
        const Instant start = timer::now();
        net::WriteAllResult w = co_await s->write_all(bytes("GET / HTTP/1.1\r\nX-Slow: "));
        if (!w.status.ok()) co_return;
        // One byte every 50 ms, never the end of the head, for up to 5 s.
        for (int i = 0; i < 100; ++i) {
          if (co_await closed_within(*s, absl::Milliseconds(50))) {
            // Relaxed: counters read after every task was joined.
            closed->fetch_add(1, std::memory_order_relaxed);
            if (timer::now() - start < absl::Milliseconds(400)) {
              early->fetch_add(1, std::memory_order_relaxed);
            }
            co_return;
          }
          net::WriteAllResult b = co_await s->write_all(bytes("x"));
          if (!b.status.ok()) {  // the server closed (an RST: our input was unread)
            closed->fetch_add(1, std::memory_order_relaxed);
            co_return;
          }
        }
      }));
    }
    for (JoinHandle<void>& t : tasks) (void)co_await std::move(t);
    EXPECT_EQ(closed->load(std::memory_order_relaxed), clients)
        << "slowloris connections still open 5 s into a 500 ms header timeout";
    EXPECT_EQ(early->load(std::memory_order_relaxed), 0) << "closed before the header timeout";
  });
}

TEST_F(ServerAbuseTest, SilentAndIdleConnectionsAreClosedByTheirTimeouts) {
  abuse_http("silent and idle connections", [](SocketAddr addr) -> Task<void> {
    // Nothing sent at all: the header timeout (500 ms).
    std::optional<TcpStream> silent = co_await connect_to(addr);
    if (!silent) co_return;
    // One answered request, then quiet: the idle timeout (400 ms).
    std::optional<TcpStream> idle = co_await connect_to(addr);
    if (!idle) co_return;
    absl::StatusOr<std::string> r = co_await http::http_get(*idle, 1);
    CO_ASSERT_TRUE(r.ok(), r.status());
    const Instant start = timer::now();
    EXPECT_FALSE(co_await closed_within(*idle, absl::Milliseconds(200))) << "closed before idle";
    EXPECT_TRUE(co_await closed_within(*idle, absl::Seconds(3))) << "idle connection kept";
    EXPECT_GE(timer::now() - start, absl::Milliseconds(390));
    EXPECT_TRUE(co_await closed_within(*silent, absl::Seconds(3))) << "silent connection kept";
    // The idle timeout restarts with every request: five requests 250 ms
    // apart (more than 400 ms in all) keep a connection open.
    std::optional<TcpStream> busy = co_await connect_to(addr);
    if (!busy) co_return;
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<std::string> again = co_await http::http_get(*busy, 1);
      CO_ASSERT_TRUE(again.ok(), "request " << i << ": " << again.status());
      co_await pollux::sleep(absl::Milliseconds(250));
    }
  });
}

TEST_F(ServerAbuseTest, TwoThousandPipelinedRequestsInOneWriteAreAnsweredInOrder) {
  abuse_http("2,000 pipelined requests", [](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    // Two kinds of request with different responses, so an answer out of
    // order shows.
    constexpr std::string_view kHttp10KeepAlive =
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    std::string requests;
    std::string expected;
    for (int i = 0; i < 2000; ++i) {
      const bool ten = i % 7 == 3;
      requests += ten ? kHttp10KeepAlive : http::kHelloRequest;
      expected += ten ? http::kHelloKeepAliveResponse : http::kHelloResponse;
    }
    auto [reader, writer] = std::move(*stream).split();
    auto [written, answers] = co_await pollux::join(writer.write_all(bytes(requests)),
                                                    reader.read_exact(expected.size()));
    CO_ASSERT_TRUE(written.status.ok(), written.status);
    CO_ASSERT_TRUE(answers.ok(), answers.status());
    EXPECT_TRUE(std::string(answers->begin(), answers->end()) == expected)
        << "the 2,000 responses are not the expected bytes in order";
  });
}

TEST_F(ServerAbuseTest, BinaryGarbageGets400ThenClose) {
  abuse_http("binary garbage", [](SocketAddr addr) -> Task<void> {
    for (uint32_t seed = 1; seed <= 20; ++seed) {
      std::optional<TcpStream> stream = co_await connect_to(addr);
      if (!stream) co_return;
      std::vector<char> junk = garbage(1000 + seed * 97, seed);
      for (char c : std::string_view("\r\n\r\n")) junk.push_back(c);
      net::WriteAllResult w = co_await stream->write_all(std::move(junk));
      CO_ASSERT_TRUE(w.status.ok(), w.status);
      http::HttpResponseReader reader(*stream);
      absl::StatusOr<std::string> r = co_await reader.next_response();
      CO_ASSERT_TRUE(r.ok(), "seed " << seed << ": " << r.status());
      EXPECT_EQ(*r, http::kBadRequestResponse) << "seed " << seed;
      absl::Status eof = co_await reader.expect_end_of_stream();
      EXPECT_TRUE(eof.ok()) << "seed " << seed << ": " << eof;
    }
  });
}

TEST_F(ServerAbuseTest, OneMebibyteHeadWithNoEndGets431) {
  abuse_http("1 MiB head", [](SocketAddr addr) -> Task<void> {
    std::optional<TcpStream> stream = co_await connect_to(addr);
    if (!stream) co_return;
    std::string head = "GET / HTTP/1.1\r\nX-Huge: ";
    head.resize(1 << 20, 'h');
    auto [reader, writer] = std::move(*stream).split();
    // The server answers after 8 KiB and closes while we are still
    // sending: the write may fail (reset), the response must arrive.
    auto [written, answer] =
        co_await pollux::join(writer.write_all(bytes(head)),
                              reader.read_exact(http::kHeaderTooLargeResponse.size()));
    (void)written;
    CO_ASSERT_TRUE(answer.ok(), answer.status());
    EXPECT_EQ(std::string(answer->begin(), answer->end()), http::kHeaderTooLargeResponse);
  });
}

TEST_F(ServerAbuseTest, PipeliningWithoutReadingIsHeldBackThenTimedOut) {
  const int clients = kSanitized ? 4 : 10;
  abuse_http("pipelining without reading", [clients](SocketAddr addr) -> Task<void> {
    // Each client sends requests in 64 KiB writes (up to 8 MiB, ~240,000
    // requests whose responses would be 18 MiB) and reads nothing. A server
    // that kept answering into memory would hold 10 x 18 MiB; this one
    // stops reading while its output is stuck, and the write timeout ends
    // the connection. The resident set is sampled meanwhile: its peak is
    // what must stay bounded.
    const uint64_t rss_before = rss_bytes();
    auto peak = std::make_shared<std::atomic<uint64_t>>(rss_before);
    auto stopped = std::make_shared<std::atomic<int>>(0);
    auto running = std::make_shared<std::atomic<int>>(clients);
    // Relaxed, all of these: counters and a flag read by tasks of this
    // test, and after every task was joined.
    JoinHandle<void> sampler = pollux::spawn([peak, running]() -> Task<void> {
      while (running->load(std::memory_order_relaxed) > 0) {
        const uint64_t now = rss_bytes();
        if (now > peak->load(std::memory_order_relaxed)) {
          peak->store(now, std::memory_order_relaxed);
        }
        co_await pollux::sleep(absl::Milliseconds(20));
      }
    });
    std::vector<JoinHandle<void>> tasks;
    for (int c = 0; c < clients; ++c) {
      tasks.push_back(pollux::spawn([addr, stopped, running]() -> Task<void> {
        absl::StatusOr<TcpStream> s = co_await TcpStream::connect(addr);
        if (s.ok()) {
          std::vector<char> chunk;
          while (chunk.size() + http::kHelloRequest.size() <= 64 * 1024) {
            chunk.insert(chunk.end(), http::kHelloRequest.begin(), http::kHelloRequest.end());
          }
          const Instant deadline = timer::now() + absl::Seconds(10);
          for (size_t sent = 0; sent < (8u << 20); sent += chunk.size()) {
            absl::StatusOr<net::WriteAllResult> w =
                co_await pollux::timeout_at(s->write_all(std::move(chunk)), deadline);
            if (!w.ok()) break;  // neither sent nor failed in 10 s
            chunk = std::move(w->buf);
            if (!w->status.ok()) {
              stopped->fetch_add(1, std::memory_order_relaxed);
              break;
            }
          }
        }
        running->fetch_sub(1, std::memory_order_relaxed);
      }));
    }
    for (JoinHandle<void>& t : tasks) (void)co_await std::move(t);
    (void)co_await std::move(sampler);
    EXPECT_EQ(stopped->load(std::memory_order_relaxed), clients)
        << "every non-reading client's write should fail once the server gives up on it";
    const uint64_t grew = peak->load(std::memory_order_relaxed) - rss_before;
    EXPECT_LT(grew, kRssGrowthBound) << "peak resident set grew by " << (grew >> 20) << " MiB";
  });
}

TEST_F(ServerAbuseTest, ClientsClosingMidResponse) {
  abuse_http("clients closing mid-response", [](SocketAddr addr) -> Task<void> {
    for (int c = 0; c < 40; ++c) {
      std::optional<TcpStream> stream = co_await connect_to(addr);
      if (!stream) co_return;
      net::WriteAllResult w = co_await stream->write_all(bytes(repeat(http::kHelloRequest, 2000)));
      CO_ASSERT_TRUE(w.status.ok(), w.status);
      // Read a part of the responses, then close (half with RST).
      reactor::IoResult r = co_await stream->read(std::vector<char>(100 + c * 50));
      EXPECT_TRUE(r.n.ok() && *r.n > 0);
      if (c % 2 == 0) reset_on_close(*stream);
    }
  });
}

TEST_F(ServerAbuseTest, EchoIdleAndWriteTimeouts) {
  abuse_echo("echo timeouts", [](SocketAddr addr) -> Task<void> {
    // Idle: one echo, then quiet until the idle timeout (400 ms).
    std::optional<TcpStream> idle = co_await connect_to(addr);
    if (!idle) co_return;
    net::WriteAllResult w = co_await idle->write_all(bytes("ping"));
    CO_ASSERT_TRUE(w.status.ok(), w.status);
    absl::StatusOr<std::vector<char>> echo = co_await idle->read_exact(4);
    CO_ASSERT_TRUE(echo.ok(), echo.status());
    EXPECT_FALSE(co_await closed_within(*idle, absl::Milliseconds(200))) << "closed before idle";
    EXPECT_TRUE(co_await closed_within(*idle, absl::Seconds(3))) << "idle echo connection kept";
    // Write: 64 MiB sent, nothing read back; the echo's writes stall and the
    // write timeout (500 ms) ends the connection (our write then fails).
    std::optional<TcpStream> flood = co_await connect_to(addr);
    if (!flood) co_return;
    // More than the kernel can buffer on the way (tcp_rmem's max is 32 MiB
    // and tcp_wmem's 4 MiB on these machines: loopback autotuning let the
    // server's receive buffer swallow an 8 MiB flood about 1 run in 10), and
    // a fixed receive buffer here, so the echo's write must stall.
    const int rcvbuf = 64 << 10;
    CO_ASSERT_TRUE(::setsockopt(flood->fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0,
                   "setsockopt SO_RCVBUF");
    absl::StatusOr<net::WriteAllResult> f =
        co_await pollux::timeout(flood->write_all(garbage(64 << 20, 3)), absl::Seconds(10));
    CO_ASSERT_TRUE(f.ok(), "the flood's write neither finished nor failed in 10 s");
    EXPECT_FALSE(f->status.ok()) << "64 MiB echoed into a client that never reads";
  });
}

}  // namespace
}  // namespace pollux::examples
