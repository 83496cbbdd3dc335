// Cancellation matrix (issue 16, DESIGN §10): every operation future x drop
// point, on the backend and flavour this target names (cc_test_every_flavour:
// io_uring and epoll on current_thread, multi_thread(2), thread_per_core(2)).
//
// Drop points:
//   before     created, dropped before its first poll;
//   pending    dropped right after a first poll that returned Pending (io_uring:
//              its SQE is prepared but not yet submitted; a sync future: it is
//              queued as a waiter);
//   in flight  dropped after a few more ticks without being polled (io_uring:
//              the kernel has it; epoll: it waits for readiness). For a sync
//              future or a Sleep this is the same state as "pending": n/a;
//   completed  the event it waits for has happened (data written, permit
//              released, timer due) and its waker fired, but it was not polled
//              again. epoll makes the syscall of a read/write/recv/send/accept
//              only in its poll, so there it is "ready, not polled".
//
// Each cell runs in its own block_on and then checks, from the test thread:
// no live op slot (tests/flavour.h live_ops, after a bounded drain), no fd
// (tests/fd_count.h), no task cell and no counted value left; and, inside the
// task, what the future's "Cancellation:" paragraph promises (a dropped read
// on epoll consumed nothing, a dropped acquire gave its permit back, a dropped
// mpsc recv lost no message, ...). The table is printed in the test log:
// "pass", "n/a: why", or "FAIL: what".
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/future.h"
#include "future/task.h"
#include "fs/file.h"
#include "future/waker.h"
#include "gtest/gtest.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "sync/barrier.h"
#include "sync/broadcast.h"
#include "sync/cancellation_token.h"
#include "sync/mpsc.h"
#include "sync/mutex.h"
#include "sync/notify.h"
#include "sync/oneshot.h"
#include "sync/rwlock.h"
#include "sync/semaphore.h"
#include "sync/watch.h"
#include "tests/fd_count.h"
#include "tests/flavour.h"
#include "tests/sanitizers.h"
#include "timer/sleep.h"

namespace pollux {
namespace {

enum class Drop { kBefore, kPending, kInFlight, kCompleted };
constexpr Drop kDrops[] = {Drop::kBefore, Drop::kPending, Drop::kInFlight, Drop::kCompleted};
constexpr const char* kDropNames[] = {"before first poll", "pending (1st poll)", "in flight",
                                      "completed, unpolled"};

struct Counted {
  static inline std::atomic<int> live{0};
  int v = 0;
  explicit Counted(int x = 0) : v(x) { live.fetch_add(1); }
  Counted(const Counted& o) : v(o.v) { live.fetch_add(1); }
  Counted(Counted&& o) noexcept : v(o.v) { live.fetch_add(1); }
  Counted& operator=(const Counted&) = default;
  ~Counted() { live.fetch_sub(1); }
};

// A waker that only records that it was woken. The flags live for the whole
// process: a backend may hold a clone until the kernel is done with a
// cancelled op, after the cell is over.
std::atomic<bool> g_flags[1024];
std::atomic<int> g_next_flag{0};

Waker flag_waker(std::atomic<bool>* f) {
  static const WakerVTable kVTable = {
      [](void* d) noexcept { return Waker::from_raw(d, &kVTable); },
      [](void* d) noexcept { static_cast<std::atomic<bool>*>(d)->store(true); },
      [](void* d) noexcept { static_cast<std::atomic<bool>*>(d)->store(true); },
      [](void*) noexcept {},
  };
  return Waker::from_raw(f, &kVTable);
}

// Polls *f once with the flag's waker; Ready(true) if *f was Ready (its
// output is dropped at once).
template <class F>
struct PollWith {
  using Output = bool;
  F* f;
  const Waker* w;
  Poll<bool> poll(Context& cx) {
    Context child = cx.with_waker(*w);
    return Ready<bool>(f->poll(child).is_ready());
  }
};

// Builds a future in place from a maker's prvalue (futures need not move).
template <class Make>
struct Build {
  Make& make;
  operator std::invoke_result_t<Make&>() { return make(); }  // NOLINT
};

bool on_epoll() {
  reactor::Backend* b = reactor::current_backend();
  return b != nullptr && std::string_view(b->name()) == "epoll";
}

// Ticks until `flag` is set (bounded); true if it was.
Task<bool> wait_flag(std::atomic<bool>* flag) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!flag->load()) {
    if (std::chrono::steady_clock::now() > until) co_return false;
    co_await yield_now();
  }
  co_return true;
}

