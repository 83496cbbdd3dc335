// raw_epoll_echo_server: the hand-written epoll echo baseline that
// //examples:echo_server on the epoll backend is measured against
// (bench/compare.sh). Same CLI and startup line as the pollux server:
//
//   raw_epoll_echo_server --port=0 --threads=1 --addr=127.0.0.1   (default port 7000;
//                                                                  one thread only)
//   -> prints "listening on 127.0.0.1:PORT", serves until SIGTERM/SIGINT.
//
// What a careful engineer writes by hand with epoll, on one thread, with no
// runtime and no liburing:
//   - non-blocking sockets in one epoll set, each registered once for
//     EPOLLIN|EPOLLOUT|EPOLLRDHUP, edge-triggered (--edge_triggered, the
//     default: no fd is polled again by epoll_wait unless something
//     happened on it; --edge_triggered=false registers level-triggered
//     EPOLLIN and switches to EPOLLOUT only while a send is pending);
//   - per connection one 16 KiB buffer: recv, then send exactly those bytes
//     back (a short send waits for writability and resumes); edge-triggered,
//     it reads again until a recv returns less than the buffer (the socket
//     is drained then: the next data is a new edge), so no recv is made only
//     to hear EAGAIN, as pollux does;
//   - the listener: accept4(SOCK_NONBLOCK|SOCK_CLOEXEC) until EAGAIN, at
//     most 64 per wake (as pollux); TCP_NODELAY on each, as pollux's servers;
//   - one epoll_wait per loop iteration, up to 256 events.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/flags/flag.h"
#include "bench/raw_server_flags.h"

ABSL_FLAG(bool, edge_triggered, true,
          "register sockets edge-triggered (reading until a short read) instead of "
          "level-triggered");

namespace {

constexpr size_t kBufferBytes = 16 * 1024;  // as examples/echo_service.h
constexpr int kMaxEvents = 256;
constexpr int kAcceptBurst = 64;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "raw_epoll_echo_server: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

struct Conn {
  int fd;
  std::unique_ptr<char[]> buf{new char[kBufferBytes]};
  size_t pending = 0;  // bytes of buf to send back
  size_t sent = 0;     // of those, already sent
};

bool g_et = true;

void set_interest(int ep, Conn* c, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = c;
  if (::epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) fail("epoll_ctl MOD");
}

void close_conn(int ep, Conn* c) {
  ::epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
  ::close(c->fd);
  delete c;
}

enum class Flush { kDone, kBlocked, kBroken };

// Sends what is pending.
Flush flush(Conn* c) {
  while (c->sent < c->pending) {
    const ssize_t n = ::send(c->fd, c->buf.get() + c->sent, c->pending - c->sent, MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return Flush::kBlocked;
    return Flush::kBroken;
  }
  c->pending = c->sent = 0;
  return Flush::kDone;
}

// Handles one readiness event of a connection; false when it is done for.
bool on_event(int ep, Conn* c) {
  if (c->pending > 0) {  // a send was blocked: writable now?
    const Flush f = flush(c);
    if (f == Flush::kBroken) return false;
    if (f == Flush::kBlocked) return true;
    if (!g_et) set_interest(ep, c, EPOLLIN);
  }
  for (;;) {
    ssize_t r;
    do {
      r = ::recv(c->fd, c->buf.get(), kBufferBytes, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN) return true;
    if (r <= 0) return false;
    c->pending = static_cast<size_t>(r);
    c->sent = 0;
    const Flush f = flush(c);
    if (f == Flush::kBroken) return false;
    if (f == Flush::kBlocked) {
      if (!g_et) set_interest(ep, c, EPOLLOUT);
      return true;  // edge-triggered: the writability edge brings us back
    }
    // Level-triggered: epoll says so if more is there. Edge-triggered: a
    // full buffer may have left more behind; a short read drained it.
    if (!g_et || static_cast<size_t>(r) < kBufferBytes) return true;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const pollux::bench::ServerPlan plan =
      pollux::bench::listen_from_flags(argc, argv, "raw_epoll_echo_server", 7000);
  if (plan.listen_fds.size() != 1) {
    std::fprintf(stderr, "raw_epoll_echo_server: --threads=1 only (the epoll baseline is one loop)\n");
    return 2;
  }
  if (!plan.cpus.empty()) pollux::bench::pin_to_cpu(plan.cpus[0]);
  const int listen_fd = plan.listen_fds[0];
  g_et = absl::GetFlag(FLAGS_edge_triggered);
  const int fl = ::fcntl(listen_fd, F_GETFL);
  if (fl < 0 || ::fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) fail("O_NONBLOCK");
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1");
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;  // the listener
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &lev) != 0) fail("epoll_ctl ADD listener");

  std::vector<epoll_event> events(kMaxEvents);
  for (;;) {
    const int n = ::epoll_wait(ep, events.data(), kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      Conn* c = static_cast<Conn*>(events[i].data.ptr);
      if (c != nullptr) {
        if (!on_event(ep, c)) close_conn(ep, c);
        continue;
      }
      for (int k = 0; k < kAcceptBurst; ++k) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;  // EAGAIN (or a per-connection error): the next wake
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        auto* conn = new Conn{fd};
        epoll_event ev{};
        ev.events = g_et ? (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) : EPOLLIN;
        ev.data.ptr = conn;
        if (::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl ADD");
      }
    }
  }
}
