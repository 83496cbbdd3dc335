// Tests of the epoll backend itself (everything backend-neutral also runs on
// it: the *_epoll test targets). Here: the edges a readiness backend can
// lose, and its own rules.
//
// - A peer (another thread) that answers the instant a byte arrives, so its
//   reply lands exactly while the task re-arms its read, over the two halves
//   of a split stream that share one registration: 100,000 rounds, no lost
//   edge (a lost one hangs the round; the timeout turns that into a failure).
// - Registrations: one per socket, gone (EPOLL_CTL_DEL) when the socket is,
//   including when its last owner is dropped on another thread; a fd number
//   reused by a pipe is never taken for the old socket.
// - Fds pollux did not create: a blocking pipe is never read on speculation
//   (the runtime's thread never blocks), and its O_NONBLOCK is left alone.
// - A positional read on a FIFO (not seekable) reads the stream, as io_uring.
// - recv/send on a ready registration complete without an op slot.
// - Shutdown with a file job stuck on the pool: given up on after the drain
//   timeout, its memory kept and reported, never freed under it.
#include "reactor/epoll/epoll_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "fs/file.h"
#include "future/join.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/sanitizers.h"
#include "tests/seccomp.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace pollux::reactor {
namespace {

using net::SocketAddr;
using net::TcpListener;
using net::TcpStream;

Runtime make_epoll_runtime() {
  absl::StatusOr<Runtime> rt =
      Runtime::Builder().current_thread().enable_all().backend(BackendKind::kEpoll).build();
  POLLUX_CHECK(rt.ok(), "building the epoll runtime");
  return std::move(*rt);
}

EpollBackend& epoll_of(Runtime& rt) {
  // SAFETY: the runtime was built with BackendKind::kEpoll.
  return *static_cast<EpollBackend*>(rt.io_backend());
}

// A connected pair: `ours` is pollux's, `peer` a plain blocking socket for
// another thread.
struct Pair {
  TcpStream ours;
  OwnedFd peer;
};

Task<absl::StatusOr<Pair>> make_pair_via(TcpListener& l) {
  OwnedFd peer(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (::connect(peer.get(), l.local_addr().as_sockaddr(), l.local_addr().len()) != 0) {
    co_return absl::InternalError("connect");
  }
  auto a = co_await l.accept();
  if (!a.ok()) co_return a.status();
  co_return Pair{std::move(a->first), std::move(peer)};
}

class EpollBackendTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(rt_.io_backend()->live_ops(), 0u) << "an op slot is still live after the test";
  }
  Runtime rt_ = make_epoll_runtime();
  testing::Watchdog dog_{std::chrono::seconds(90), "epoll backend test"};
};

TEST_F(EpollBackendTest, ItIsEpoll) {
  EXPECT_STREQ(rt_.io_backend()->name(), "epoll");
  EXPECT_EQ(rt_.backend().kind, BackendKind::kEpoll);
}

// The peer echoes each byte the instant it arrives; the task writes a byte
// on the write half and reads the echo on the read half, so the echo lands
// while the read is being (re-)armed: read -> EAGAIN -> clear -> wait. A
// clear that ignored the tick, or a re-check that was missing, would sleep
// through the echo's edge and hang the round.
TEST_F(EpollBackendTest, APeerThatAnswersAsTheTaskReArmsNeverLosesAnEdge) {
  constexpr int kRounds = 100'000;
  absl::StatusOr<TcpListener> l = TcpListener::bind(SocketAddr::ipv4_loopback(0));
  ASSERT_TRUE(l.ok()) << l.status();
  absl::StatusOr<Pair> pair = rt_.block_on(make_pair_via(*l));
  ASSERT_TRUE(pair.ok()) << pair.status();
  const int peer = pair->peer.get();
  std::thread echo([peer] {
    char b;
    while (::read(peer, &b, 1) == 1) {
      if (::write(peer, &b, 1) != 1) break;
    }
  });
  ASSERT_TRUE(pair->ours.set_nodelay(true).ok());
  auto [rd, wr] = std::move(pair->ours).split();
  absl::StatusOr<int> rounds = rt_.block_on(pollux::timeout(
      [&, rd = std::move(rd), wr = std::move(wr)]() mutable -> Task<int> {
        std::vector<char> out(1), in(1);
        int done = 0;
        for (; done < kRounds; ++done) {
          out[0] = static_cast<char>(done);
          IoResult w = co_await wr.write(std::move(out));
          out = std::move(w.buf);
          if (!w.n.ok() || *w.n != 1) break;
          IoResult r = co_await rd.read(std::move(in));
          in = std::move(r.buf);
          if (!r.n.ok() || *r.n != 1 || in[0] != static_cast<char>(done)) break;
        }
        wr.shutdown_write().IgnoreError();
        co_return done;
      }(),
      absl::Seconds(60)));
  echo.join();
  ASSERT_TRUE(rounds.ok()) << "a round hung: an edge was lost (" << rounds.status() << ")";
  EXPECT_EQ(*rounds, kRounds);
}

