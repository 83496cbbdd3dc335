// The shared half of the hand-written liburing baselines (raw_echo_server,
// raw_http_server) that pollux's servers are compared against, plus the ring
// setup bench/loadgen reuses. No runtime: one ring, one loop per thread.
//
// The loop is what a careful engineer would write by hand:
//   - ring set up with SINGLE_ISSUER | DEFER_TASKRUN (completions are only
//     run when this thread enters the kernel), falling back to COOP_TASKRUN
//     and then to no flags on older kernels; the ring fd registered
//     (io_uring_register_ring_fd), as pollux's is;
//   - one multishot accept, re-armed only when the kernel ends it; accepted
//     sockets get TCP_NODELAY, as in pollux's servers;
//   - per connection exactly one operation in flight: recv into the
//     connection's own buffer, then send the reply (looping on short sends),
//     then recv again;
//   - exactly one io_uring_enter per loop iteration
//     (io_uring_submit_and_wait submits the SQEs queued while handling the
//     previous batch and waits for at least one completion), then every
//     ready CQE is reaped with io_uring_for_each_cqe + io_uring_cq_advance.
//
// What a connection does with the bytes it receives is the Protocol's job
// (see run_loop below); the two servers differ only in that.
//
// With --threads N (serve() below) each of N threads runs that same loop on
// a ring of its own (the same setup flags; rings 1..N-1 attach to ring 0's
// kernel workers with IORING_SETUP_ATTACH_WQ) and its own listening socket;
// the threads share nothing else. N = 1 is the one-ring loop on main's
// thread, as before threads existed. serve_loops() does the same for
// another loop (raw_multishot_echo_loop.h's, for raw_echo_server --multishot).
//
// Thread-safety: a ring and its loop's connections belong to the one thread
// that runs the loop; nothing is shared between loops.
#ifndef POLLUX_BENCH_RAW_SERVER_COMMON_H_
#define POLLUX_BENCH_RAW_SERVER_COMMON_H_

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pollux::bench {

// Prints "what: strerror(err)" and exits 1; the baselines have no recovery path.
[[noreturn]] inline void die(const char* what, int err) {
  std::fprintf(stderr, "%s: %s\n", what, std::strerror(err));
  std::exit(1);
}

// Initialises `ring` with `entries` SQEs, trying SINGLE_ISSUER|DEFER_TASKRUN
// first (what pollux's driver uses), then COOP_TASKRUN, then no flags.
// With `attach_wq_fd` >= 0 (another ring's fd) every attempt adds
// IORING_SETUP_ATTACH_WQ, asking to share that ring's kernel workers
// instead of creating another set. (Since Linux 5.12 io-wq workers belong
// to the submitting thread, so for a ring without SQPOLL, as here, the
// kernel only checks that the fd is a ring.) Returns the setup flags in force (without
// ATTACH_WQ). Only EINVAL (flag unknown) falls back. Call it on the thread
// that will submit: SINGLE_ISSUER binds the ring to its creator, and the
// ring fd is registered for that thread (enters skip a file lookup; a kernel
// without it just uses the fd).
inline unsigned init_ring(io_uring* ring, unsigned entries, int attach_wq_fd = -1) {
  static constexpr unsigned kAttempts[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  int ret = -EINVAL;
  for (unsigned flags : kAttempts) {
    io_uring_params params;
    std::memset(&params, 0, sizeof(params));
    params.flags = flags;
    if (attach_wq_fd >= 0) {
      params.flags |= IORING_SETUP_ATTACH_WQ;
      params.wq_fd = static_cast<__u32>(attach_wq_fd);
    }
    ret = io_uring_queue_init_params(entries, ring, &params);
    if (ret == 0) {
      io_uring_register_ring_fd(ring);
      return flags;
    }
    if (ret != -EINVAL) break;
  }
  die("io_uring_queue_init_params", -ret);
}

// Pins the calling thread to `cpu` (sched_setaffinity); fatal on failure.
inline void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) die("sched_setaffinity", errno);
}

// A free SQE; when the submission queue is full, submits what is queued first.
inline io_uring_sqe* get_sqe(io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe == nullptr) {
    int ret = io_uring_submit(ring);
    if (ret < 0) die("io_uring_submit (SQ full)", -ret);
    sqe = io_uring_get_sqe(ring);
    if (sqe == nullptr) die("io_uring_get_sqe after submit", EBUSY);
  }
  return sqe;
}

