// Graceful shutdown of the example servers (issue 15; echo_service.h's
// ShutdownTrigger, run_server's SIGINT/SIGTERM).
//
// In process (every flavour): 100 connections are mid-exchange when the
// trigger is pulled. Every exchange already started completes byte for
// byte (echo: the rest of a message sent after the trigger comes back;
// HTTP: the rest of a half-sent request is answered with Connection: close,
// then end of stream), idle HTTP connections are closed without a response,
// new connections are refused, and the server task returns long before its
// grace period ends. Also: the grace period ends connections that do not
// finish, and ShutdownTrigger::now() cuts the grace short.
//
// Child processes (the real binaries, SIGTERM): the same exchanges against
// echo_server and http_hello, which then exit 0 with their summary line
// counting the connections and requests. A second signal stops at once.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/echo_service.h"
#include "examples/http_service.h"
#include "examples/http_wire.h"
#include "examples/testing/server_test.h"
#include "executor/join_handle.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "sync/cancellation_token.h"
#include "runtime/runtime.h"
#include "tests/rlimit.h"
#include "tests/watchdog.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

extern char** environ;

namespace pollux::examples {
namespace {

using net::SocketAddr;
using net::TcpStream;

constexpr int kClients = 100;
constexpr int kIdleClients = 10;
// A second request's head, sent in two parts around the shutdown.
constexpr std::string_view kFirstHalf = "GET / HTTP/1.1\r\nHo";
constexpr std::string_view kSecondHalf = "st: 127.0.0.1\r\n\r\n";

std::vector<char> bytes(std::string_view s) { return std::vector<char>(s.begin(), s.end()); }

// Bytes from a xorshift generator (different per seed, no short period).
std::vector<char> pattern(size_t n, uint32_t seed) {
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

// Waits (bounded: 20 s) until *count reaches n. Output: whether it did.
Task<bool> wait_for_count(const std::atomic<int>& count, int n) {
  for (int i = 0; i < 2000; ++i) {
    // Acquire: pairs with the clients' release increments (what they did
    // before counting is done).
    if (count.load(std::memory_order_acquire) >= n) co_return true;
    co_await pollux::sleep(absl::Milliseconds(10));
  }
  co_return false;
}

// Connects until refused (bounded: 5 s; a connection that still lands is
// dropped at once). Output: whether connecting was refused.
Task<bool> refused_within(SocketAddr addr) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    absl::StatusOr<TcpStream> late = co_await TcpStream::connect(addr);
    if (!late.ok()) co_return true;
    co_await pollux::sleep(absl::Milliseconds(10));
  }
  co_return false;
}

// Reads until end of stream or an error (at most `bound`). Output: true
// when the peer closed within the bound, with no byte before it.
Task<bool> closed_silently_within(TcpStream& s, absl::Duration bound) {
  absl::StatusOr<reactor::IoResult> r =
      co_await pollux::timeout(s.read(std::vector<char>(256)), bound);
  co_return r.ok() && (!r->n.ok() || *r->n == 0);
}

// The counts an exchange across a shutdown reports.
struct Across {
  int exact = 0;        // exchanges completed byte for byte
  int idle_closed = 0;  // idle HTTP connections closed without a response
  bool refused = false;  // new connections refused after the trigger
};

// kClients echo connections: each sends message A and reads its echo, then
// sends the first 1,500 bytes of message B; then `trigger()` runs; then each
// sends the rest of B, reads all of B's echo and closes.
template <class Trigger>
Task<Across> echo_across_shutdown(SocketAddr addr, Trigger trigger) {
  auto ready = std::make_shared<std::atomic<int>>(0);
  auto exact = std::make_shared<std::atomic<int>>(0);
  sync::CancellationToken resume;
  std::vector<JoinHandle<void>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(pollux::spawn([addr, ready, exact, resume, c]() -> Task<void> {
      // Release (both counters): pairs with wait_for_count's acquire.
      std::optional<TcpStream> s = co_await connect_to(addr);
      if (!s) {
        ready->fetch_add(1, std::memory_order_release);
        co_return;
      }
      const std::vector<char> a = pattern(1000, static_cast<uint32_t>(c));
      const std::vector<char> b = pattern(4000, static_cast<uint32_t>(c + 1000));
      net::WriteAllResult wa = co_await s->write_all(a);
      absl::StatusOr<std::vector<char>> ea = co_await s->read_exact(a.size());
      net::WriteAllResult wb1 = co_await s->write_all(b, 1500);
      ready->fetch_add(1, std::memory_order_release);
      if (!wa.status.ok() || !ea.ok() || *ea != a || !wb1.status.ok()) {
        ADD_FAILURE() << "client " << c << " failed before the shutdown";
        co_return;
      }
      co_await resume.cancelled();
      net::WriteAllResult wb2 =
          co_await s->write_all(std::vector<char>(b.begin() + 1500, b.end()));
      absl::StatusOr<std::vector<char>> eb = co_await s->read_exact(b.size());
      EXPECT_TRUE(wb2.status.ok()) << "client " << c << ": " << wb2.status;
      EXPECT_TRUE(eb.ok()) << "client " << c << ": " << eb.status();
      if (wb2.status.ok() && eb.ok() && *eb == b) exact->fetch_add(1, std::memory_order_release);
    }));
  }
  Across result;
  EXPECT_TRUE(co_await wait_for_count(*ready, kClients)) << "the clients did not get going";
  co_await trigger();
  result.refused = co_await refused_within(addr);
  resume.cancel();
  for (JoinHandle<void>& c : clients) (void)co_await std::move(c);
  result.exact = exact->load(std::memory_order_acquire);
  co_return result;
}