// The same race from both directions at once: two connections, each with a
// reader and a writer task on its split halves, against echoing peers.
TEST_F(EpollBackendTest, SplitHalvesOfManyStreamsRaceTheirPeers) {
  constexpr int kStreams = 8;
  static constexpr int kRounds = 5'000;
  absl::StatusOr<TcpListener> l = TcpListener::bind(SocketAddr::ipv4_loopback(0));
  ASSERT_TRUE(l.ok()) << l.status();
  std::vector<std::thread> peers;
  absl::Status s = rt_.block_on(pollux::timeout(
      [&]() -> Task<absl::Status> {
        std::vector<JoinHandle<int>> tasks;
        for (int i = 0; i < kStreams; ++i) {
          absl::StatusOr<Pair> pair = co_await make_pair_via(*l);
          if (!pair.ok()) co_return pair.status();
          const int peer = pair->peer.release();
          peers.emplace_back([peer] {
            char b[64];
            for (;;) {
              const ssize_t n = ::read(peer, b, sizeof(b));
              if (n <= 0 || ::write(peer, b, static_cast<size_t>(n)) != n) break;
            }
            ::close(peer);
          });
          auto [rd, wr] = std::move(pair->ours).split();
          tasks.push_back(pollux::spawn([wr = std::move(wr)]() mutable -> Task<int> {
            std::vector<char> b(1, 'x');
            for (int k = 0; k < kRounds; ++k) {
              IoResult w = co_await wr.write(std::move(b));
              b = std::move(w.buf);
              if (!w.n.ok()) co_return k;
              if (k % 16 == 0) co_await pollux::sleep(absl::ZeroDuration());
            }
            wr.shutdown_write().IgnoreError();
            co_return kRounds;
          }));
          tasks.push_back(pollux::spawn([rd = std::move(rd)]() mutable -> Task<int> {
            int got = 0;
            std::vector<char> b(7);
            while (got < kRounds) {
              IoResult r = co_await rd.read(std::move(b));
              b = std::move(r.buf);
              if (!r.n.ok() || *r.n == 0) break;
              got += static_cast<int>(*r.n);
            }
            co_return got;
          }));
        }
        for (JoinHandle<int>& t : tasks) {
          JoinResult<int> r = co_await std::move(t);
          if (!r.ok() || r.value() != kRounds) co_return absl::DataLossError("a stream fell short");
        }
        co_return absl::OkStatus();
      }(),
      absl::Seconds(60)));
  for (std::thread& t : peers) t.join();
  EXPECT_TRUE(s.ok()) << s;
}

// Clear only your own direction: a read half that drains its socket (a
// short read) and then waits must not take the write half's readiness with
// it (no write edge would ever come: an idle socket stays writable).
TEST_F(EpollBackendTest, AWaitingReadHalfNeverStallsTheWriteHalf) {
  constexpr int kMessages = 1000;
  absl::StatusOr<TcpListener> l = TcpListener::bind(SocketAddr::ipv4_loopback(0));
  ASSERT_TRUE(l.ok()) << l.status();
  absl::StatusOr<Pair> pair = rt_.block_on(make_pair_via(*l));
  ASSERT_TRUE(pair.ok()) << pair.status();
  const int peer = pair->peer.get();
  std::atomic<bool> reader_waits{false};
  std::thread sink([&] {
    // Once the read half waits (registered), one byte: its read is short.
    while (!reader_waits.load()) std::this_thread::yield();
    EXPECT_EQ(::write(peer, "x", 1), 1);
    char b[4096];
    size_t got = 0;
    while (got < kMessages * 10) {
      const ssize_t n = ::read(peer, b, sizeof(b));
      if (n <= 0) return;
      got += static_cast<size_t>(n);
    }
    EXPECT_EQ(::write(peer, "!", 1), 1);  // now the reader may finish
  });
  auto [rd, wr] = std::move(pair->ours).split();
  absl::Status s = rt_.block_on(pollux::timeout(
      [&, rd = std::move(rd), wr = std::move(wr)]() mutable -> Task<absl::Status> {
        bool first_read = false;
        JoinHandle<std::string> reader = pollux::spawn([&]() -> Task<std::string> {
          std::string out;
          for (int i = 0; i < 2; ++i) {
            IoResult r = co_await rd.read(std::vector<char>(8));  // short: 1 byte each
            if (!r.n.ok()) co_return r.n.status().ToString();
            out.append(r.buf.data(), *r.n);
            first_read = true;
          }
          co_return out;
        });
        co_await pollux::sleep(absl::Milliseconds(1));  // the first read waits now
        reader_waits.store(true);
        while (!first_read) co_await pollux::sleep(absl::Milliseconds(1));
        co_await pollux::sleep(absl::Milliseconds(1));  // the second read waits now
        std::vector<char> b(10, 'w');
        for (int i = 0; i < kMessages; ++i) {
          IoResult w = co_await wr.write(std::move(b));
          b = std::move(w.buf);
          if (!w.n.ok() || *w.n != 10) co_return absl::DataLossError("short write");
        }
        JoinResult<std::string> got = co_await std::move(reader);
        if (!got.ok() || got.value() != "x!") co_return absl::DataLossError("reader");
        co_return absl::OkStatus();
      }(),
      absl::Seconds(10)));
  sink.join();
  EXPECT_TRUE(s.ok()) << "the write half stalled: " << s;
}

