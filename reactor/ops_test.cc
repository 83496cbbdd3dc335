// Tests for the operation futures (ops.h), through Runtime::block_on: nop,
// read/write on pipes (including a read woken by a writer on another
// thread), accept/connect/send/recv on 127.0.0.1 TCP sockets, sendmsg (from
// an offset, to an address) and recvmsg (sender address, truncation), a refused
// connect, poll_add, the kernel timeout op, close, error statuses, buffers
// handed back in every case, and operations used with no runtime.
#include "reactor/ops.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/internal/task.h"
#include "executor/local_executor.h"
#include "future/join.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "future/testing/counting_waker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "reactor/errno_status.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/watchdog.h"

namespace pollux {
namespace {

using reactor::IoResult;
using testing::Watchdog;

struct Pipe {
  OwnedFd r, w;
  static Pipe make() {
    int p[2];
    POLLUX_CHECK(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
    return Pipe{OwnedFd(p[0]), OwnedFd(p[1])};
  }
};

// A buffer holding `s` (gcc 12 rejects braced char lists inside coroutines).
std::vector<char> bytes(const std::string& s) { return std::vector<char>(s.begin(), s.end()); }
std::string str(const IoResult& r) {
  return r.n.ok() ? std::string(r.buf.data(), *r.n) : std::string("<error>");
}

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

// A listening TCP socket on 127.0.0.1, port chosen by the kernel.
struct Listener {
  OwnedFd fd;
  sockaddr_in addr{};
  static Listener make(bool listen = true) {
    Listener l;
    l.fd = OwnedFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    POLLUX_CHECK(l.fd.valid(), "socket");
    l.addr.sin_family = AF_INET;
    l.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l.addr.sin_port = 0;
    POLLUX_CHECK(::bind(l.fd.get(), reinterpret_cast<sockaddr*>(&l.addr), sizeof(l.addr)) == 0,
                 "bind");
    if (listen) POLLUX_CHECK(::listen(l.fd.get(), 16) == 0, "listen");
    socklen_t len = sizeof(l.addr);
    POLLUX_CHECK(::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&l.addr), &len) == 0,
                 "getsockname");
    return l;
  }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

OwnedFd tcp_socket() {
  OwnedFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  POLLUX_CHECK(fd.valid(), "socket");
  return fd;
}

class OpsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (rt_.io_backend() != nullptr) {
      EXPECT_EQ(rt_.io_backend()->live_ops(), 0u) << "an op slot is still live after the test";
    }
  }
  Runtime rt_ = make_runtime();
  Watchdog dog_{std::chrono::seconds(30), "ops test"};
};

TEST_F(OpsTest, NopCompletes) {
  EXPECT_TRUE(rt_.block_on(reactor::nop()).ok());
  EXPECT_GE(rt_.io_backend()->stats().completions, 1u);
}

// The pin count of the task polling this future (RuntimeContext::task_pins).
struct ReadPins {
  using Output = uint32_t;
  Poll<uint32_t> poll(Context&) {
    return Ready(RuntimeContext::current().task_pins->load(std::memory_order_relaxed));
  }
};

// Polls `*op` once from inside the task, then reports the task's pins.
template <class Op>
struct PollOnceThenPins {
  using Output = uint32_t;
  Op* op;
  Poll<uint32_t> poll(Context& cx) {
    (void)op->poll(cx);
    return ReadPins{}.poll(cx);
  }
};

TEST_F(OpsTest, AnOpInFlightPinsItsTaskUntilItsResultIsTakenOrItIsDropped) {
  Pipe p = Pipe::make();
  std::vector<uint32_t> seen;
  JoinResult<Unit> done = rt_.block_on(rt_.spawn([&]() -> Task<void> {
    seen.push_back(co_await ReadPins{});
    {
      auto dropped = reactor::read(p.r.get(), std::vector<char>(8));
      seen.push_back(co_await PollOnceThenPins<decltype(dropped)>{&dropped});
    }
    seen.push_back(co_await ReadPins{});
    auto read = reactor::read(p.r.get(), std::vector<char>(8));
    seen.push_back(co_await PollOnceThenPins<decltype(read)>{&read});
    EXPECT_EQ(::write(p.w.get(), "x", 1), 1);
    IoResult r = co_await read;
    EXPECT_EQ(str(r), "x");
    seen.push_back(co_await ReadPins{});
  }));
  EXPECT_TRUE(done.ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(0u, 1u, 0u, 1u, 0u));
}