// Fills `storage` with the numeric IPv4 or IPv6 address `addr` and `port`;
// returns the address length, or 0 when `addr` is not a numeric address.
inline socklen_t parse_address(const std::string& addr, int port, sockaddr_storage* storage) {
  std::memset(storage, 0, sizeof(*storage));
  auto* v4 = reinterpret_cast<sockaddr_in*>(storage);
  if (inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return sizeof(sockaddr_in);
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(storage);
  if (inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return sizeof(sockaddr_in6);
  }
  return 0;
}

// A bound, listening socket and the port it got.
struct Listener {
  int fd;
  int port;
};

// Binds and listens on addr:port (port 0 picks a free one). `reuse_port`
// sets SO_REUSEPORT first, so that more listeners can bind the same port and
// the kernel spreads incoming connections over them. Fatal on failure.
inline Listener open_listener(const std::string& addr, int port, bool reuse_port) {
  sockaddr_storage storage;
  socklen_t len = parse_address(addr, port, &storage);
  if (len == 0) {
    std::fprintf(stderr, "--addr=%s is not a numeric IPv4/IPv6 address\n", addr.c_str());
    std::exit(1);
  }
  int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) die("SO_REUSEADDR", errno);
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    die("SO_REUSEPORT", errno);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0) die("bind", errno);
  if (::listen(fd, SOMAXCONN) != 0) die("listen", errno);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) die("getsockname", errno);
  int bound_port = storage.ss_family == AF_INET
                       ? ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port)
                       : ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  return {fd, bound_port};
}

// Prints the startup line every benchmark server prints for each port it
// listens on, "listening on ADDR:PORT" (IPv6 as [ADDR]:PORT), and flushes it
// so a script can read the port.
inline void announce(const std::string& addr, int port) {
  if (addr.find(':') == std::string::npos) {
    std::printf("listening on %s:%d\n", addr.c_str(), port);
  } else {
    std::printf("listening on [%s]:%d\n", addr.c_str(), port);
  }
  std::fflush(stdout);
}

// One accepted connection. recv fills in[kept, in.size()); in[0, kept) is
// what the protocol carried over from earlier reads (a partial request).
struct Connection {
  static constexpr size_t kRecvBytes = 16 * 1024;  // as pollux's servers read

  explicit Connection(int socket) : fd(socket), in(kRecvBytes) {}

  int fd;
  std::vector<char> in;
  size_t kept = 0;
  std::vector<char> out;  // reply storage for protocols that build one (http)

  // The reply being sent: [send_data, send_data + send_len), `sent` done.
  const char* send_data = nullptr;
  size_t send_len = 0;
  size_t sent = 0;
  bool close_after_send = false;
};

// What a protocol answers to `n` new bytes at conn.in[conn.kept, +n):
// bytes to send (len 0: nothing yet, recv more), and whether to close after.
struct Reply {
  const char* data;
  size_t len;
  bool close_after;
};

constexpr unsigned kServerRingEntries = 1024;