// One registration per socket, shared by both halves, and none left once
// the sockets are gone: also when the last owner goes on another thread.
TEST_F(EpollBackendTest, RegistrationsLiveAsLongAsTheirSocketsWhereverTheyAreDropped) {
  EpollBackend& ep = epoll_of(rt_);
  const size_t before = ep.registered_fds();
  absl::StatusOr<TcpListener> l = TcpListener::bind(SocketAddr::ipv4_loopback(0));
  ASSERT_TRUE(l.ok()) << l.status();
  std::vector<TcpStream> keep;
  rt_.block_on([&]() -> Task<void> {
    // An accept with nobody connecting registers the listener.
    auto idle = co_await pollux::timeout(l->accept(), absl::Milliseconds(1));
    EXPECT_FALSE(idle.ok());
    for (int i = 0; i < 50; ++i) {
      absl::StatusOr<Pair> pair = co_await make_pair_via(*l);
      if (!pair.ok()) {
        ADD_FAILURE() << pair.status();
        co_return;
      }
      // A read with nothing to read registers the socket; the write half
      // then writes through the same registration.
      auto [rd, wr] = std::move(pair->ours).split();
      auto r = co_await pollux::timeout(rd.read(std::vector<char>(8)), absl::Milliseconds(1));
      EXPECT_FALSE(r.ok());
      IoResult w = co_await wr.write(std::vector<char>(4, 'w'));
      EXPECT_TRUE(w.n.ok());
    }
    // Fifty more, registered and then handed to another thread to drop.
    for (int i = 0; i < 50; ++i) {
      absl::StatusOr<Pair> pair = co_await make_pair_via(*l);
      if (!pair.ok()) co_return;
      auto r = co_await pollux::timeout(pair->ours.read(std::vector<char>(8)), absl::Milliseconds(1));
      EXPECT_FALSE(r.ok());
      keep.push_back(std::move(pair->ours));
    }
  }());
  // The listener and the fifty kept streams; the fifty split ones are gone.
  EXPECT_EQ(ep.registered_fds(), before + 51);
  std::thread dropper([&] { keep.clear(); });  // EPOLL_CTL_DEL on this other thread
  dropper.join();
  // The backend frees their ScheduledIo at its next park. A 1 ms sleep
  // need not park at all (on a loaded machine it may be due by its first
  // poll), so sleep until it did, within a bound.
  auto tick_until = [&](size_t want) {
    for (int i = 0; i < 1000 && ep.registered_fds() != want; ++i) {
      rt_.block_on(pollux::sleep(absl::Milliseconds(1)));
    }
  };
  tick_until(before + 1);
  EXPECT_EQ(ep.registered_fds(), before + 1) << "only the listener's should remain";
  l = absl::InternalError("dropped");
  tick_until(before);
  EXPECT_EQ(ep.registered_fds(), before);
  EXPECT_GT(ep.epoll_stats().deregistrations, 0u);
}