// The reference count of the task polling this future.
struct ReadRefs {
  using Output = uint64_t;
  Poll<uint64_t> poll(Context&) {
    return Ready(RuntimeContext::current().task->state.load().ref_count());
  }
};

// Polls `*op` once from inside the task with `waker`'s waker instead of the
// task's own (as a combinator's sub-waker, or another task through by_ref).
template <class Op>
struct PollOnceWith {
  using Output = Unit;
  Op* op;
  testing::CountingWaker* waker;
  Poll<Unit> poll(Context& cx) {
    Waker w = waker->waker();
    Context other = cx.with_waker(w);
    (void)op->poll(other);
    return Ready(Unit{});
  }
};

// The slot of an op in flight keeps its own task's waker without a
// reference (TaskPin::keep_waker: no locked increment per op), and the
// completion still wakes the task through it.
TEST_F(OpsTest, AnOpKeepsItsOwnTasksWakerWithoutAReference) {
  Pipe p = Pipe::make();
  std::vector<uint64_t> refs;
  JoinResult<Unit> done = rt_.block_on(rt_.spawn([&]() -> Task<void> {
    refs.push_back(co_await ReadRefs{});
    auto read = reactor::read(p.r.get(), std::vector<char>(8));
    co_await PollOnceThenPins<decltype(read)>{&read};
    refs.push_back(co_await ReadRefs{});
    EXPECT_EQ(::write(p.w.get(), "x", 1), 1);
    IoResult r = co_await read;  // woken by the slot's waker (else the watchdog fires)
    EXPECT_EQ(str(r), "x");
    refs.push_back(co_await ReadRefs{});
  }));
  EXPECT_TRUE(done.ok());
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[1], refs[0]) << "the slot took a reference to its own task";
  EXPECT_EQ(refs[2], refs[0]);
}

// Any other waker is cloned into the slot, and that clone is dropped when
// the op is next polled with its task's own.
TEST_F(OpsTest, AnOpPolledWithAnotherWakerKeepsAClone) {
  Pipe p = Pipe::make();
  testing::CountingWaker other;
  int64_t live_while_kept = -1;
  JoinResult<Unit> done = rt_.block_on(rt_.spawn([&]() -> Task<void> {
    auto read = reactor::read(p.r.get(), std::vector<char>(8));
    co_await PollOnceWith<decltype(read)>{&read, &other};
    live_while_kept = other.live();
    EXPECT_EQ(::write(p.w.get(), "x", 1), 1);
    IoResult r = co_await read;
    EXPECT_EQ(str(r), "x");
  }));
  EXPECT_TRUE(done.ok());
  EXPECT_EQ(live_while_kept, 1) << "the slot should hold a clone of a waker not its task's";
  EXPECT_EQ(other.live(), 0);
  EXPECT_EQ(other.wakes(), 0);
}

// An op in flight holds a slot of its thread's backend: polling it from
// another thread (here one with no backend at all) is a check failure, not
// a touch of a ring it does not own.
TEST(OpsDeathTest, AnOpInFlightPolledOnAnotherThreadIsACheckFailure) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        Runtime rt = make_runtime();
        Pipe p = Pipe::make();
        auto read = reactor::read(p.r.get(), std::vector<char>(8));
        struct PollOnce {
          using Output = Unit;
          decltype(read)* op;
          Poll<Unit> poll(Context& cx) {
            (void)op->poll(cx);
            return Ready(Unit{});
          }
        };
        rt.block_on(PollOnce{&read});  // now in flight
        std::thread other([&] {
          Budget budget;
          Context cx(noop_waker(), budget);
          (void)read.poll(cx);
        });
        other.join();
      },
      "polled on a thread other than its backend's");
}

TEST_F(OpsTest, ReadIsWokenByAWriteFromAnotherThread) {
  Pipe p = Pipe::make();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(::write(p.w.get(), "hello", 5), 5);
  });
  IoResult r = rt_.block_on(reactor::read(p.r.get(), std::vector<char>(16)));
  writer.join();
  ASSERT_TRUE(r.n.ok()) << r.n.status();
  EXPECT_EQ(*r.n, 5u);
  EXPECT_EQ(r.buf.size(), 16u) << "the whole buffer comes back";
  EXPECT_EQ(str(r), "hello");
}

