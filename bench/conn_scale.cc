// Resident memory per TCP connection at scale (issue 17): does what pollux
// holds per connection stay the same from 1,000 to 9,000 connections?
//
//   ./bazelw run -c opt //bench:conn_scale                    # idle pairs
//   ./bazelw run -c opt //bench:conn_scale -- --pending_read  # a read parked on each end
//   ./bazelw run -c opt //bench:conn_scale -- --max=900       # stages 100, 300, 900
//
// One run, one current_thread Runtime, one listener on 127.0.0.1:0. A
// connection is an accepted + connected TcpStream pair, both ends kept in
// this process, nothing in flight; with --pending_read each end also has a
// spawned task awaiting a read into a 4 KiB buffer (so 8,192 bytes of the
// figure are the two buffers, zero-filled and therefore resident).
// Connections are added in stages up to --max/9, --max/3 and --max (1,000,
// 3,000 and 9,000 by default); after each stage one table row gives, per
// connection, against a baseline taken before the first measured connection
// (runtime built, listener bound, one warm-up pair, and in --pending_read a
// warm-up read, all dropped, so first-use allocations are not counted):
//   rss/conn       (VmRSS from /proc/self/status - baseline) / connections
//   marginal/conn  the same over this stage's new connections only
//   heap/conn      glibc mallinfo2 in-use bytes (uordblks + hblkhd), same
// A per-connection figure that grows with the count would show as a
// marginal above the earlier rows'. Both include what memory_bench's 200
// pairs cannot see: FdOwner's process-wide records (reactor/internal/
// fd_records.h, 72 bytes per fd number, in chunks of 1,024 never freed),
// 144 bytes a pair once the fds pass the first chunk. The pair vector is reserved for --max
// up front; its pages count as they fill (sizeof(pair) bytes a connection).
//
// Not in RSS: the kernel's side (socket structs, buffers, io_uring's poll
// entries). The footer prints the change in /proc/net/sockstat's TCP
// "inuse" and "mem" (pages) and, where /proc/slabinfo is readable (root),
// in the slab caches a socket lives in (active objects x object size) per
// connection; both are system-wide: other processes move them too, and
// SLUB merges caches of one object size, so a name may hold another cache's
// objects (eventpoll_epi grows by ~2 objects a pair on io_uring, which makes
// no epoll item): read the total, not the split.
//
// Connects go in batches of --batch (256; at most the listen backlog of
// 1,024): that many connect tasks are spawned, then as many accepts are
// awaited, then the connects. 9,000 pairs take well under a second on loopback; an
// alarm(kWatchdogSeconds) ends a run that hangs.
//
// Needs 2 fds a pair plus the listener and the runtime's own: the soft
// RLIMIT_NOFILE is raised to the hard limit (directly here: bench binaries
// are not testonly, so tests/rlimit.h is out of reach), and a limit too low
// for --max ends the run with a message saying which --max would fit.
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "executor/yield_now.h"
#include "future/assert.h"
#include "future/task.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"

ABSL_FLAG(int, max, 9000, "connections at the last stage; the stages are max/9, max/3, max");
ABSL_FLAG(bool, pending_read, false, "park a 4 KiB read on each end of every connection");
ABSL_FLAG(int, batch, 256, "connects in flight at once, 1..1024 (the listen backlog)");
ABSL_FLAG(std::string, backend, "auto", "auto, io_uring or epoll");

namespace {

using pollux::JoinHandle;
using pollux::Task;
using pollux::net::TcpListener;
using pollux::net::TcpStream;

constexpr size_t kReadSize = 4096;     // per pending read
constexpr uint64_t kFdHeadroom = 64;   // listener, ring/epoll, eventfds, stdio, warm-up
constexpr unsigned kWatchdogSeconds = 120;

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in
// force afterwards (UINT64_MAX for RLIM_INFINITY, 0 if unreadable).
uint64_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur != lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(lim.rlim_cur);
}

// VmRSS in bytes (the kernel reports kB).
int64_t vm_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoll(line.c_str() + 6, nullptr, 10) * 1024;
  }
  POLLUX_CHECK(false, "no VmRSS line in /proc/self/status");
  return 0;
}

int64_t heap_in_use_bytes() {
  const struct mallinfo2 mi = ::mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
}

// /proc/net/sockstat's "TCP: inuse N ... mem M" (M in pages), system-wide.
struct SockStat {
  int64_t inuse = -1;
  int64_t mem_pages = -1;
};

SockStat tcp_sockstat() {
  std::ifstream in("/proc/net/sockstat");
  std::string line;
  SockStat s;
  while (std::getline(in, line)) {
    if (line.rfind("TCP:", 0) != 0) continue;
    std::istringstream words(line.substr(4));
    std::string key;
    int64_t value = 0;
    while (words >> key >> value) {
      if (key == "inuse") s.inuse = value;
      if (key == "mem") s.mem_pages = value;
    }
  }
  return s;
}

// The slab caches an idle socket pair and its pending reads occupy: the
// socket (TCP), its inode, file and dentry, an epoll item (epoll backend),
// an io_uring request (io_uring backend, per pending read).
constexpr const char* kSlabCaches[] = {"TCP",           "sock_inode_cache", "filp", "dentry",
                                       "eventpoll_epi", "io_kiocb"};