// kClients HTTP connections that got one response and have sent half of a
// second request head, and kIdleClients that got one response and sent
// nothing more; then `trigger()`; then the first kind sends the rest of its
// head and expects kHelloCloseResponse and end of stream, the idle ones
// expect end of stream without a response.
template <class Trigger>
Task<Across> http_across_shutdown(SocketAddr addr, Trigger trigger) {
  auto ready = std::make_shared<std::atomic<int>>(0);
  auto exact = std::make_shared<std::atomic<int>>(0);
  auto idle_closed = std::make_shared<std::atomic<int>>(0);
  sync::CancellationToken triggered;
  sync::CancellationToken resume;
  std::vector<JoinHandle<void>> clients;
  for (int c = 0; c < kClients + kIdleClients; ++c) {
    const bool idle = c >= kClients;
    clients.push_back(pollux::spawn([=]() -> Task<void> {
      // Release (all counters): pairs with the acquire loads that read them.
      std::optional<TcpStream> s = co_await connect_to(addr);
      if (!s) {
        ready->fetch_add(1, std::memory_order_release);
        co_return;
      }
      absl::StatusOr<std::string> first = co_await http::http_get(*s, 1);
      net::WriteAllResult w{absl::OkStatus(), {}, 0};
      if (!idle) w = co_await s->write_all(bytes(kFirstHalf));
      ready->fetch_add(1, std::memory_order_release);
      if (!first.ok() || *first != http::kHelloResponse || !w.status.ok()) {
        ADD_FAILURE() << "client " << c << " failed before the shutdown";
        co_return;
      }
      if (idle) {
        co_await triggered.cancelled();
        if (co_await closed_silently_within(*s, absl::Seconds(3))) {
          idle_closed->fetch_add(1, std::memory_order_release);
        }
        co_return;
      }
      co_await resume.cancelled();
      net::WriteAllResult rest = co_await s->write_all(bytes(kSecondHalf));
      EXPECT_TRUE(rest.status.ok()) << "client " << c << ": " << rest.status;
      http::HttpResponseReader reader(*s);
      absl::StatusOr<std::string> r = co_await reader.next_response();
      EXPECT_TRUE(r.ok()) << "client " << c << ": " << r.status();
      absl::Status eof = co_await reader.expect_end_of_stream();
      EXPECT_TRUE(eof.ok()) << "client " << c << ": " << eof;
      if (r.ok() && *r == http::kHelloCloseResponse && eof.ok()) {
        exact->fetch_add(1, std::memory_order_release);
      }
    }));
  }
  Across result;
  EXPECT_TRUE(co_await wait_for_count(*ready, kClients + kIdleClients))
      << "the clients did not get going";
  // Let the server read the half heads: bytes it has not read yet when
  // the shutdown comes would find an idle connection.
  co_await pollux::sleep(absl::Milliseconds(200));
  co_await trigger();
  triggered.cancel();
  result.refused = co_await refused_within(addr);
  resume.cancel();
  for (JoinHandle<void>& c : clients) (void)co_await std::move(c);
  result.exact = exact->load(std::memory_order_acquire);
  result.idle_closed = idle_closed->load(std::memory_order_acquire);
  co_return result;
}