// One row of the matrix: how to make the future, what makes it complete,
// and what must hold after it is dropped at `d` ("" when it holds).
struct Row {
  std::string name;
  std::string invariant;
  // Runs the whole cell inside the runtime; returns "pass", "n/a: ..." or
  // "FAIL: ...".
  std::function<Task<std::string>(Drop)> cell;
  bool sync_like = false;  // "in flight" is the same as "pending" for it
};

// The generic driver. `make()` builds the future; `complete()` makes the
// event happen; `check(d, polled_ready)` checks the promise after the drop.
template <class Make, class Complete, class Check>
Task<std::string> drive(Drop d, bool sync_like, Make make, Complete complete, Check check) {
  using F = std::invoke_result_t<Make&>;
  std::atomic<bool>* flag = &g_flags[g_next_flag.fetch_add(1) % 1024];
  flag->store(false);
  const Waker w = flag_waker(flag);
  std::optional<F> f;
  f.emplace(Build<Make>{make});
  if (d != Drop::kBefore) {
    const bool ready = co_await PollWith<F>{&*f, &w};
    if (ready) {
      f.reset();
      co_return "n/a: completes in its first poll here";
    }
    if (d == Drop::kInFlight) {
      if (sync_like) {
        f.reset();
        co_return "n/a: a waiter is queued at its first poll (= pending)";
      }
      for (int i = 0; i < 3; ++i) co_await yield_now();
      if (flag->load()) {
        f.reset();
        co_return "n/a: completed on its own before the drop (no in-flight window)";
      }
    }
    if (d == Drop::kCompleted) {
      complete();
      if (!co_await wait_flag(flag)) {
        f.reset();
        co_return "FAIL: its waker never fired after the event";
      }
    }
  }
  f.reset();
  std::string bad = check(d);
  co_return bad.empty() ? std::string("pass") : "FAIL: " + bad;
}

// ---- Helpers for fds ----

// Bytes readable now from a non-blocking fd (reads them).
size_t drain(int fd, char only = 0, size_t* matching = nullptr) {
  char buf[4096];
  size_t n = 0;
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) break;
    n += static_cast<size_t>(r);
    if (matching != nullptr) {
      for (ssize_t i = 0; i < r; ++i) *matching += buf[i] == only;
    }
  }
  return n;
}

// Fills a non-blocking pipe or socket until EAGAIN; returns how much.
size_t fill(int fd) {
  std::vector<char> junk(65536, 'f');
  size_t n = 0;
  for (;;) {
    const ssize_t r = ::write(fd, junk.data(), junk.size());
    if (r <= 0) break;
    n += static_cast<size_t>(r);
  }
  return n;
}

struct Fds {
  std::vector<int> fds;
  ~Fds() {
    for (int fd : fds) ::close(fd);
  }
  int add(int fd) {
    fds.push_back(fd);
    return fd;
  }
};

std::string expect(bool ok, const std::string& what) { return ok ? "" : what; }

// ---- Rows: I/O operations ----

Task<std::string> read_cell(Drop d) {
  Fds fds;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) co_return "FAIL: pipe";
  fds.add(p[0]);
  fds.add(p[1]);
  const bool epoll = on_epoll();
  co_return co_await drive(
      d, false, [&] { return reactor::read(p[0], std::vector<char>(4)); },
      [&] { (void)::write(p[1], "dddd", 4); },
      [&](Drop d) {
        (void)::write(p[1], "x", 1);
        const size_t left = drain(p[0]);
        const size_t written = (d == Drop::kCompleted ? 4 : 0) + 1;
        if (epoll) return expect(left == written, "epoll: a dropped read consumed data");
        if (d <= Drop::kPending) return expect(left == written, "unsubmitted read consumed data");
        if (d == Drop::kCompleted) return expect(left == 1, "io_uring: read neither consumed its 4 bytes");
        return expect(left <= 1, "read left too much");
      });
}