TEST_F(OpsTest, WriteThenReadRoundTrip) {
  Pipe p = Pipe::make();
  std::string data(4000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i * 7 % 26);
  const int r = p.r.get(), w = p.w.get();
  std::string got = rt_.block_on([&]() -> Task<std::string> {
    IoResult wr = co_await reactor::write(w, bytes(data));
    EXPECT_TRUE(wr.n.ok()) << wr.n.status();
    EXPECT_EQ(wr.n.value_or(0), data.size());
    EXPECT_EQ(wr.buf.size(), data.size()) << "the written buffer comes back";
    std::string out;
    for (int i = 0; i < 100 && out.size() < data.size(); ++i) {
      IoResult rd = co_await reactor::read(r, std::vector<char>(1024));
      if (!rd.n.ok() || *rd.n == 0) break;
      out.append(rd.buf.data(), *rd.n);
    }
    co_return out;
  }());
  EXPECT_EQ(got, data);
}

TEST_F(OpsTest, ReadReturnsZeroAtEndOfFile) {
  Pipe p = Pipe::make();
  p.w.reset();
  IoResult r = rt_.block_on(reactor::read(p.r.get(), std::vector<char>(8)));
  ASSERT_TRUE(r.n.ok()) << r.n.status();
  EXPECT_EQ(*r.n, 0u);
}

TEST_F(OpsTest, ReadErrorIsAStatusAndTheBufferStillComesBack) {
  Pipe p = Pipe::make();
  // The write end cannot be read.
  IoResult r = rt_.block_on(reactor::read(p.w.get(), std::vector<char>(32)));
  ASSERT_FALSE(r.n.ok());
  EXPECT_EQ(errno_of(r.n.status()), EBADF) << r.n.status();
  EXPECT_EQ(r.n.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.n.status().message().find("read from fd"), absl::string_view::npos)
      << r.n.status();
  EXPECT_EQ(r.buf.size(), 32u);
}

TEST_F(OpsTest, TcpAcceptConnectSendRecv) {
  Listener l = Listener::make();
  OwnedFd client = tcp_socket();
  const int lfd = l.fd.get(), cfd = client.get();
  std::string got_server, got_client;
  OwnedFd server;
  sockaddr_in peer{};
  rt_.block_on([&]() -> Task<void> {
    auto [acc, conn] = co_await join(reactor::accept(lfd), reactor::connect(cfd, l.sa(), sizeof(l.addr)));
    EXPECT_TRUE(conn.ok()) << conn;
    if (!acc.ok()) {
      ADD_FAILURE() << acc.status();
      co_return;
    }
    server = std::move(acc->fd);
    EXPECT_EQ(acc->peer_len, sizeof(sockaddr_in));
    std::memcpy(&peer, &acc->peer, sizeof(peer));
    IoResult s1 = co_await reactor::send(cfd, bytes("ping"));
    EXPECT_EQ(s1.n.value_or(0), 4u);
    IoResult r1 = co_await reactor::recv(server.get(), std::vector<char>(64));
    got_server = str(r1);
    IoResult s2 = co_await reactor::send(server.get(), bytes("pong!"));
    EXPECT_EQ(s2.n.value_or(0), 5u);
    IoResult r2 = co_await reactor::recv(cfd, std::vector<char>(64));
    got_client = str(r2);
  }());
  EXPECT_EQ(got_server, "ping");
  EXPECT_EQ(got_client, "pong!");
  ASSERT_TRUE(server.valid());
  EXPECT_TRUE(::fcntl(server.get(), F_GETFD) & FD_CLOEXEC) << "accepted with SOCK_CLOEXEC";
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ASSERT_EQ(::getsockname(cfd, reinterpret_cast<sockaddr*>(&local), &len), 0);
  EXPECT_EQ(peer.sin_family, AF_INET);
  EXPECT_EQ(peer.sin_port, local.sin_port) << "the peer address is the client's";
  EXPECT_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

  // The peer shuts down its write side: recv gives 0.
  ASSERT_EQ(::shutdown(cfd, SHUT_WR), 0);
  IoResult eof = rt_.block_on(reactor::recv(server.get(), std::vector<char>(8)));
  ASSERT_TRUE(eof.n.ok()) << eof.n.status();
  EXPECT_EQ(*eof.n, 0u);
}

