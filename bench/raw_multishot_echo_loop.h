// The multishot-recv echo loop behind `raw_echo_server --multishot`: the
// hand-written liburing echo with the techniques a tuned io_uring server
// uses, so that pollux is compared with the fastest hand-written loop and
// not only with the one-recv-per-message one in raw_server_common.h
// (issue 17, "Baseline honesty").
//
// What differs from run_loop (the rest is the same: ring set-up, multishot
// accept, TCP_NODELAY, one io_uring_submit_and_wait per loop iteration,
// every ready CQE reaped in one batch):
//   - one provided-buffer ring per io_uring (buffer group 0), registered
//     with io_uring_register_buf_ring; the buffers are one mmap'd region of
//     `buffers` x `buffer_bytes`;
//   - per connection one multishot recv (IORING_RECV_MULTISHOT with
//     IOSQE_BUFFER_SELECT) armed once: each CQE names the buffer the kernel
//     filled (IORING_CQE_F_BUFFER), so there is no recv SQE per message;
//   - the bytes are sent back from that buffer (no copy), and the buffer
//     goes back to the ring when its send has completed (a short send
//     resubmits the rest first). Buffers returned while reaping a batch are
//     published with one io_uring_buf_ring_advance before the next enter;
//   - data that arrives while the connection's send is in flight waits in a
//     per-connection FIFO (buffer id, length), so replies keep their order;
//   - a CQE without IORING_CQE_F_MORE ends the multishot: with data it is
//     re-armed at once; with -ENOBUFS (the ring ran dry) the connection
//     waits until buffers have come back, then is re-armed; 0 or another
//     error closes the connection;
//   - a connection is closed (close(2), its queued buffers returned) only
//     when neither its recv nor its send is in flight; a send error shuts
//     the socket down first, which ends the recv.
//
// Thread-safety: as run_loop, the ring, its buffer ring and the
// connections belong to the one thread running the loop.
#ifndef POLLUX_BENCH_RAW_MULTISHOT_ECHO_LOOP_H_
#define POLLUX_BENCH_RAW_MULTISHOT_ECHO_LOOP_H_

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "bench/raw_server_common.h"

namespace pollux::bench {

// The provided-buffer ring's shape. `buffers` is a power of two in
// 1..32768 (the kernel's limit for a buffer ring; buffer ids are 16 bits).
struct MultishotConfig {
  unsigned buffers = 1024;
  unsigned buffer_bytes = 4096;
};

// Runs the multishot echo loop on `listen_fd` and the initialised
// `ring_ptr` forever, on the thread that created the ring; registers the
// ring's buffer group 0 first (fatal if the kernel refuses: it needs 5.19+).
[[noreturn]] inline void run_multishot_echo_loop(io_uring* ring_ptr, int listen_fd,
                                                 const MultishotConfig& config) {
  enum Op : uint64_t { kAccept = 1, kRecv = 2, kSend = 3 };
  constexpr uint16_t kGroup = 0;
  io_uring& ring = *ring_ptr;
  const unsigned nbufs = config.buffers;
  const size_t buf_bytes = config.buffer_bytes;

  // The ring of io_uring_buf entries must be page-aligned; mmap gives that
  // (and the buffers, page-aligned too, one region).
  const size_t ring_bytes = nbufs * sizeof(io_uring_buf);
  void* ring_mem = ::mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ring_mem == MAP_FAILED) die("mmap (buffer ring)", errno);
  void* buf_mem = ::mmap(nullptr, nbufs * buf_bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf_mem == MAP_FAILED) die("mmap (buffers)", errno);
  auto* br = static_cast<io_uring_buf_ring*>(ring_mem);
  char* const base = static_cast<char*>(buf_mem);
  io_uring_buf_reg reg;
  std::memset(&reg, 0, sizeof(reg));
  reg.ring_addr = reinterpret_cast<uintptr_t>(ring_mem);
  reg.ring_entries = nbufs;
  reg.bgid = kGroup;
  if (int ret = io_uring_register_buf_ring(&ring, &reg, 0); ret != 0) {
    die("io_uring_register_buf_ring", -ret);
  }
  io_uring_buf_ring_init(br);
  const int mask = io_uring_buf_ring_mask(nbufs);
  for (unsigned bid = 0; bid < nbufs; ++bid) {
    io_uring_buf_ring_add(br, base + bid * buf_bytes, static_cast<unsigned>(buf_bytes),
                          static_cast<unsigned short>(bid), mask, static_cast<int>(bid));
  }
  io_uring_buf_ring_advance(br, static_cast<int>(nbufs));