// A socket's fd number reused by a pipe: the pipe must never be mistaken for
// the socket's registration (its epoch differs), and reads on it just work.
TEST_F(EpollBackendTest, AReusedFdNumberNeverFindsTheOldRegistration) {
  absl::StatusOr<TcpListener> l = TcpListener::bind(SocketAddr::ipv4_loopback(0));
  ASSERT_TRUE(l.ok()) << l.status();
  for (int round = 0; round < 20; ++round) {
    int old_fd = -1;
    rt_.block_on([&]() -> Task<void> {
      absl::StatusOr<Pair> pair = co_await make_pair_via(*l);
      if (!pair.ok()) co_return;
      old_fd = pair->ours.fd();
      auto r = co_await pollux::timeout(pair->ours.read(std::vector<char>(8)), absl::Milliseconds(1));
      EXPECT_FALSE(r.ok());  // registered, waiting, dropped
    }());
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    OwnedFd r(p[0]), w(p[1]);
    if (r.get() != old_fd && w.get() != old_fd) continue;  // not reused this time
    const int reused = r.get() == old_fd ? r.get() : w.get();
    std::string got = rt_.block_on([&]() -> Task<std::string> {
      std::thread later([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        EXPECT_EQ(::write(w.get(), "ok", 2), 2);
      });
      auto rd = co_await pollux::timeout(reactor::read(r.get(), std::vector<char>(8)),
                                         absl::Seconds(5));
      later.join();
      if (!rd.ok()) co_return rd.status().ToString();
      co_return rd->n.ok() ? std::string(rd->buf.data(), *rd->n) : rd->n.status().ToString();
    }());
    EXPECT_EQ(got, "ok") << "fd " << reused << " reused from a socket";
  }
}

// The slot-free try-first (Backend::try_recv_send_now): only on a
// registration this backend has and whose word says ready; a short recv
// clears the direction, so the next try makes no syscall and says no; an fd
// it has never seen says no (the op's slow path registers it).
TEST_F(EpollBackendTest, ARecvOrSendOnAReadyRegistrationCompletesWithoutASlot) {
  absl::StatusOr<TcpListener> l = TcpListener::bind(SocketAddr::ipv4_loopback(0));
  ASSERT_TRUE(l.ok()) << l.status();
  rt_.block_on([&]() -> Task<void> {
    absl::StatusOr<Pair> pair = co_await make_pair_via(*l);
    EXPECT_TRUE(pair.ok());
    if (!pair.ok()) co_return;
    EpollBackend& b = epoll_of(rt_);
    const int fd = pair->ours.fd();
    std::vector<char> buf(8);
    int32_t res = -1;
    EXPECT_FALSE(b.try_recv_send_now(false, fd, buf, 0, buf.size(), 0, &res))
        << "an fd the backend has not registered";
    // Registered, waiting, dropped: the recv had no effect.
    auto r = co_await pollux::timeout(pair->ours.read(std::vector<char>(8)), absl::Milliseconds(1));
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(::send(pair->peer.get(), "hi", 2, 0), 2);
    co_await pollux::sleep(absl::Milliseconds(5));  // the event reaches the word
    const size_t live = b.live_ops();
    const bool recv_done = b.try_recv_send_now(false, fd, buf, 0, buf.size(), 0, &res);
    EXPECT_TRUE(recv_done);
    if (!recv_done) co_return;
    EXPECT_EQ(res, 2);
    EXPECT_EQ(std::string(buf.data(), 2), "hi");
    EXPECT_EQ(buf.size(), 8u) << "the buffer stays the caller's";
    EXPECT_EQ(b.live_ops(), live) << "no slot was taken";
    // Short: the read direction is clear, so no syscall, and no.
    EXPECT_FALSE(b.try_recv_send_now(false, fd, buf, 0, buf.size(), 0, &res));
    std::vector<char> out{'o', 'k'};
    const bool send_done = b.try_recv_send_now(true, fd, out, 0, out.size(), 0, &res);
    EXPECT_TRUE(send_done);
    if (!send_done) co_return;
    EXPECT_EQ(res, 2);
    char got[2] = {};
    EXPECT_EQ(::recv(pair->peer.get(), got, 2, MSG_WAITALL), 2);
    EXPECT_EQ(std::string(got, 2), "ok");
    // Through the futures: a read that waits, then completes.
    EXPECT_EQ(::send(pair->peer.get(), "x", 1, 0), 1);
    IoResult rd = co_await pair->ours.read(std::vector<char>(8));
    EXPECT_TRUE(rd.n.ok() && *rd.n == 1);
  }());
}

