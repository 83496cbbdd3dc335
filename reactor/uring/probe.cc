#include "reactor/uring/probe.h"

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "future/internal/mutex.h"
#include "reactor/errno_status.h"
#include "reactor/owned_fd.h"

namespace pollux::reactor {
namespace {

struct RingGuard {
  io_uring* ring;
  ~RingGuard() { io_uring_queue_exit(ring); }
};

// Every opcode IoUringBackend submits.
constexpr struct {
  int op;
  const char* name;
} kOpcodes[] = {
    {IORING_OP_NOP, "NOP"},
    {IORING_OP_READ, "READ"},
    {IORING_OP_WRITE, "WRITE"},
    {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},
    {IORING_OP_SENDMSG, "SENDMSG"},
    {IORING_OP_RECVMSG, "RECVMSG"},
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_CLOSE, "CLOSE"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_TIMEOUT, "TIMEOUT"},
    {IORING_OP_OPENAT, "OPENAT"},
    {IORING_OP_FSYNC, "FSYNC"},
    {IORING_OP_STATX, "STATX"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
};

absl::Status missing(const char* what, const char* since) {
  return absl::FailedPreconditionError(
      absl::StrCat("io_uring lacks ", what, " (", since, "); pollux's io_uring backend needs it"));
}

// Waits (at most `ms`) for one CQE and copies it.
int wait_one(io_uring* ring, io_uring_cqe* out, int ms) {
  __kernel_timespec ts{};
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = static_cast<long long>(ms % 1000) * 1'000'000;
  io_uring_cqe* cqe = nullptr;
  const int ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
  if (ret < 0) return ret;
  *out = *cqe;
  io_uring_cqe_seen(ring, cqe);
  return 0;
}

absl::Status probe_multishot_accept(io_uring* ring) {
  OwnedFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return errno_status(errno, "io_uring probe: socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  // SAFETY: sockaddr_in may be viewed as a sockaddr.
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  if (::bind(listener.get(), sa, len) != 0 || ::listen(listener.get(), 4) != 0 ||
      ::getsockname(listener.get(), sa, &len) != 0) {
    return errno_status(errno, "io_uring probe: a loopback listener");
  }
  constexpr uint64_t kAcceptTag = 7;
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  io_uring_prep_multishot_accept(sqe, listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, kAcceptTag);
  int ret = io_uring_submit(ring);
  if (ret < 0) return errno_status(-ret, "io_uring probe: io_uring_enter (multishot accept)");
  OwnedFd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!client.valid()) return errno_status(errno, "io_uring probe: socket");
  if (::connect(client.get(), sa, len) != 0 && errno != EINPROGRESS) {
    return errno_status(errno, "io_uring probe: loopback connect");
  }
  io_uring_cqe cqe{};
  ret = wait_one(ring, &cqe, 2000);
  if (ret < 0) return errno_status(-ret, "io_uring probe: waiting for the multishot accept");
  if (cqe.user_data != kAcceptTag) {
    return absl::InternalError("io_uring probe: an unexpected completion");
  }
  if (cqe.res < 0) {
    if (cqe.res == -EINVAL) return missing("multishot accept", "kernel 5.19");
    return errno_status(-cqe.res, "io_uring probe: multishot accept");
  }
  ::close(cqe.res);
  if (!(cqe.flags & IORING_CQE_F_MORE)) return missing("multishot accept", "kernel 5.19");
  // Cancel it and wait for its final CQE, so the ring goes away idle.
  sqe = io_uring_get_sqe(ring);
  io_uring_prep_cancel64(sqe, kAcceptTag, 0);
  io_uring_sqe_set_data64(sqe, 0);
  io_uring_submit(ring);
  for (int i = 0; i < 4; ++i) {
    if (wait_one(ring, &cqe, 1000) < 0) break;
    if (cqe.user_data == kAcceptTag && cqe.res >= 0) ::close(cqe.res);
    if (cqe.user_data == kAcceptTag && !(cqe.flags & IORING_CQE_F_MORE)) break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status probe_io_uring_uncached() {
  io_uring ring;
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  int ret = io_uring_queue_init_params(8, &ring, &params);
  if (ret < 0) return errno_status(-ret, "io_uring_setup");
  RingGuard guard{&ring};
  if (!(params.features & IORING_FEAT_NODROP)) return missing("IORING_FEAT_NODROP", "kernel 5.5");
  if (!(params.features & IORING_FEAT_FAST_POLL)) {
    return missing("IORING_FEAT_FAST_POLL", "kernel 5.7");
  }
  {
    constexpr int kOps = 256;
    std::unique_ptr<char[]> storage(
        new char[sizeof(io_uring_probe) + kOps * sizeof(io_uring_probe_op)]());
    // SAFETY: io_uring_probe is a header followed by its flexible array of
    // ops; the storage is zeroed and large enough for kOps of them.
    auto* probe = reinterpret_cast<io_uring_probe*>(storage.get());
    ret = io_uring_register_probe(&ring, probe, kOps);
    if (ret < 0) return errno_status(-ret, "io_uring_register(IORING_REGISTER_PROBE)");
    for (const auto& op : kOpcodes) {
      if (!io_uring_opcode_supported(probe, op.op)) {
        return missing(absl::StrCat("the ", op.name, " opcode").c_str(), "an older kernel");
      }
    }
  }
  {
    // A provided-buffer ring of 8 entries, registered and removed again.
    constexpr unsigned kEntries = 8;
    void* mem = nullptr;
    if (::posix_memalign(&mem, 4096, 4096) != 0) return absl::ResourceExhaustedError("io_uring probe: memory");
    std::unique_ptr<void, void (*)(void*)> hold(mem, std::free);
    std::memset(mem, 0, 4096);
    io_uring_buf_reg reg;
    std::memset(&reg, 0, sizeof(reg));
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = kEntries;
    reg.bgid = 0;
    ret = io_uring_register_buf_ring(&ring, &reg, 0);
    if (ret == -EINVAL) return missing("provided-buffer rings", "kernel 5.19");
    if (ret < 0) return errno_status(-ret, "io_uring_register(IORING_REGISTER_PBUF_RING)");
    io_uring_unregister_buf_ring(&ring, 0);
  }
  {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 1);
    ret = io_uring_submit_and_wait(&ring, 1);
    if (ret < 0) return errno_status(-ret, "io_uring_enter (a NOP)");
    io_uring_cqe cqe{};
    ret = wait_one(&ring, &cqe, 1000);
    if (ret < 0) return errno_status(-ret, "io_uring_enter (waiting for a NOP)");
    if (cqe.res < 0) return errno_status(-cqe.res, "io_uring NOP");
  }
  return probe_multishot_accept(&ring);
}

absl::Status probe_io_uring() {
  static auto* mu = new detail::Mutex;  // never destroyed: usable until exit
  static pid_t probed_in = 0;
  static auto* result = new absl::Status;
  detail::MutexLock lock(*mu);
  if (probed_in != ::getpid()) {
    *result = probe_io_uring_uncached();
    probed_in = ::getpid();
  }
  return *result;
}

}  // namespace pollux::reactor