class ServerGracefulTest : public ServerTest {
 protected:
  void SetUp() override {
    if (pollux::testing::raise_fd_limit() < 1024) GTEST_SKIP() << "RLIMIT_NOFILE below 1024";
    ServerTest::SetUp();
  }

  // Runs serve(listener, options, shutdown, stats) and body(addr, shutdown,
  // server, stats) on the test's runtime.
  //
  // GCC 12: a call whose by-value arguments are non-trivial temporaries
  // (a ShutdownTrigger, a closure holding one) made inside a co_await
  // expression had one of them destroyed twice (ASan: heap-use-after-free
  // in ~CancellationToken). So such calls here are made in a statement of
  // their own and the resulting task is awaited after it.
  template <class Serve, class Body>
  void run(Serve serve, ServeOptions options, Body body) {
    rt_->block_on([](Serve serve, ServeOptions options, Body body) -> Task<void> {
      absl::StatusOr<net::TcpListener> listener =
          net::TcpListener::bind(SocketAddr::ipv4_loopback(0));
      CO_ASSERT_TRUE(listener.ok(), listener.status());
      const SocketAddr addr = listener->local_addr();
      ShutdownTrigger shutdown;
      auto stats = std::make_shared<ServeStats>();
      JoinHandle<void> server = pollux::spawn(serve(std::move(*listener), options, shutdown, stats));
      Task<void> running = body(addr, shutdown, server, stats);
      co_await std::move(running);
      server.abort();  // a no-op when it has returned
      (void)co_await std::move(server);
    }(std::move(serve), options, std::move(body)));
  }
};

ServeOptions long_grace() {
  ServeOptions o;
  o.grace = absl::Seconds(15);
  return o;
}

// Plain functions, not coroutines (see run()).
Task<void> serve_echo_task(net::TcpListener l, ServeOptions o, ShutdownTrigger t,
                           std::shared_ptr<ServeStats> s) {
  return serve_echo(std::move(l), o, std::move(t), std::move(s));
}
Task<void> serve_http_task(net::TcpListener l, ServeOptions o, ShutdownTrigger t,
                           std::shared_ptr<ServeStats> s) {
  return http::serve_http(std::move(l), o, std::move(t), std::move(s));
}

// Waits (bounded by `bound`) for the server task. Output: whether it returned.
Task<bool> returns_within(JoinHandle<void>& server, absl::Duration bound) {
  const Instant deadline = timer::now() + bound;
  while (!server.is_finished() && timer::now() < deadline) {
    co_await pollux::sleep(absl::Milliseconds(5));
  }
  co_return server.is_finished();
}

TEST_F(ServerGracefulTest, EchoExchangesInFlightCompleteThenTheServerReturns) {
  run(serve_echo_task, long_grace(),
      [](SocketAddr addr, const ShutdownTrigger& shutdown, JoinHandle<void>& server,
         std::shared_ptr<ServeStats> stats) -> Task<void> {
        Task<Across> across = echo_across_shutdown(addr, [shutdown]() -> Task<void> {
          shutdown.begin();
          co_return;
        });
        const Across a = co_await std::move(across);
        EXPECT_EQ(a.exact, kClients);
        EXPECT_TRUE(a.refused) << "the listener still accepts after the shutdown began";
        // Every connection has closed: the server returns now, not at the
        // end of its 15 s grace.
        EXPECT_TRUE(co_await returns_within(server, absl::Seconds(5)));
        // Exact (ServeStats): the server task has returned (observed via
        // is_finished, which orders its adds before this).
        EXPECT_EQ(stats->counts.total(ServeStats::kConnections),
                  static_cast<uint64_t>(kClients));
        EXPECT_EQ(stats->counts.total(ServeStats::kBytesOut),
                  static_cast<uint64_t>(kClients) * 5000);
      });
}