TEST_F(OpsTest, AcceptWithAConnectionAlreadyQueued) {
  Listener l = Listener::make();
  OwnedFd client = tcp_socket();
  ASSERT_EQ(::connect(client.get(), l.sa(), sizeof(l.addr)), 0);
  absl::StatusOr<reactor::Accepted> a = rt_.block_on(reactor::accept(l.fd.get()));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->fd.valid());
}

TEST_F(OpsTest, AcceptWokenByAConnectFromAnotherThread) {
  Listener l = Listener::make();
  OwnedFd client = tcp_socket();
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(::connect(client.get(), l.sa(), sizeof(l.addr)), 0);
  });
  absl::StatusOr<reactor::Accepted> a = rt_.block_on(reactor::accept(l.fd.get()));
  t.join();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->fd.valid());
}

TEST_F(OpsTest, ConnectToAClosedPortIsUnavailableWithEconnrefused) {
  // Bound but not listening: the port is ours, and a SYN to it gets a RST.
  Listener closed = Listener::make(/*listen=*/false);
  OwnedFd client = tcp_socket();
  absl::Status s = rt_.block_on(reactor::connect(client.get(), closed.sa(), sizeof(closed.addr)));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(errno_of(s), ECONNREFUSED) << s;
  EXPECT_NE(s.message().find("connect"), absl::string_view::npos) << s;
}

TEST_F(OpsTest, SendToAClosedPeerIsEpipeNotSigpipe) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  OwnedFd a(sv[0]);
  ::close(sv[1]);
  IoResult r = rt_.block_on(reactor::send(a.get(), bytes("x")));  // would kill us without MSG_NOSIGNAL
  ASSERT_FALSE(r.n.ok());
  EXPECT_EQ(errno_of(r.n.status()), EPIPE) << r.n.status();
  EXPECT_EQ(r.buf.size(), 1u);
}

TEST_F(OpsTest, PollAddReportsReadinessWokenFromAnotherThread) {
  Pipe p = Pipe::make();
  // A pipe's write end is writable at once.
  absl::StatusOr<uint32_t> out = rt_.block_on(reactor::poll_add(p.w.get(), POLLOUT));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(*out & POLLOUT);

  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(::write(p.w.get(), "z", 1), 1);
  });
  absl::StatusOr<uint32_t> in = rt_.block_on(reactor::poll_add(p.r.get(), POLLIN));
  writer.join();
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_TRUE(*in & POLLIN);
  char c;
  EXPECT_EQ(::read(p.r.get(), &c, 1), 1) << "poll_add consumed nothing";
}

TEST_F(OpsTest, KernelTimeoutOpIsNeverEarly) {
  const absl::Time start = absl::Now();
  absl::Status s = rt_.block_on(reactor::timeout(absl::Milliseconds(15)));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(15));
  // A negative length is a zero one.
  EXPECT_TRUE(rt_.block_on(reactor::timeout(absl::Milliseconds(-5))).ok());
}

TEST_F(OpsTest, CloseOpClosesTheFd) {
  const int baseline = testing::open_fd_count();
  int fd = ::dup(STDERR_FILENO);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(testing::open_fd_count(), baseline + 1);
  absl::Status s = rt_.block_on(reactor::close(OwnedFd(fd)));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(testing::open_fd_count(), baseline);
}

TEST_F(OpsTest, CloseOfABadFdIsEbadf) {
  int fd = ::dup(STDERR_FILENO);
  ASSERT_GE(fd, 0);
  ::close(fd);  // now stale (single-threaded here: nobody reuses it meanwhile)
  absl::Status s = rt_.block_on(reactor::close(OwnedFd(fd)));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(errno_of(s), EBADF) << s;
}