Task<std::string> write_cell(Drop d) {
  Fds fds;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) co_return "FAIL: pipe";
  fds.add(p[0]);
  fds.add(p[1]);
  fill(p[1]);
  const bool epoll = on_epoll();
  co_return co_await drive(
      d, false, [&] { return reactor::write(p[1], std::vector<char>(100, 'w')); },
      [&] { char b[65536]; (void)::read(p[0], b, sizeof b); },
      [&](Drop d) {
        size_t w = 0;
        drain(p[0], 'w', &w);
        if (epoll || d <= Drop::kPending) return expect(w == 0, "a dropped write wrote");
        return expect(w == 0 || w == 100, "a dropped write wrote part");
      });
}

Task<std::string> recv_cell(Drop d) {
  Fds fds;
  int s[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) != 0) {
    co_return "FAIL: socketpair";
  }
  fds.add(s[0]);
  fds.add(s[1]);
  const bool epoll = on_epoll();
  co_return co_await drive(
      d, false, [&] { return reactor::recv(s[0], std::vector<char>(4)); },
      [&] { (void)::send(s[1], "dddd", 4, 0); },
      [&](Drop d) {
        (void)::send(s[1], "x", 1, 0);
        const size_t left = drain(s[0]);
        const size_t sent = (d == Drop::kCompleted ? 4 : 0) + 1;
        if (epoll || d <= Drop::kPending) return expect(left == sent, "a dropped recv consumed data");
        if (d == Drop::kCompleted) return expect(left == 1, "io_uring: recv did not take its 4 bytes");
        return expect(left <= 1, "recv left too much");
      });
}

Task<std::string> send_cell(Drop d) {
  Fds fds;
  int s[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s) != 0) {
    co_return "FAIL: socketpair";
  }
  fds.add(s[0]);
  fds.add(s[1]);
  fill(s[0]);
  const bool epoll = on_epoll();
  co_return co_await drive(
      d, false, [&] { return reactor::send(s[0], std::vector<char>(100, 'w')); },
      [&] { drain(s[1]); },
      [&](Drop d) {
        size_t w = 0;
        drain(s[1], 'w', &w);
        if (epoll || d <= Drop::kPending) return expect(w == 0, "a dropped send sent");
        return expect(w <= 100, "a dropped send sent too much");
      });
}