TEST_F(ServerGracefulTest, HttpRequestsInFlightGetConnectionCloseIdleOnesAreClosed) {
  run(serve_http_task, long_grace(),
      [](SocketAddr addr, const ShutdownTrigger& shutdown, JoinHandle<void>& server,
         std::shared_ptr<ServeStats> stats) -> Task<void> {
        const uint64_t sent = (kClients + kIdleClients) * http::kHelloRequest.size() +
                              kClients * kFirstHalf.size();
        Task<Across> across = http_across_shutdown(addr, [shutdown, stats, sent]() -> Task<void> {
          // The server has read every half head (in process we can see it).
          // A progress count polled until it reaches its total.
          for (int i = 0; i < 2000 && stats->counts.total(ServeStats::kBytesIn) < sent; ++i) {
            co_await pollux::sleep(absl::Milliseconds(5));
          }
          EXPECT_EQ(stats->counts.total(ServeStats::kBytesIn), sent);
          shutdown.begin();
        });
        const Across a = co_await std::move(across);
        EXPECT_EQ(a.exact, kClients);
        EXPECT_EQ(a.idle_closed, kIdleClients);
        EXPECT_TRUE(a.refused) << "the listener still accepts after the shutdown began";
        EXPECT_TRUE(co_await returns_within(server, absl::Seconds(5)));
        // Exact: as above, after the server task returned.
        EXPECT_EQ(stats->counts.total(ServeStats::kRequests),
                  static_cast<uint64_t>(2 * kClients + kIdleClients));
      });
}

TEST_F(ServerGracefulTest, TheGracePeriodEndsConnectionsThatDoNotFinish) {
  ServeOptions o;
  o.grace = absl::Milliseconds(300);
  o.idle_timeout = absl::ZeroDuration();
  run(serve_echo_task, o,
      [](SocketAddr addr, const ShutdownTrigger& shutdown, JoinHandle<void>& server,
         std::shared_ptr<ServeStats>) -> Task<void> {
        std::optional<TcpStream> s = co_await connect_to(addr);
        if (!s) co_return;
        net::WriteAllResult w = co_await s->write_all(bytes("ping"));
        absl::StatusOr<std::vector<char>> e = co_await s->read_exact(4);
        CO_ASSERT_TRUE(w.status.ok() && e.ok(), "the echo before the shutdown failed");
        const Instant start = timer::now();
        shutdown.begin();
        // Still served during the grace period.
        net::WriteAllResult w2 = co_await s->write_all(bytes("pong"));
        absl::StatusOr<std::vector<char>> e2 = co_await s->read_exact(4);
        EXPECT_TRUE(w2.status.ok() && e2.ok() && *e2 == bytes("pong"));
        EXPECT_TRUE(co_await closed_silently_within(*s, absl::Seconds(5)));
        EXPECT_GE(timer::now() - start, absl::Milliseconds(290));
        EXPECT_TRUE(co_await returns_within(server, absl::Seconds(5)));
      });
}

TEST_F(ServerGracefulTest, NowCutsTheGracePeriodShort) {
  run(serve_echo_task, long_grace(),
      [](SocketAddr addr, const ShutdownTrigger& shutdown, JoinHandle<void>& server,
         std::shared_ptr<ServeStats>) -> Task<void> {
        std::optional<TcpStream> s = co_await connect_to(addr);
        if (!s) co_return;
        net::WriteAllResult w = co_await s->write_all(bytes("ping"));
        absl::StatusOr<std::vector<char>> e = co_await s->read_exact(4);
        CO_ASSERT_TRUE(w.status.ok() && e.ok(), "the echo before the shutdown failed");
        shutdown.begin();
        co_await pollux::sleep(absl::Milliseconds(50));
        EXPECT_FALSE(server.is_finished()) << "returned with a connection open, in its grace";
        shutdown.now();
        EXPECT_TRUE(co_await closed_silently_within(*s, absl::Seconds(3)));
        EXPECT_TRUE(co_await returns_within(server, absl::Seconds(3)));
      });
}