TEST_F(OpsTest, ManyOperationsInOneTickAllComplete) {
  // More than the SQ (256) in one poll: the driver flushes a full SQ.
  constexpr int kN = 600;
  std::vector<Pipe> pipes;
  for (int i = 0; i < 4; ++i) pipes.push_back(Pipe::make());
  int ok = rt_.block_on([&]() -> Task<int> {
    std::vector<JoinHandle<absl::Status>> hs;
    for (int i = 0; i < kN; ++i) hs.push_back(pollux::spawn(reactor::nop()));
    int n = 0;
    for (auto& h : hs) {
      JoinResult<absl::Status> r = co_await h;
      if (r.ok() && r.value().ok()) ++n;
    }
    co_return n;
  }());
  EXPECT_EQ(ok, kN);
}

TEST_F(OpsTest, SendmsgFromAnOffsetAndRecvmsgWithTheSendersAddress) {
  // Datagram sockets on 127.0.0.1: sendmsg to an address, recvmsg reports it.
  auto udp = [](sockaddr_in* addr) {
    OwnedFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    POLLUX_CHECK(fd.valid(), "socket");
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr->sin_port = 0;
    POLLUX_CHECK(::bind(fd.get(), reinterpret_cast<sockaddr*>(addr), sizeof(*addr)) == 0, "bind");
    socklen_t len = sizeof(*addr);
    POLLUX_CHECK(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(addr), &len) == 0, "name");
    return fd;
  };
  sockaddr_in a_addr{}, b_addr{};
  OwnedFd a = udp(&a_addr), b = udp(&b_addr);
  const int afd = a.get(), bfd = b.get();
  rt_.block_on([&]() -> Task<void> {
    IoResult w = co_await reactor::sendmsg(afd, bytes("skip:payload"), 5,
                                           reinterpret_cast<const sockaddr*>(&b_addr),
                                           sizeof(b_addr));
    EXPECT_EQ(w.n.value_or(0), 7u) << "only buf[offset..] is sent";
    EXPECT_EQ(w.buf.size(), 12u) << "the whole buffer comes back";
    reactor::RecvMsgResult r = co_await reactor::recvmsg(bfd, std::vector<char>(64));
    EXPECT_TRUE(r.n.ok()) << r.n.status();
    EXPECT_EQ(std::string(r.buf.data(), r.n.value_or(0)), "payload");
    EXPECT_EQ(r.from_len, sizeof(sockaddr_in));
    sockaddr_in from{};
    std::memcpy(&from, &r.from, sizeof(from));
    EXPECT_EQ(from.sin_port, a_addr.sin_port);
    EXPECT_FALSE(r.truncated);
    // A datagram longer than the buffer is truncated and flagged.
    w = co_await reactor::sendmsg(afd, bytes("0123456789"), 0,
                                  reinterpret_cast<const sockaddr*>(&b_addr), sizeof(b_addr));
    EXPECT_TRUE(w.n.ok());
    r = co_await reactor::recvmsg(bfd, std::vector<char>(3));
    EXPECT_EQ(r.n.value_or(0), 3u);
    EXPECT_TRUE(r.truncated);
  }());
}

TEST_F(OpsTest, SendmsgToAClosedPeerIsEpipeNotSigpipe) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  OwnedFd a(sv[0]);
  ::close(sv[1]);
  IoResult r = rt_.block_on(reactor::sendmsg(a.get(), bytes("xy")));
  ASSERT_FALSE(r.n.ok());
  EXPECT_EQ(errno_of(r.n.status()), EPIPE) << r.n.status();
  EXPECT_NE(r.n.status().message().find("sendmsg"), absl::string_view::npos) << r.n.status();
  EXPECT_EQ(r.buf.size(), 2u);
}

// ---- No runtime ----

absl::Status no_runtime_nop() {
  LocalExecutor ex;  // no io_uring driver on this thread
  return ex.block_on(reactor::nop());
}

TEST(OpsNoRuntime, OperationWithoutADriverIsFailedPreconditionNamingEnableIo) {
  absl::Status s = no_runtime_nop();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("enable_io"), absl::string_view::npos) << s;
}

TEST(OpsNoRuntime, ReadWithoutADriverHandsTheBufferBack) {
  LocalExecutor ex;
  Pipe p = Pipe::make();
  IoResult r = ex.block_on(reactor::read(p.r.get(), std::vector<char>(32)));
  ASSERT_FALSE(r.n.ok());
  EXPECT_EQ(r.n.status().code(), absl::StatusCode::kFailedPrecondition) << r.n.status();
  EXPECT_EQ(r.buf.size(), 32u) << "the buffer comes back in every case";
}