constexpr size_t kNumSlabCaches = sizeof(kSlabCaches) / sizeof(kSlabCaches[0]);

// Bytes in use in each of kSlabCaches (active_objs x objsize); empty when
// /proc/slabinfo cannot be read (it needs root).
std::vector<int64_t> slab_bytes() {
  std::ifstream in("/proc/slabinfo");
  std::vector<int64_t> bytes;
  if (!in) return bytes;
  bytes.assign(kNumSlabCaches, 0);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name;
    int64_t active = 0, total = 0, size = 0;
    if (!(words >> name >> active >> total >> size)) continue;
    for (size_t i = 0; i < kNumSlabCaches; ++i) {
      if (name == kSlabCaches[i]) bytes[i] = active * size;
    }
  }
  return bytes;
}

struct Sample {
  int64_t rss;
  int64_t heap;
  static Sample now() { return Sample{vm_rss_bytes(), heap_in_use_bytes()}; }
};

using Pair = std::pair<TcpStream, TcpStream>;

// Connects `count` more pairs onto `pairs`, `batch` at a time.
Task<void> connect_pairs(TcpListener& l, std::vector<Pair>& pairs, int count, int batch) {
  const pollux::net::SocketAddr addr = l.local_addr();
  while (count > 0) {
    const int n = count < batch ? count : batch;
    std::vector<JoinHandle<absl::StatusOr<TcpStream>>> connects;
    connects.reserve(n);
    for (int i = 0; i < n; ++i) connects.push_back(pollux::spawn(TcpStream::connect(addr)));
    std::vector<TcpStream> accepted;
    accepted.reserve(n);
    for (int i = 0; i < n; ++i) {
      auto a = co_await l.accept();
      POLLUX_CHECK(a.ok(), "accept on 127.0.0.1 failed (see the fd limit line above)");
      accepted.push_back(std::move(a->first));
    }
    for (int i = 0; i < n; ++i) {
      auto c = co_await connects[i];
      POLLUX_CHECK(c.ok() && c.value().ok(), "connect to 127.0.0.1 failed");
      pairs.emplace_back(std::move(*c.value()), std::move(accepted[i]));
    }
    count -= n;
  }
}

// Spawns a kReadSize read on both ends of pairs[from, end) and yields until
// every one of them had its first poll (which starts the read).
Task<void> park_reads(std::vector<Pair>& pairs, size_t from,
                      std::vector<JoinHandle<pollux::reactor::IoResult>>& reads) {
  for (size_t i = from; i < pairs.size(); ++i) {
    reads.push_back(pollux::spawn(pairs[i].first.read(std::vector<char>(kReadSize))));
    reads.push_back(pollux::spawn(pairs[i].second.read(std::vector<char>(kReadSize))));
  }
  const size_t spawned = 2 * (pairs.size() - from);
  for (size_t i = 0; i < spawned / pollux::LocalExecutor::kTickPolls + 2; ++i) {
    co_await pollux::yield_now();
  }
}

double per(int64_t bytes, int64_t n) { return n > 0 ? static_cast<double>(bytes) / n : 0; }