// ---- The real binaries, stopped with SIGTERM. ----

// A server binary started with posix_spawn, its stdout and stderr on pipes.
struct Child {
  pid_t pid = -1;
  int out = -1;  // read end of its stdout
  int err = -1;  // read end of its stderr
  std::string out_text;
  SocketAddr addr;
};

// Reads what is available from `fd` into `text` within `bound`, stopping
// early once `text` contains `until` (when not empty) or at end of file.
void read_from(int fd, std::string& text, std::chrono::milliseconds bound,
               std::string_view until = {}) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  char buf[4096];
  while (until.empty() || text.find(until) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    text.append(buf, static_cast<size_t>(n));
  }
}

// Starts $env_var (a path from the BUILD file) with --port=0 and `flags`,
// and reads its "listening on" line. Empty pid on failure (a test failure).
Child start_server(const char* env_var, std::vector<std::string> flags) {
  Child child;
  const char* path = std::getenv(env_var);
  if (path == nullptr) {
    ADD_FAILURE() << env_var << " is not set (the BUILD file names the binary)";
    return child;
  }
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return child;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<std::string> args = {path, "--port=0"};
  // On the multi-thread targets the server runs two threads of that flavour.
  if (const char* flavour = std::getenv("POLLUX_TEST_FLAVOUR"); flavour != nullptr) {
    args.push_back("--threads=2");
    args.push_back(absl::StrCat("--flavour=", flavour));
  }
  for (std::string& f : flags) args.push_back(std::move(f));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = ::posix_spawn(&child.pid, path, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  child.out = out[0];
  child.err = err[0];
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << path << ": " << rc;
    child.pid = -1;
    return child;
  }
  constexpr std::string_view kListening = "listening on ";
  read_from(child.out, child.out_text, std::chrono::seconds(20), kListening);
  const size_t at = child.out_text.find(kListening);
  if (at != std::string::npos) read_from(child.out, child.out_text, std::chrono::seconds(5), "\n");
  const size_t end = at == std::string::npos ? at : child.out_text.find('\n', at);
  if (end == std::string::npos) {
    ADD_FAILURE() << env_var << " did not say where it listens: " << child.out_text;
    return child;
  }
  const std::string where = child.out_text.substr(at + kListening.size(), end - at - kListening.size());
  absl::StatusOr<SocketAddr> addr = SocketAddr::parse(where);
  if (!addr.ok()) {
    ADD_FAILURE() << "cannot parse \"" << where << "\": " << addr.status();
    return child;
  }
  child.addr = *addr;
  return child;
}

// Waits (bounded: 20 s, polling) for the child to exit. Output: its exit
// code, or -1 (killed by a signal, or still running: then it is killed).
Task<int> wait_for_exit(pid_t pid) {
  for (int i = 0; i < 2000; ++i) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) co_return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    co_await pollux::sleep(absl::Milliseconds(10));
  }
  ADD_FAILURE() << "the server did not exit within 20 s";
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  co_return -1;
}

// The numbers of "summary: N connections, M requests, I bytes in, O bytes
// out, ..." (run_server's last line), or nullopt when there is none.
struct Summary {
  uint64_t connections = 0, requests = 0, bytes_in = 0, bytes_out = 0;
};
std::optional<Summary> parse_summary(const std::string& out) {
  const size_t at = out.find("summary: ");
  if (at == std::string::npos) return std::nullopt;
  Summary s;
  unsigned long long c, r, i, o;
  if (std::sscanf(out.c_str() + at, "summary: %llu connections, %llu requests, %llu bytes in, %llu bytes out",
                  &c, &r, &i, &o) != 4) {
    return std::nullopt;
  }
  s.connections = c;
  s.requests = r;
  s.bytes_in = i;
  s.bytes_out = o;
  return s;
}

class ServerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pollux::testing::raise_fd_limit();
    absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_.emplace(std::move(*rt));
  }
  void TearDown() override {
    rt_.reset();
    if (child_.out >= 0) ::close(child_.out);
    if (child_.err >= 0) ::close(child_.err);
  }
  // Reads what is left of the child's output once it has exited.
  std::string rest_of(int fd, std::string text) {
    read_from(fd, text, std::chrono::seconds(5));
    return text;
  }

  std::optional<Runtime> rt_;
  Child child_;
  pollux::testing::Watchdog dog_{std::chrono::seconds(90), "server process test"};
};

TEST_F(ServerProcessTest, EchoServerFinishesExchangesOnSigtermAndExitsWithASummary) {
  child_ = start_server("ECHO_SERVER", {"--grace=15s"});
  ASSERT_GT(child_.pid, 0);
  ASSERT_NE(child_.addr.port(), 0);
  const pid_t pid = child_.pid;
  int exit_code = -2;
  Across a = rt_->block_on([](SocketAddr addr, pid_t pid, int& exit_code) -> Task<Across> {
    Task<Across> across = echo_across_shutdown(addr, [pid]() -> Task<void> {
      EXPECT_EQ(::kill(pid, SIGTERM), 0);
      co_return;
    });
    Across a = co_await std::move(across);
    exit_code = co_await wait_for_exit(pid);
    co_return a;
  }(child_.addr, pid, exit_code));
  const std::string out = rest_of(child_.out, child_.out_text);
  const std::string err = rest_of(child_.err, "");
  EXPECT_EQ(a.exact, kClients);
  EXPECT_TRUE(a.refused) << "the listener still accepts after SIGTERM";
  EXPECT_EQ(exit_code, 0) << "stdout: " << out << "\nstderr: " << err;
  std::optional<Summary> summary = parse_summary(out);
  ASSERT_TRUE(summary.has_value()) << "no summary line in: " << out;
  // The refusal probes may have landed a few connections before the
  // signal was handled; each of those carried no data.
  EXPECT_GE(summary->connections, static_cast<uint64_t>(kClients));
  EXPECT_LE(summary->connections, static_cast<uint64_t>(kClients) + 500);
  EXPECT_EQ(summary->bytes_out, static_cast<uint64_t>(kClients) * 5000) << out;
  EXPECT_NE(err.find("SIGTERM: graceful shutdown"), std::string::npos) << err;
}

TEST_F(ServerProcessTest, HttpHelloAnswersRequestsInFlightOnSigtermAndExitsWithASummary) {
  child_ = start_server("HTTP_HELLO", {"--grace=15s"});
  ASSERT_GT(child_.pid, 0);
  ASSERT_NE(child_.addr.port(), 0);
  int exit_code = -2;
  Across a = rt_->block_on([](SocketAddr addr, pid_t pid, int& exit_code) -> Task<Across> {
    Task<Across> across = http_across_shutdown(addr, [pid]() -> Task<void> {
      EXPECT_EQ(::kill(pid, SIGTERM), 0);
      co_return;
    });
    Across a = co_await std::move(across);
    exit_code = co_await wait_for_exit(pid);
    co_return a;
  }(child_.addr, child_.pid, exit_code));
  const std::string out = rest_of(child_.out, child_.out_text);
  const std::string err = rest_of(child_.err, "");
  EXPECT_EQ(a.exact, kClients);
  EXPECT_EQ(a.idle_closed, kIdleClients);
  EXPECT_TRUE(a.refused) << "the listener still accepts after SIGTERM";
  EXPECT_EQ(exit_code, 0) << "stdout: " << out << "\nstderr: " << err;
  std::optional<Summary> summary = parse_summary(out);
  ASSERT_TRUE(summary.has_value()) << "no summary line in: " << out;
  EXPECT_GE(summary->connections, static_cast<uint64_t>(kClients + kIdleClients));
  EXPECT_EQ(summary->requests, static_cast<uint64_t>(2 * kClients + kIdleClients)) << out;
}