// A blocking pipe (no O_NONBLOCK, and pollux must not set it): an empty
// read waits without blocking the runtime's thread (a timer fires
// meanwhile), the flag is untouched, and data wakes it.
TEST_F(EpollBackendTest, ABlockingPipeIsNeverReadOnSpeculation) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  OwnedFd r(p[0]), w(p[1]);
  const int flags_before = ::fcntl(r.get(), F_GETFL);
  std::string got = rt_.block_on([&]() -> Task<std::string> {
    bool timer_fired = false;
    JoinHandle<void> t = pollux::spawn([&]() -> Task<void> {
      co_await pollux::sleep(absl::Milliseconds(5));
      timer_fired = true;
      EXPECT_EQ(::write(w.get(), "late", 4), 4);
    });
    IoResult rd = co_await reactor::read(r.get(), std::vector<char>(16));
    EXPECT_TRUE(timer_fired) << "the read returned before anything was written";
    EXPECT_TRUE((co_await std::move(t)).ok());
    co_return rd.n.ok() ? std::string(rd.buf.data(), *rd.n) : rd.n.status().ToString();
  }());
  EXPECT_EQ(got, "late");
  EXPECT_EQ(::fcntl(r.get(), F_GETFL), flags_before) << "O_NONBLOCK was changed";
}

// A positional read on a FIFO: not seekable, so the offset is ignored (as
// io_uring does) and the read takes what the pipe holds.
TEST_F(EpollBackendTest, APositionalReadOnAFifoReadsTheStream) {
  char dir_tmpl[] = "/tmp/pollux_epoll_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_tmpl), nullptr);
  const std::string path = std::string(dir_tmpl) + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  OwnedFd fifo(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fifo.valid());
  ASSERT_EQ(::write(fifo.get(), "fifo!", 5), 5);
  IoResult r = rt_.block_on(reactor::read(fifo.get(), std::vector<char>(16), /*offset=*/0));
  ASSERT_TRUE(r.n.ok()) << r.n.status();
  EXPECT_EQ(std::string(r.buf.data(), *r.n), "fifo!");
  ::unlink(path.c_str());
  ::rmdir(dir_tmpl);
}

// Shutdown while a file job is stuck on the pool (opening a FIFO for
// reading blocks until a writer comes): the backend gives up after its
// drain timeout, reports the job and keeps its memory; the pool's threads
// are joined once the job can finish. In a child, to read its stderr.
int stuck_job_child(void* arg) {
  const std::string* fifo = static_cast<const std::string*>(arg);
  reactor::IoUringOptions o;
  o.drain_timeout = absl::Milliseconds(50);  // the epoll backend uses it too
  absl::StatusOr<Runtime> rt = Runtime::Builder()
                                   .current_thread()
                                   .enable_all()
                                   .backend(BackendKind::kEpoll)
                                   .io_uring_options(o)
                                   .build();
  if (!rt.ok()) return 2;
  rt->block_on([&]() -> Task<void> {
    // 200 ms, not less: the job must be inside its open(2) when the future
    // is dropped (a job dropped before a pool thread took it never runs).
    auto opened = co_await pollux::timeout(fs::File::open(*fifo), absl::Milliseconds(200));
    if (opened.ok()) std::printf("the FIFO opened without a writer?\n");
  }());
  // Unblock the job later, so the pool can be joined when the runtime goes.
  // Non-blocking opens in a bounded loop: should the job never have opened
  // the FIFO for reading, a blocking open here would wait forever (ENXIO
  // instead, and the test reports the missing job).
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (int i = 0; i < 500; ++i) {
      const int fd = ::open(fifo->c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ::close(fd);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  const absl::Time start = absl::Now();
  rt = absl::InternalError("dropped");  // ~Runtime: drain (50 ms), then join the pool
  std::printf("runtime dropped after %lld ms\n",
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start)));
  writer.join();
  return 0;
}

TEST(EpollShutdownTest, AStuckFileJobIsGivenUpOnAndItsMemoryKept) {
#if defined(POLLUX_TESTS_TSAN)
  GTEST_SKIP() << "forks a child: ThreadSanitizer cannot start threads after a multi-threaded fork";
#endif
  testing::Watchdog dog(std::chrono::seconds(30), "stuck job shutdown");
  char dir_tmpl[] = "/tmp/pollux_epoll_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_tmpl), nullptr);
  std::string fifo = std::string(dir_tmpl) + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  testing::ChildResult c = testing::run_in_child(stuck_job_child, &fifo);
  ::unlink(fifo.c_str());
  ::rmdir(dir_tmpl);
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_NE(c.err.find("1 epoll file operation(s) were still running on the blocking pool"),
            std::string::npos)
      << c.err;
  EXPECT_NE(c.out.find("runtime dropped after"), std::string::npos) << c.out;
}

}  // namespace
}  // namespace pollux::reactor