Task<int> run(int max, bool pending_read, int batch) {
  const int stages[3] = {max / 9, max / 3, max};
  absl::StatusOr<TcpListener> l =
      TcpListener::bind(*pollux::net::SocketAddr::parse("127.0.0.1:0"));
  POLLUX_CHECK(l.ok(), "bind 127.0.0.1:0");

  std::vector<Pair> pairs;
  pairs.reserve(static_cast<size_t>(max));
  std::vector<JoinHandle<pollux::reactor::IoResult>> reads;
  reads.reserve(pending_read ? 2 * static_cast<size_t>(max) : 0);
  {  // Warm-up: first-use allocations (op slabs' first chunks, listener state).
    std::vector<Pair> warm;
    co_await connect_pairs(*l, warm, 1, 1);
    if (pending_read) {
      std::vector<JoinHandle<pollux::reactor::IoResult>> warm_reads;
      co_await park_reads(warm, 0, warm_reads);
      for (auto& h : warm_reads) h.abort();
      for (auto& h : warm_reads) {
        auto r = co_await h;
        POLLUX_CHECK(!r.ok() && r.is_cancelled(), "a warm-up read was not cancelled");
      }
    }
  }
  const Sample base = Sample::now();
  const SockStat sock_base = tcp_sockstat();
  const std::vector<int64_t> slab_base = slab_bytes();
  std::printf("baseline: VmRSS %" PRId64 " KiB, heap in use %" PRId64 " KiB\n\n",
              base.rss / 1024, base.heap / 1024);
  std::printf("| connections | VmRSS KiB | rss/conn B | marginal/conn B | heap/conn B | stage s |\n");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");

  Sample prev = base;
  int prev_n = 0;
  double first_rss_per = 0;
  double last_rss_per = 0;
  for (int stage : stages) {
    const auto t0 = std::chrono::steady_clock::now();
    const size_t from = pairs.size();
    co_await connect_pairs(*l, pairs, stage - prev_n, batch);
    if (pending_read) co_await park_reads(pairs, from, reads);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto& h : reads) POLLUX_CHECK(!h.is_finished(), "a read on an idle connection finished");
    const Sample s = Sample::now();
    const double rss_per = per(s.rss - base.rss, stage);
    std::printf("| %d | %" PRId64 " | %.0f | %.0f | %.0f | %.2f |\n", stage, s.rss / 1024, rss_per,
                per(s.rss - prev.rss, stage - prev_n), per(s.heap - base.heap, stage), secs);
    std::fflush(stdout);
    if (prev_n == 0) first_rss_per = rss_per;
    last_rss_per = rss_per;
    prev = s;
    prev_n = stage;
  }
  const SockStat sock = tcp_sockstat();
  std::printf("\nrss/conn at %d over rss/conn at %d: %.2f\n", stages[2], stages[0],
              first_rss_per > 0 ? last_rss_per / first_rss_per : 0);
  if (sock.inuse >= 0 && sock_base.inuse >= 0) {
    std::printf(
        "kernel, not in RSS (/proc/net/sockstat, system-wide): TCP sockets in use %+" PRId64
        " (expect %d), TCP buffer memory %+" PRId64 " pages\n",
        sock.inuse - sock_base.inuse, 2 * stages[2], sock.mem_pages - sock_base.mem_pages);
  }
  const std::vector<int64_t> slab = slab_bytes();
  if (!slab.empty() && slab.size() == slab_base.size()) {
    std::printf("kernel slab per connection at %d (/proc/slabinfo, system-wide), B:", stages[2]);
    int64_t total = 0;
    for (size_t i = 0; i < kNumSlabCaches; ++i) {
      total += slab[i] - slab_base[i];
      std::printf(" %s %.0f,", kSlabCaches[i], per(slab[i] - slab_base[i], stages[2]));
    }
    std::printf(" total %.0f\n", per(total, stages[2]));
  } else {
    std::printf(
        "(/proc/slabinfo unreadable, needs root: the sockets' kernel structs are not shown; "
        "none of the kernel side is in VmRSS)\n");
  }

  for (auto& h : reads) h.abort();
  for (auto& h : reads) {
    auto r = co_await h;
    POLLUX_CHECK(!r.ok() && r.is_cancelled(), "a pending read was not cancelled");
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "resident memory per idle TCP connection at max/9, max/3 and max connections");
  absl::ParseCommandLine(argc, argv);
  const int max = absl::GetFlag(FLAGS_max);
  const bool pending_read = absl::GetFlag(FLAGS_pending_read);
  const int batch = absl::GetFlag(FLAGS_batch);
  const std::string backend = absl::GetFlag(FLAGS_backend);
  if (max < 9 || max > 1'000'000) {
    std::fprintf(stderr, "conn_scale: --max=%d: give 9..1000000 (the first stage is max/9)\n", max);
    return 2;
  }
  if (batch < 1 || batch > 1024) {
    std::fprintf(stderr, "conn_scale: --batch=%d: give 1..1024 (the listen backlog)\n", batch);
    return 2;
  }
  pollux::BackendKind kind = pollux::BackendKind::kAuto;
  if (backend == "io_uring") {
    kind = pollux::BackendKind::kIoUring;
  } else if (backend == "epoll") {
    kind = pollux::BackendKind::kEpoll;
  } else if (backend != "auto") {
    std::fprintf(stderr, "conn_scale: --backend=%s: give auto, io_uring or epoll\n",
                 backend.c_str());
    return 2;
  }

  const uint64_t limit = raise_fd_limit();
  const uint64_t need = 2 * static_cast<uint64_t>(max) + kFdHeadroom;
  if (limit < need) {
    const uint64_t fits = limit > kFdHeadroom ? (limit - kFdHeadroom) / 2 : 0;
    std::fprintf(stderr,
                 "conn_scale: RLIMIT_NOFILE is %" PRIu64
                 " (soft limit raised to the hard one); %d connections need %" PRIu64
                 " (2 fds a pair + %" PRIu64
                 " for the listener and runtime). Raise the hard limit (ulimit -Hn, "
                 "limits.conf) or pass --max=%" PRIu64 " or less.\n",
                 limit, max, need, kFdHeadroom, fits);
    return 1;
  }
  ::alarm(kWatchdogSeconds);  // default SIGALRM action ends a hung run

  absl::StatusOr<pollux::Runtime> rt =
      pollux::Runtime::Builder().current_thread().backend(kind).enable_all().build();
  if (!rt.ok()) {
    std::fprintf(stderr, "conn_scale: could not build the runtime: %s\n",
                 rt.status().ToString().c_str());
    return 1;
  }
  std::printf("conn_scale: %s, backend %s (%s), RLIMIT_NOFILE %" PRIu64 ", page size %ld\n",
              pending_read ? "a pending 4 KiB read on each end" : "idle pairs",
              rt->backend().name(), rt->backend().reason.c_str(), limit, ::sysconf(_SC_PAGESIZE));
  return rt->block_on(run(max, pending_read, batch));
}