// Runs the accept/recv/send loop on `listen_fd` and the initialised
// `ring_ptr` forever (until a signal kills the process), on the thread that
// created the ring. Protocol has `Reply on_recv(Connection&, size_t n)`;
// the reply must stay valid until sent (conn.in or conn.out). conn.out is
// cleared once the reply is fully sent.
template <typename Protocol>
[[noreturn]] void run_loop(io_uring* ring_ptr, int listen_fd, Protocol& protocol) {
  // user_data = (operation << 32) | fd: at most one operation per socket.
  enum Op : uint64_t { kAccept = 1, kRecv = 2, kSend = 3 };
  io_uring& ring = *ring_ptr;
  std::vector<std::unique_ptr<Connection>> conns;  // indexed by fd

  auto arm_accept = [&] {
    io_uring_sqe* sqe = get_sqe(&ring);
    io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, kAccept << 32 | static_cast<uint64_t>(listen_fd));
  };
  auto arm_recv = [&](Connection& c) {
    io_uring_sqe* sqe = get_sqe(&ring);
    io_uring_prep_recv(sqe, c.fd, c.in.data() + c.kept, c.in.size() - c.kept, 0);
    io_uring_sqe_set_data64(sqe, kRecv << 32 | static_cast<uint64_t>(c.fd));
  };
  auto arm_send = [&](Connection& c) {
    io_uring_sqe* sqe = get_sqe(&ring);
    io_uring_prep_send(sqe, c.fd, c.send_data + c.sent, c.send_len - c.sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, kSend << 32 | static_cast<uint64_t>(c.fd));
  };
  // Safe to close synchronously: the completion being handled was the
  // connection's only operation in flight.
  auto close_conn = [&](Connection& c) {
    int fd = c.fd;
    ::close(fd);
    conns[static_cast<size_t>(fd)].reset();
  };

  arm_accept();
  for (;;) {
    int ret = io_uring_submit_and_wait(&ring, 1);
    if (ret < 0 && ret != -EINTR) die("io_uring_submit_and_wait", -ret);
    unsigned head;
    unsigned reaped = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++reaped;
      const uint64_t op = cqe->user_data >> 32;
      const auto fd = static_cast<size_t>(cqe->user_data & 0xffffffffu);
      const int res = cqe->res;
      if (op == kAccept) {
        if (res >= 0) {
          const auto client = static_cast<size_t>(res);
          if (conns.size() <= client) conns.resize(client + 1);
          // As pollux's servers do: a reply split over two sends must not
          // wait for the client's delayed ACK.
          int one = 1;
          ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          conns[client] = std::make_unique<Connection>(res);
          arm_recv(*conns[client]);
        } else {
          std::fprintf(stderr, "accept: %s\n", std::strerror(-res));
        }
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept();
        continue;
      }
      Connection& c = *conns[fd];
      if (res <= 0) {  // EOF, reset, or any other error: drop the connection
        close_conn(c);
        continue;
      }
      if (op == kRecv) {
        Reply reply = protocol.on_recv(c, static_cast<size_t>(res));
        if (reply.len == 0) {
          if (reply.close_after) {
            close_conn(c);
          } else {
            arm_recv(c);
          }
          continue;
        }
        c.send_data = reply.data;
        c.send_len = reply.len;
        c.sent = 0;
        c.close_after_send = reply.close_after;
        arm_send(c);
      } else {  // kSend
        c.sent += static_cast<size_t>(res);
        if (c.sent < c.send_len) {
          arm_send(c);  // short send: the rest, from where it stopped
        } else if (c.close_after_send) {
          close_conn(c);
        } else {
          c.out.clear();
          arm_recv(c);
        }
      }
    }
    io_uring_cq_advance(&ring, reaped);
  }
}

// What serve() runs: thread i loops on listen_fds[i], pinned to cpus[i]
// when `cpus` is not empty (then it has one entry per listener).
struct ServerPlan {
  std::vector<int> listen_fds;
  std::vector<int> cpus;
};

// Runs `loop(io_uring*, int listen_fd)` (which never returns) once per
// listener, each on a thread and a ring of its own, forever. Thread 0 is the
// caller's: it creates ring 0 and, after starting threads 1..N-1 (each
// creates its ring attached to ring 0's workers), runs loop 0 itself, so one
// listener is exactly the one-ring server. Each thread gets its own copy of
// `loop`.
template <typename Loop>
[[noreturn]] void serve_loops(const ServerPlan& plan, const Loop& loop) {
  const bool pin = !plan.cpus.empty();
  if (pin) pin_to_cpu(plan.cpus[0]);
  io_uring first;
  init_ring(&first, kServerRingEntries);
  for (size_t i = 1; i < plan.listen_fds.size(); ++i) {
    const int cpu = pin ? plan.cpus[i] : -1;
    std::thread([cpu, listen_fd = plan.listen_fds[i], wq_fd = first.ring_fd,
                 own = loop]() mutable {
      if (cpu >= 0) pin_to_cpu(cpu);
      io_uring ring;
      init_ring(&ring, kServerRingEntries, wq_fd);
      own(&ring, listen_fd);
    }).detach();
  }
  Loop own = loop;
  own(&first, plan.listen_fds[0]);
  std::abort();  // unreachable: the loops never return
}

// serve_loops with run_loop; each loop gets its own copy of `protocol`.
template <typename Protocol>
[[noreturn]] void serve(const ServerPlan& plan, const Protocol& protocol) {
  // An init-capture, so the copy is not const (on_recv may keep state).
  serve_loops(plan, [own = protocol](io_uring* ring, int listen_fd) mutable {
    run_loop(ring, listen_fd, own);
  });
}

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_RAW_SERVER_COMMON_H_