// A listening TCP socket on 127.0.0.1, non-blocking; its port in *port.
int listener(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

int connect_to(uint16_t port, bool nonblocking) {
  const int fd =
      ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  return fd;
}

Task<std::string> accept_cell(Drop d) {
  Fds fds;
  uint16_t port = 0;
  const int l = listener(&port);
  if (l < 0) co_return "FAIL: listen";
  fds.add(l);
  const bool epoll = on_epoll();
  co_return co_await drive(
      d, false, [&] { return reactor::accept(l); },
      [&] { fds.add(connect_to(port, false)); },
      [&](Drop d) {
        if (d != Drop::kCompleted) fds.add(connect_to(port, false));
        // Give the kernel a moment to queue (or io_uring to take) it.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        const int got = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
        if (got >= 0) fds.add(got);
        if (epoll || d <= Drop::kPending) {
          return expect(got >= 0, "a dropped accept took the connection");
        }
        if (d == Drop::kCompleted) {
          // io_uring accepted it; the backend closes that fd (checked by the
          // fd count after the cell).
          return expect(got < 0, "io_uring: the completed accept left the connection queued");
        }
        return std::string();
      });
}

Task<std::string> connect_cell(Drop d) {
  Fds fds;
  uint16_t port = 0;
  const int l = listener(&port);
  if (l < 0) co_return "FAIL: listen";
  fds.add(l);
  const int c = fds.add(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  co_return co_await drive(
      d, false,
      [&] { return reactor::connect(c, reinterpret_cast<const sockaddr*>(&a), sizeof a); },
      [] {},
      // "a dropped connect may still have connected; the socket stays the
      // caller's": it is still open (closed by Fds, counted after the cell).
      [&](Drop) { return expect(::fcntl(c, F_GETFD) >= 0, "the socket was closed"); });
}

Task<std::string> nop_cell(Drop d) {
  co_return co_await drive(d, false, [] { return reactor::nop(); }, [] {},
                           [](Drop) { return std::string(); });
}

Task<std::string> poll_add_cell(Drop d) {
  Fds fds;
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) co_return "FAIL: pipe";
  fds.add(p[0]);
  fds.add(p[1]);
  co_return co_await drive(
      d, false, [&] { return reactor::poll_add(p[0], POLLIN); },
      [&] { (void)::write(p[1], "x", 1); },
      [&](Drop d) {
        // "no effect on either backend": the byte is still there.
        const size_t left = drain(p[0]);
        return expect(left == (d == Drop::kCompleted ? 1u : 0u), "poll_add consumed data");
      });
}

struct TempFile {
  int fd = -1;
  TempFile() {
    char path[] = "/tmp/pollux_cancel_matrix_XXXXXX";
    fd = ::mkostemp(path, O_CLOEXEC);
    ::unlink(path);
  }
  ~TempFile() { ::close(fd); }
};

Task<std::string> fsync_cell(Drop d) {
  TempFile f;
  co_return co_await drive(d, false, [&] { return reactor::fsync(f.fd); }, [] {},
                           [](Drop) { return std::string(); });
}

Task<std::string> statx_cell(Drop d) {
  const std::string root = "/";
  co_return co_await drive(d, false, [&] { return reactor::statx(AT_FDCWD, root, 0); }, [] {},
                           [](Drop) { return std::string(); });
}

Task<std::string> sleep_cell(Drop d) {
  // completed: a short sleep whose waker fires; otherwise a long one.
  const absl::Duration len = d == Drop::kCompleted ? absl::Milliseconds(1) : absl::Seconds(30);
  co_return co_await drive(d, true, [&] { return sleep(len); }, [] {},
                           [](Drop) { return std::string(); });
}

// ---- Rows: the net/ and fs/ wrappers ----

// A connected TCP pair on 127.0.0.1 and its listener.
struct TcpPair {
  std::optional<net::TcpListener> listener;
  std::optional<net::TcpStream> a, b;
};

Task<std::string> tcp_pair(TcpPair* p) {
  absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(net::SocketAddr::ipv4_loopback(0));
  if (!l.ok()) co_return l.status().ToString();
  p->listener.emplace(std::move(*l));
  absl::StatusOr<net::TcpStream> c = co_await net::TcpStream::connect(p->listener->local_addr());
  if (!c.ok()) co_return c.status().ToString();
  p->a.emplace(std::move(*c));
  auto s = co_await p->listener->accept();
  if (!s.ok()) co_return s.status().ToString();
  p->b.emplace(std::move(s->first));
  co_return std::string();
}

Task<std::string> tcp_read_cell(Drop d) {
  TcpPair p;
  if (std::string e = co_await tcp_pair(&p); !e.empty()) co_return "FAIL: " + e;
  const bool epoll = on_epoll();
  const int peer = p.b->fd();
  const int me = p.a->fd();
  co_return co_await drive(
      d, false, [&] { return p.a->read(std::vector<char>(4)); },
      [&] { (void)::send(peer, "dddd", 4, 0); },
      [&](Drop d) {
        (void)::send(peer, "x", 1, 0);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // loopback delivery
        char buf[64];
        const ssize_t r = ::recv(me, buf, sizeof buf, MSG_DONTWAIT);
        const size_t left = r > 0 ? static_cast<size_t>(r) : 0;
        const size_t sent = (d == Drop::kCompleted ? 4 : 0) + 1;
        if (epoll || d <= Drop::kPending) return expect(left == sent, "a dropped read consumed data");
        return expect(left <= sent, "read left too much");
      });
}

Task<std::string> tcp_write_all_cell(Drop d) {
  TcpPair p;
  if (std::string e = co_await tcp_pair(&p); !e.empty()) co_return "FAIL: " + e;
  const int peer = p.b->fd();
  // Far more than the socket buffers hold: it stays pending until the peer reads.
  co_return co_await drive(
      d, false, [&] { return p.a->write_all(std::vector<char>(8 << 20, 'w')); },
      [&] {
        // Everything the sender's buffer holds: epoll reports writable only
        // once a good part of the send buffer is free again.
        char b[65536];
        for (int i = 0; i < 20; ++i) {
          while (::recv(peer, b, sizeof b, MSG_DONTWAIT) > 0) {}
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      },
      // "an unknown prefix has been sent; close the stream": nothing to
      // check but what every cell checks (the streams close with the cell).
      [](Drop) { return std::string(); });
}

Task<std::string> tcp_accept_cell(Drop d) {
  absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(net::SocketAddr::ipv4_loopback(0));
  if (!l.ok()) co_return "FAIL: " + l.status().ToString();
  const uint16_t port = l->local_addr().port();
  const int lfd = l->fd();
  Fds fds;
  const bool epoll = on_epoll();
  co_return co_await drive(
      d, false, [&] { return l->accept(); }, [&] { fds.add(connect_to(port, false)); },
      [&](Drop d) {
        if (d != Drop::kCompleted) fds.add(connect_to(port, false));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        const int got = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (got >= 0) fds.add(got);
        if (epoll || d <= Drop::kPending) return expect(got >= 0, "a dropped accept took it");
        if (d == Drop::kCompleted) return expect(got < 0, "io_uring: completed accept left it queued");
        return std::string();
      });
}

Task<std::string> incoming_next_cell(Drop d) {
  absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(net::SocketAddr::ipv4_loopback(0));
  if (!l.ok()) co_return "FAIL: " + l.status().ToString();
  const uint16_t port = l->local_addr().port();
  Fds fds;
  std::string r;
  {
    net::Incoming in = l->incoming();
    r = co_await drive(
        d, false, [&] { return in.next(); }, [&] { fds.add(connect_to(port, false)); },
        [&](Drop d) { return std::string(); });
    if (r == "pass") {
      // "a dropped next() loses nothing": the connection made for the
      // completed cell (or one made now) is the next one's.
      if (d != Drop::kCompleted) fds.add(connect_to(port, false));
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      auto next = in.next();
      std::atomic<bool>* flag = &g_flags[g_next_flag.fetch_add(1) % 1024];
      const Waker w = flag_waker(flag);
      bool got = false;
      while (!got && std::chrono::steady_clock::now() < until) {
        got = co_await PollWith<decltype(next)>{&next, &w};
        if (!got) co_await yield_now();
      }
      if (!got) r = "FAIL: a dropped next() lost the connection";
    }
  }
  co_return r;
}

Task<std::string> tcp_connect_cell(Drop d) {
  absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(net::SocketAddr::ipv4_loopback(0));
  if (!l.ok()) co_return "FAIL: " + l.status().ToString();
  const net::SocketAddr addr = l->local_addr();
  // "dropping it cancels the connect and closes the socket": the fd count
  // after the cell checks the close.
  co_return co_await drive(d, false, [&] { return net::TcpStream::connect(addr); }, [] {},
                           [](Drop) { return std::string(); });
}

Task<std::string> file_read_at_cell(Drop d) {
  char path[] = "/tmp/pollux_cancel_matrix_file_XXXXXX";
  const int tmp = ::mkostemp(path, O_CLOEXEC);
  if (tmp < 0) co_return "FAIL: mkostemp";
  (void)::write(tmp, "0123456789abcdef", 16);
  ::close(tmp);
  const std::string p = path;
  absl::StatusOr<fs::File> f = co_await fs::File::open(p);
  ::unlink(path);
  if (!f.ok()) co_return "FAIL: " + f.status().ToString();
  co_return co_await drive(d, false, [&] { return f->read_at(std::vector<char>(16), 0); }, [] {},
                           [](Drop) { return std::string(); });
}

// ---- Rows: sync futures ----

Task<std::string> notify_cell(Drop d) {
  sync::Notify n;
  co_return co_await drive(
      d, true, [&] { return n.notified(); }, [&] { n.notify_one(); },
      [&](Drop d) {
        // completed: the notification passes on (a new notified() is ready);
        // otherwise nothing was consumed: notify_one stores the permit.
        if (d != Drop::kCompleted) n.notify_one();
        auto again = n.notified();
        const Waker& w = noop_waker();
        Budget b = Budget::unlimited();
        Context cx(w, b);
        return expect(again.poll(cx).is_ready(), "a dropped notified() swallowed the notification");
      });
}

Task<std::string> semaphore_cell(Drop d) {
  sync::Semaphore sem(0);
  co_return co_await drive(
      d, true, [&] { return sem.acquire(); }, [&] { sem.release(1); },
      [&](Drop d) {
        if (d != Drop::kCompleted) sem.release(1);
        return expect(sem.available_permits() == 1, "a dropped acquire kept its permit");
      });
}

Task<std::string> mutex_cell(Drop d) {
  sync::Mutex<int> m(0);
  std::optional<sync::MutexGuard<int>> held = m.try_lock();
  co_return co_await drive(
      d, true, [&] { return m.lock(); }, [&] { held.reset(); },
      [&](Drop) {
        held.reset();
        return expect(m.try_lock().has_value(), "a dropped lock() kept the lock");
      });
}

Task<std::string> rwlock_read_cell(Drop d) {
  sync::RwLock<int> l(0);
  std::optional<sync::WriteGuard<int>> held = l.try_write();
  co_return co_await drive(
      d, true, [&] { return l.read(); }, [&] { held.reset(); },
      [&](Drop) {
        held.reset();
        return expect(l.try_write().has_value(), "a dropped read() kept a read permit");
      });
}

Task<std::string> rwlock_write_cell(Drop d) {
  sync::RwLock<int> l(0);
  std::optional<sync::ReadGuard<int>> held = l.try_read();
  co_return co_await drive(
      d, true, [&] { return l.write(); }, [&] { held.reset(); },
      [&](Drop) {
        held.reset();
        return expect(l.try_write().has_value(), "a dropped write() kept permits");
      });
}

Task<std::string> oneshot_cell(Drop d) {
  auto tx_rx = sync::oneshot::channel<Counted>();
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  std::optional<sync::oneshot::Sender<Counted>> sender(std::move(tx));
  std::optional<sync::oneshot::Receiver<Counted>> receiver(std::move(rx));
  co_return co_await drive(
      d, true, [&] { return std::move(*receiver); },
      [&] { (void)std::move(*sender).send(Counted(1)); },
      [&](Drop d) {
        std::string bad;
        if (d != Drop::kCompleted) {
          // The receiver is gone: the value comes back.
          std::optional<Counted> back = std::move(*sender).send(Counted(2));
          bad = expect(back.has_value(), "a send after the receiver dropped was taken");
        }
        return bad;  // Counted::live is checked after the cell
      });
}

Task<std::string> mpsc_recv_cell(Drop d) {
  auto tx_rx = sync::mpsc::channel<Counted>(2);
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  co_return co_await drive(
      d, true, [&] { return rx.recv(); }, [&] { (void)tx.try_send(Counted(1)); },
      [&](Drop d) {
        if (d != Drop::kCompleted) (void)tx.try_send(Counted(1));
        sync::mpsc::TryRecv<Counted> got = rx.try_recv();
        return expect(got.value.has_value() && got.value->v == 1, "a dropped recv lost a message");
      });
}

Task<std::string> mpsc_send_cell(Drop d) {
  auto tx_rx = sync::mpsc::channel<Counted>(1);
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  (void)tx.try_send(Counted(0));  // full
  co_return co_await drive(
      d, true, [&] { return tx.send(Counted(5)); }, [&] { (void)rx.try_recv(); },
      [&](Drop d) {
        if (d != Drop::kCompleted) (void)rx.try_recv();
        // The room it waited for (or was granted) is free again, and the
        // dropped message is gone, not queued.
        const bool room = !tx.try_send(Counted(6)).has_value();
        sync::mpsc::TryRecv<Counted> got = rx.try_recv();
        return expect(room && got.value.has_value() && got.value->v == 6,
                      "a dropped send kept its room or queued its message");
      });
}

Task<std::string> broadcast_cell(Drop d) {
  auto tx_rx = sync::broadcast::channel<int>(4);
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  co_return co_await drive(
      d, true, [&] { return rx.recv(); }, [&] { (void)tx.send(1); },
      [&](Drop d) {
        if (d != Drop::kCompleted) (void)tx.send(1);
        auto again = rx.recv();
        const Waker& w = noop_waker();
        Budget b = Budget::unlimited();
        Context cx(w, b);
        return expect(again.poll(cx).is_ready(), "a dropped broadcast recv lost the value");
      });
}

Task<std::string> watch_cell(Drop d) {
  auto tx_rx = sync::watch::channel<int>(0);
  auto& tx = tx_rx.first;
  auto& rx = tx_rx.second;
  co_return co_await drive(
      d, true, [&] { return rx.changed(); }, [&] { (void)tx.send(1); },
      [&](Drop d) {
        if (d != Drop::kCompleted) (void)tx.send(1);
        return expect(rx.has_changed(), "a dropped changed() consumed the version");
      });
}

Task<std::string> barrier_cell(Drop d) {
  sync::Barrier barrier(2);
  std::optional<sync::Barrier::Wait> other;
  co_return co_await drive(
      d, true, [&] { return barrier.wait(); },
      [&] {
        // The second arrival completes the generation (and wakes the first).
        other.emplace(barrier.wait());
        const Waker& w = noop_waker();
        Budget b = Budget::unlimited();
        Context cx(w, b);
        (void)other->poll(cx);
      },
      [&](Drop d) {
        if (d == Drop::kCompleted) return std::string();
        // "counts as arrived at its first poll": one more arrival completes
        // the generation; before its first poll it did not arrive.
        other.emplace(barrier.wait());
        const Waker& w = noop_waker();
        Budget b = Budget::unlimited();
        Context cx(w, b);
        const bool ready = other->poll(cx).is_ready();
        other.reset();
        return d == Drop::kBefore ? expect(!ready, "an unpolled wait() arrived")
                                  : expect(ready, "a polled, dropped wait() did not count");
      });
}

Task<std::string> cancellation_token_cell(Drop d) {
  sync::CancellationToken t;
  co_return co_await drive(
      d, true, [&] { return t.cancelled(); }, [&] { t.cancel(); },
      [&](Drop d) {
        if (d != Drop::kCompleted) t.cancel();
        auto again = t.cancelled();
        const Waker& w = noop_waker();
        Budget b = Budget::unlimited();
        Context cx(w, b);
        return expect(again.poll(cx).is_ready(), "cancelled() not ready after cancel");
      });
}

Task<int> wait_then_count(sync::Notify* n, Counted c, std::atomic<bool>* finished) {
  co_await n->notified();
  finished->store(true);
  co_return c.v;
}

Task<std::string> join_handle_cell(Drop d) {
  sync::Notify n;
  std::atomic<bool> finished{false};
  std::string r = co_await drive(
      d, true,
      [&] { return spawn([&n, &finished] { return wait_then_count(&n, Counted(4), &finished); }); },
      [&] { n.notify_one(); },
      [&](Drop) { return std::string(); });
  // "Dropping the handle detaches the task": it still runs to the end.
  n.notify_one();
  if (!co_await wait_flag(&finished)) co_return "FAIL: the detached task did not run";
  co_return r;
}

std::vector<Row> rows() {
  std::vector<Row> r;
  auto io = [&](const char* name, const char* inv, Task<std::string> (*f)(Drop)) {
    r.push_back(Row{name, inv, f, false});
  };
  auto sy = [&](const char* name, const char* inv, Task<std::string> (*f)(Drop)) {
    r.push_back(Row{name, inv, f, true});
  };
  io("read", "epoll/unsubmitted: consumed nothing", read_cell);
  io("write", "epoll/unsubmitted: wrote nothing", write_cell);
  io("recv", "epoll/unsubmitted: consumed nothing", recv_cell);
  io("send", "epoll/unsubmitted: sent nothing", send_cell);
  io("accept", "epoll: connection stays queued; uring: fd closed", accept_cell);
  io("connect", "socket stays the caller's", connect_cell);
  io("nop", "no live op", nop_cell);
  io("TcpStream::read", "epoll/unsubmitted: consumed nothing", tcp_read_cell);
  io("TcpStream::write_all", "no live op (prefix unknown)", tcp_write_all_cell);
  io("TcpListener::accept", "epoll: conn stays queued; uring: fd closed", tcp_accept_cell);
  io("Incoming::next", "no connection lost", incoming_next_cell);
  io("TcpStream::connect", "socket closed", tcp_connect_cell);
  io("File::read_at", "no live op", file_read_at_cell);
  io("poll_add", "no effect", poll_add_cell);
  io("fsync", "no live op", fsync_cell);
  io("statx", "no live op", statx_cell);
  sy("Sleep", "timer entry unlinked", sleep_cell);
  sy("Notify::notified", "notification never lost", notify_cell);
  sy("Semaphore::acquire", "permit given back", semaphore_cell);
  sy("Mutex::lock", "lock passes on", mutex_cell);
  sy("RwLock::read", "read permit given back", rwlock_read_cell);
  sy("RwLock::write", "write permits given back", rwlock_write_cell);
  sy("oneshot recv", "value dropped or handed back", oneshot_cell);
  sy("mpsc recv", "no message lost", mpsc_recv_cell);
  sy("mpsc send (bounded)", "room back, message gone", mpsc_send_cell);
  sy("broadcast recv", "value stays for next recv", broadcast_cell);
  sy("watch changed", "version stays newer", watch_cell);
  sy("Barrier wait", "arrival counted after 1st poll", barrier_cell);
  sy("CancellationToken", "cancel seen by next future", cancellation_token_cell);
  sy("JoinHandle", "task detached, runs to end", join_handle_cell);
  return r;
}

// What the test thread checks after each cell (bounded drain first).
std::string leftovers(Runtime& rt, int fds_before, int64_t cells_before) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string bad;
  for (;;) {
    bad.clear();
    if (testing::live_ops(rt) != 0) bad += " live op;";
    // TSan's symbolizer may hold a few fds of its own (tests/ README).
    if (testing::open_fd_count() > fds_before + (testing::kUnderTsan ? 4 : 0)) bad += " fd;";
    if (live_task_cells() != cells_before) bad += " task;";
    if (Counted::live.load() != 0) bad += " counted value;";
    if (bad.empty() || std::chrono::steady_clock::now() > until) break;
    // Let cancelled ops reach their final completion (the other flavours'
    // workers drive themselves; a block_on there would be one more task).
    if (testing::on_current_thread()) {
      rt.block_on(sleep(absl::Milliseconds(1)));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return bad;
}

TEST(CancellationMatrix, EveryOperationAtEveryDropPoint) {
  absl::StatusOr<Runtime> rt = testing::runtime_builder().enable_all().build();
  ASSERT_TRUE(rt.ok()) << rt.status();
  // A first block_on: the runtime's own lazily made state is not a leak.
  rt->block_on(sleep(absl::Milliseconds(1)));
  const int64_t cells_before = live_task_cells();
  std::vector<Row> table = rows();
  std::string out;
  int failures = 0;
  char line[512];
  static constexpr const char* kFlavours[] = {"current_thread", "multi_thread(2)",
                                              "thread_per_core(2)"};
  std::snprintf(line, sizeof line, "cancellation matrix: backend %s, flavour %s\n",
                rt->backend().name(), kFlavours[static_cast<int>(testing::test_flavour())]);
  out += line;
  std::snprintf(line, sizeof line, "%-21s | %-19s | %-46s | %s\n", "operation", "drop point",
                "checked invariant (+ no live op, fd, task)", "result");
  out += line;
  for (const Row& row : table) {
    for (Drop d : kDrops) {
      const int fds_before = testing::open_fd_count();
      std::string cell = rt->block_on(row.cell(d));
      const std::string left = leftovers(*rt, fds_before, cells_before);
      if (!left.empty()) cell = "FAIL: left" + left;
      if (cell.rfind("FAIL", 0) == 0) {
        ++failures;
        ADD_FAILURE() << row.name << " dropped " << kDropNames[static_cast<int>(d)] << ": " << cell;
      }
      std::snprintf(line, sizeof line, "%-21s | %-19s | %-46s | %s\n", row.name.c_str(),
                    kDropNames[static_cast<int>(d)], row.invariant.c_str(), cell.c_str());
      out += line;
    }
  }
  out += "readv/writev         | (every)             | -                                              | n/a: reactor/ops.h has no readv/writev (one buffer per op)\n";
  std::printf("%s", out.c_str());
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace pollux