TEST_F(ServerProcessTest, ASecondSignalStopsAtOnce) {
  child_ = start_server("ECHO_SERVER", {"--grace=60s", "--idle_timeout=0"});
  ASSERT_GT(child_.pid, 0);
  ASSERT_NE(child_.addr.port(), 0);
  int exit_code = -2;
  absl::Duration took;
  rt_->block_on([](SocketAddr addr, pid_t pid, int& exit_code, absl::Duration& took) -> Task<void> {
    // A connection that never finishes would hold the server for its 60 s grace.
    std::optional<TcpStream> s = co_await connect_to(addr);
    if (!s) co_return;
    net::WriteAllResult w = co_await s->write_all(bytes("ping"));
    absl::StatusOr<std::vector<char>> e = co_await s->read_exact(4);
    CO_ASSERT_TRUE(w.status.ok() && e.ok(), "the echo before the shutdown failed");
    const Instant start = timer::now();
    EXPECT_EQ(::kill(pid, SIGINT), 0);
    co_await pollux::sleep(absl::Milliseconds(300));  // the first one is handled
    int status = 0;
    const pid_t early = ::waitpid(pid, &status, WNOHANG);
    EXPECT_EQ(early, 0) << "exited during its grace period, status " << status;
    if (early == pid) co_return;
    EXPECT_EQ(::kill(pid, SIGTERM), 0);
    exit_code = co_await wait_for_exit(pid);
    took = timer::now() - start;
    EXPECT_TRUE(co_await closed_silently_within(*s, absl::Seconds(3)));
  }(child_.addr, child_.pid, exit_code, took));
  const std::string out = rest_of(child_.out, child_.out_text);
  EXPECT_EQ(exit_code, 0) << out;
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_TRUE(parse_summary(out).has_value()) << out;
}

// http_hello serves Runtime::metrics() at GET /metrics (Prometheus text)
// beside the hello response, and prints its task dump on SIGQUIT (and
// keeps serving).
constexpr std::string_view kMetricsRequest = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";

Task<std::vector<std::string>> metrics_then_hello(SocketAddr addr) {
  std::vector<std::string> responses;
  std::optional<TcpStream> s = co_await connect_to(addr);
  if (!s) co_return responses;
  http::HttpResponseReader reader(*s);
  for (std::string_view request : {kMetricsRequest, http::kHelloRequest}) {
    net::WriteAllResult w = co_await s->write_all(std::vector<char>(request.begin(), request.end()));
    if (!w.status.ok()) co_return responses;
    absl::StatusOr<std::string> r = co_await reader.next_response();
    if (!r.ok()) co_return responses;
    responses.push_back(std::move(*r));
  }
  co_return responses;
}

TEST_F(ServerProcessTest, HttpHelloServesMetricsAndPrintsItsTaskDumpOnSigquit) {
  child_ = start_server("HTTP_HELLO", {});
  ASSERT_GT(child_.pid, 0);
  ASSERT_NE(child_.addr.port(), 0);
  std::vector<std::string> responses = rt_->block_on(metrics_then_hello(child_.addr));
  ASSERT_EQ(responses.size(), 2u);
  const std::string& metrics = responses[0];
  EXPECT_EQ(metrics.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << metrics;
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4\r\n"), std::string::npos);
  EXPECT_NE(metrics.find("# TYPE pollux_worker_polls_total counter"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("pollux_worker_polls_total{worker=\"0\"}"), std::string::npos) << metrics;
  EXPECT_EQ(responses[1], http::kHelloResponse);

  ASSERT_EQ(::kill(child_.pid, SIGQUIT), 0);
  std::string err;
  // The dump names each live task's spawn site: the server task comes from
  // run_server in echo_service.cc.
  read_from(child_.err, err, std::chrono::seconds(10), "echo_service.cc");
  EXPECT_NE(err.find("SIGQUIT: "), std::string::npos) << err;
  EXPECT_NE(err.find("echo_service.cc"), std::string::npos) << err;
  // Still serving after the dump, then a normal graceful exit.
  responses = rt_->block_on(metrics_then_hello(child_.addr));
  EXPECT_EQ(responses.size(), 2u);
  ASSERT_EQ(::kill(child_.pid, SIGTERM), 0);
  const int exit_code = rt_->block_on(wait_for_exit(child_.pid));
  EXPECT_EQ(exit_code, 0) << rest_of(child_.err, err);
}

}  // namespace
}  // namespace pollux::examples
