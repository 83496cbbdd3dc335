// Test scaffolding shared by the example servers' tests: a fixture that
// gives each test a fresh runtime (of the flavour the BUILD target names,
// tests/flavour.h), runs a server on a fresh
// 127.0.0.1:0 listener while a client coroutine talks to it, and checks at
// teardown that the process's open fd count is back where it started.
//
//   class EchoServiceTest : public ServerTest {};
//   TEST_F(EchoServiceTest, X) {
//     with_server(serve_echo, [](net::SocketAddr addr) -> Task<void> { ... });
//   }
//
// Thread-safety: one test thread, as gtest runs them.
#ifndef POLLUX_EXAMPLES_TESTING_SERVER_TEST_H_
#define POLLUX_EXAMPLES_TESTING_SERVER_TEST_H_

#include <chrono>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/watchdog.h"
#include "timer/timeout.h"

// ASSERT_TRUE for coroutines: gtest's fatal assertions `return`, which a
// coroutine cannot.
#define CO_ASSERT_TRUE(cond, message)                       \
  do {                                                      \
    if (!(cond)) {                                          \
      ADD_FAILURE() << "Failed: " #cond << ": " << message; \
      co_return;                                            \
    }                                                       \
  } while (0)

namespace pollux::examples {

// Connects to `addr`; a failure is a test failure (and an empty optional).
inline Task<std::optional<net::TcpStream>> connect_to(net::SocketAddr addr) {
  absl::StatusOr<net::TcpStream> s = co_await net::TcpStream::connect(addr);
  if (!s.ok()) {
    ADD_FAILURE() << s.status();
    co_return std::nullopt;
  }
  co_return std::move(*s);
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baseline_fds_ = pollux::testing::open_fd_count();
    absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_.emplace(std::move(*rt));
  }
  void TearDown() override {
    rt_.reset();
    EXPECT_EQ(pollux::testing::open_fd_count(), baseline_fds_) << "an fd leaked";
  }

  // Runs client(addr) (at most 20 s) against serve (a callable taking a
  // net::TcpListener and returning the server task) on a fresh 127.0.0.1:0
  // listener, then stops the server.
  template <class ServeFn, class Client>
  void with_server(ServeFn serve, Client client) {
    rt_->block_on(run_with_server(std::move(serve), std::move(client)));
  }

  template <class ServeFn, class Client>
  static Task<void> run_with_server(ServeFn serve, Client client) {
    absl::StatusOr<net::TcpListener> listener =
        net::TcpListener::bind(net::SocketAddr::ipv4_loopback(0));
    CO_ASSERT_TRUE(listener.ok(), listener.status());
    const net::SocketAddr addr = listener->local_addr();
    JoinHandle<void> server = pollux::spawn(serve(std::move(*listener)));
    // Bounded, so a server that stops answering fails the test instead of hanging it.
    absl::Status client_done = co_await pollux::timeout(client(addr), absl::Seconds(20));
    EXPECT_TRUE(client_done.ok()) << client_done;
    EXPECT_FALSE(server.is_finished()) << "the server stopped on its own";
    server.abort();
  }

  std::optional<Runtime> rt_;
  int baseline_fds_ = 0;
  pollux::testing::Watchdog dog_{std::chrono::seconds(60), "example server test"};
};

}  // namespace pollux::examples

#endif  // POLLUX_EXAMPLES_TESTING_SERVER_TEST_H_