TEST(OpsNoRuntime, RecvmsgWithoutADriverHandsTheBufferBack) {
  LocalExecutor ex;
  reactor::RecvMsgResult r = ex.block_on(reactor::recvmsg(0, std::vector<char>(9)));
  EXPECT_EQ(r.n.status().code(), absl::StatusCode::kFailedPrecondition) << r.n.status();
  EXPECT_EQ(r.buf.size(), 9u);
  IoResult w = ex.block_on(reactor::sendmsg(1, std::vector<char>(5)));
  EXPECT_EQ(w.n.status().code(), absl::StatusCode::kFailedPrecondition) << w.n.status();
  EXPECT_EQ(w.buf.size(), 5u);
}

TEST(OpsNoRuntime, RuntimeWithoutIoGivesTheSameStatus) {
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_time().build();
  ASSERT_TRUE(rt.ok()) << rt.status();
  EXPECT_EQ(rt->io_backend(), nullptr);
  absl::StatusOr<uint32_t> s = rt->block_on(reactor::poll_add(0, POLLIN));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << s.status();
  EXPECT_NE(s.status().message().find("enable_io"), absl::string_view::npos) << s.status();
}

// An op dropped in the tick that prepared it, whose fd is then closed and
// reused by a new pipe before the tick submits, must not run on the new fd
// (a stale write would put its bytes into an unrelated stream).
TEST_F(OpsTest, OpDroppedBeforeSubmissionNeverRunsOnAReusedFd) {
  std::string leaked = rt_.block_on([&]() -> Task<std::string> {
    std::string got;
    for (int round = 0; round < 20; ++round) {
      Pipe old = Pipe::make();
      const int old_w = old.w.get();
      // select polls the write first (its SQE is prepared) and then the
      // ready future wins: the write is dropped in the same tick.
      auto r = co_await select(reactor::write(old_w, bytes("STALE")), ready(0));
      // On epoll the write is made at once, inside its first poll (so it
      // wins); nothing of it can be left for later.
      if (std::string(rt_.io_backend()->name()) != "epoll") {
        EXPECT_EQ(r.index, 1u);
      }
      old.r.reset();  // closes both ends before the tick submits, so the
      old.w.reset();  // new pipe gets the same two numbers, in the same order
      Pipe fresh = Pipe::make();
      EXPECT_EQ(fresh.w.get(), old_w) << "the fd number was not reused; the test proves nothing";
      // A tick boundary: whatever was queued is submitted.
      EXPECT_TRUE((co_await reactor::nop()).ok());
      // Whatever landed in the new pipe came from the stale write.
      ::fcntl(fresh.r.get(), F_SETFL, O_NONBLOCK);
      char buf[16];
      ssize_t n = ::read(fresh.r.get(), buf, sizeof(buf));
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
    co_return got;
  }());
  EXPECT_EQ(leaked, "") << "a dropped write ran on a reused fd";
}

// The same for an accept, whose result is an fd the driver closes when
// nobody claims it: the NOP that replaces it returns 0, which must not be
// taken for an fd (closing fd 0, and later whatever socket reuses it).
TEST_F(OpsTest, AcceptDroppedBeforeSubmissionClosesNoFd) {
  Listener l = Listener::make();
  // Make fd 0 something we can check is still open afterwards.
  const int saved_stdin = ::dup(0);
  Pipe p = Pipe::make();
  ASSERT_EQ(::dup2(p.r.get(), 0), 0);
  rt_.block_on([&]() -> Task<void> {
    for (int round = 0; round < 5; ++round) {
      auto r = co_await select(reactor::accept(l.fd.get()), ready(0));
      EXPECT_EQ(r.index, 1u);
      // Two ticks: the NOP that replaced the accept has completed by then.
      EXPECT_TRUE((co_await reactor::nop()).ok());
      EXPECT_TRUE((co_await reactor::nop()).ok());
    }
  }());
  EXPECT_NE(::fcntl(0, F_GETFD), -1) << "the driver closed fd 0";
  if (saved_stdin >= 0) {
    ::dup2(saved_stdin, 0);
    ::close(saved_stdin);
  }
}

}  // namespace
}  // namespace pollux