  struct Chunk {
    uint16_t bid;
    uint32_t len;
  };
  struct Conn {
    explicit Conn(int socket) : fd(socket) {}
    int fd;
    bool recv_armed = false;
    bool sending = false;
    bool closing = false;
    bool starved = false;  // its multishot ended with -ENOBUFS; re-arm later
    Chunk send{};          // the buffer being sent, `sent` bytes of it done
    uint32_t sent = 0;
    std::deque<Chunk> queued;  // received while `send` was in flight, in order
  };
  std::vector<std::unique_ptr<Conn>> conns;  // indexed by fd
  std::vector<int> starved;                  // fds waiting for buffers
  unsigned held = 0;      // buffers the kernel handed us and we hold
  int returned = 0;       // buffers added to the ring this batch, unpublished

  auto give_back = [&](uint16_t bid) {
    io_uring_buf_ring_add(br, base + size_t{bid} * buf_bytes, static_cast<unsigned>(buf_bytes),
                          bid, mask, returned++);
    --held;
  };
  auto arm_accept = [&] {
    io_uring_sqe* sqe = get_sqe(&ring);
    io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, kAccept << 32 | static_cast<uint64_t>(listen_fd));
  };
  auto arm_recv = [&](Conn& c) {
    io_uring_sqe* sqe = get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kGroup;  // liburing 2.3 has no setter; it is the uapi field
    io_uring_sqe_set_data64(sqe, kRecv << 32 | static_cast<uint64_t>(c.fd));
    c.recv_armed = true;
  };
  auto arm_send = [&](Conn& c) {
    io_uring_sqe* sqe = get_sqe(&ring);
    io_uring_prep_send(sqe, c.fd, base + size_t{c.send.bid} * buf_bytes + c.sent,
                       c.send.len - c.sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, kSend << 32 | static_cast<uint64_t>(c.fd));
  };
  auto start_send = [&](Conn& c, Chunk chunk) {
    c.send = chunk;
    c.sent = 0;
    c.sending = true;
    arm_send(c);
  };
  // Closes once nothing of the connection is in flight (its CQEs name its fd).
  auto maybe_close = [&](Conn& c) {
    if (c.recv_armed || c.sending) return;
    int fd = c.fd;
    ::close(fd);
    conns[static_cast<size_t>(fd)].reset();
  };
  auto begin_close = [&](Conn& c) {
    if (!c.closing) {
      c.closing = true;
      for (const Chunk& q : c.queued) give_back(q.bid);
      c.queued.clear();
      // The multishot recv would otherwise stay armed until the peer spoke.
      if (c.recv_armed) ::shutdown(c.fd, SHUT_RDWR);
    }
    maybe_close(c);
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
      const unsigned flags = cqe->flags;
      if (op == kAccept) {
        if (res >= 0) {
          const auto client = static_cast<size_t>(res);
          if (conns.size() <= client) conns.resize(client + 1);
          int one = 1;
          ::setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          conns[client] = std::make_unique<Conn>(res);
          arm_recv(*conns[client]);
        } else {
          std::fprintf(stderr, "accept: %s\n", std::strerror(-res));
        }
        if (!(flags & IORING_CQE_F_MORE)) arm_accept();
        continue;
      }
      Conn& c = *conns[fd];
      if (op == kRecv) {
        if (res > 0) {
          ++held;
          const Chunk chunk{static_cast<uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT),
                            static_cast<uint32_t>(res)};
          if (c.closing) {
            give_back(chunk.bid);
          } else if (c.sending) {
            c.queued.push_back(chunk);
          } else {
            start_send(c, chunk);
          }
        }
        if (flags & IORING_CQE_F_MORE) continue;
        c.recv_armed = false;
        if (c.closing) {
          maybe_close(c);
        } else if (res > 0) {
          arm_recv(c);  // ended with data (e.g. CQ overflow): carry on
        } else if (res == -ENOBUFS) {
          c.starved = true;
          starved.push_back(c.fd);
        } else {  // EOF, reset, or any other error: drop the connection
          begin_close(c);
        }
      } else {  // kSend
        if (res <= 0) {
          give_back(c.send.bid);
          c.sending = false;
          begin_close(c);
          continue;
        }
        c.sent += static_cast<uint32_t>(res);
        if (c.sent < c.send.len) {
          arm_send(c);  // short send: the rest, from where it stopped
          continue;
        }
        give_back(c.send.bid);
        c.sending = false;
        if (c.closing) {
          maybe_close(c);
        } else if (!c.queued.empty()) {
          Chunk next = c.queued.front();
          c.queued.pop_front();
          start_send(c, next);
        }
      }
    }
    io_uring_cq_advance(&ring, reaped);
    if (returned > 0) {
      io_uring_buf_ring_advance(br, returned);
      returned = 0;
    }
    // A starved connection's entry may outlive it (closed, fd reused): only
    // a connection still marked starved is re-armed.
    if (!starved.empty() && held < nbufs) {
      for (int sfd : starved) {
        Conn* s = conns[static_cast<size_t>(sfd)].get();
        if (s == nullptr || !s->starved) continue;
        s->starved = false;
        if (!s->closing) arm_recv(*s);
      }
      starved.clear();
    }
  }
}

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_RAW_MULTISHOT_ECHO_LOOP_H_
