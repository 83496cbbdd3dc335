// Cross-core wake: eventfd against IORING_OP_MSG_RING, in raw liburing.
//
//   ./bazelw run -c opt //bench:wake_bench -- --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true     (one command line)
//
// Why: on thread_per_core, a wake of a task owned by another core pushes it
// onto that core's inject queue and unparks the core, which may sleep in
// io_uring_enter. pollux unparks with one write(2) to an eventfd on which the
// target ring keeps a read armed (reactor/uring/io_uring_backend.cc). A
// thread that owns a ring could instead post a CQE straight into the target
// ring with IORING_OP_MSG_RING (5.18+): no eventfd, no read to re-arm. This
// binary measures both, side by side, without the runtime, so the figures
// are the mechanisms' floor and not pollux's bookkeeping.
//
// Every benchmark is captured once per ring setup: defer_taskrun is pollux's
// first choice (SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG), coop_taskrun
// its fallback (SINGLE_ISSUER | COOP_TASKRUN | TASKRUN_FLAG), plain is no
// flags. Both rings of a pair use the same setup. The benchmark's thread (A,
// the waker) is pinned to CPU 0 and the peer (B) to CPU 1, where allowed.
//
// BM_RoundTrip_Eventfd: A writes B's eventfd; B, asleep in
//   io_uring_submit_and_wait on an armed IORING_OP_READ of it, wakes,
//   re-arms and writes A's eventfd, which A's ring watches the same way.
//   Wall time per round trip (two wakes of a sleeping thread).
// BM_RoundTrip_MsgRing: the same ping-pong, each wake one MSG_RING SQE into
//   the other ring, submitted by the enter that then waits for the answer.
//   Round trips run cross_cpu (B on CPU 1: what thread_per_core does, but on
//   this VM dominated by waking a halted vCPU) and same_cpu (B on CPU 0 too:
//   a context switch instead, so the mechanisms' own cost shows).
// BM_Sender_Eventfd: A's CPU time per wake when B is busy (it never sleeps:
//   it enters with GETEVENTS, drains, spins a little, repeats), so wakes land
//   on a running target and are drained in batches. One write(2) per wake.
// BM_Sender_MsgRing/batch:N: the same target, woken with MSG_RING: N SQEs
//   prepared, then one io_uring_submit. N = 1 is a submit per wake; N = 32 is
//   how a runtime would use it, the wake riding along the enter its next tick
//   makes anyway (prep plus 1/32 of a submit per wake).
//   ns_per_wake is A's CPU time per wake (the counter prints seconds, so
//   "250n" is 250 ns). A stops when B is kWindow wakes behind, with the
//   clock paused: that wait is the receiver's cost, not the sender's.
// BM_Probe_*: when does a wake posted to a busy ring become visible? B spins
//   on its CQ tail without entering the kernel; visible_without_enter says
//   whether the CQE showed up, visible_after_getevents whether one GETEVENTS
//   enter made it show up, sq_taskrun whether IORING_SQ_TASKRUN was raised
//   meanwhile (what a busy runtime can poll to know it should enter).
#include <benchmark/benchmark.h>
#include <liburing.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace {

constexpr unsigned kDefer =
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
constexpr unsigned kCoop =
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
constexpr unsigned kPlain = 0;

// pollux's ring sizes (IoUringOptions' defaults).
constexpr unsigned kSqEntries = 256;
constexpr unsigned kCqEntries = 4096;

// CQE user_data. A MSG_RING's own (source) CQE is kSendTag; with
// IOSQE_CQE_SKIP_SUCCESS it only appears when the message failed.
constexpr uint64_t kReadTag = 1;
constexpr uint64_t kWakeTag = 2;
constexpr uint64_t kStopTag = 3;
constexpr uint64_t kSendTag = 4;

// Bounds. No wait is longer than kTimeout: a lost wake fails the benchmark
// instead of hanging it. kMaxRounds is far above what a run can reach.
constexpr std::chrono::seconds kTimeout{5};
constexpr uint64_t kMaxRounds = uint64_t{1} << 40;
// Wakes in flight before the sender waits: well under the target's CQ, so
// MSG_RING never takes the CQ-overflow path.
constexpr uint64_t kWindow = 1024;
// The busy receiver's "work" between ticks, so wakes pile up and are drained
// in batches as on a loaded worker.
constexpr int kWorkSpins = 32;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

absl::Status errno_status(int err, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(err)));
}

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // Best effort: a container may forbid it; the figures then include migrations.
  (void)sched_setaffinity(0, sizeof(set), &set);
}

// Static storage: a read still armed when a failed run tears its ring down
// is cancelled asynchronously by the kernel, so it must never point into a
// stack frame. Each run owns them exclusively (benchmarks run one at a time).
alignas(64) uint64_t g_read_buf_a;
alignas(64) uint64_t g_read_buf_b;

class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() {
    if (live_) io_uring_queue_exit(&ring_);
  }
  // On the thread that will use it: SINGLE_ISSUER binds a ring to its creator.
  absl::Status init(unsigned flags) {
    io_uring_params p;
    std::memset(&p, 0, sizeof(p));
    p.flags = flags | IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    int ret = io_uring_queue_init_params(kSqEntries, &ring_, &p);
    if (ret < 0) return errno_status(-ret, absl::StrCat("io_uring_queue_init flags 0x", absl::Hex(flags)));
    live_ = true;
    return absl::OkStatus();
  }
  io_uring* get() { return &ring_; }
  int fd() const { return ring_.ring_fd; }

 private:
  io_uring ring_;
  bool live_ = false;
};

class EventFd {
 public:
  EventFd() = default;
  EventFd(const EventFd&) = delete;
  EventFd& operator=(const EventFd&) = delete;
  ~EventFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  // Blocking, as pollux's: it is only ever read through a ring.
  absl::Status init() {
    fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (fd_ < 0) return errno_status(errno, "eventfd");
    return absl::OkStatus();
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

absl::Status write_eventfd(int fd) {
  uint64_t one = 1;
  if (::write(fd, &one, sizeof(one)) != static_cast<ssize_t>(sizeof(one))) {
    return errno_status(errno, "eventfd write");
  }
  return absl::OkStatus();
}

absl::Status prep_read(io_uring* r, int efd, uint64_t* buf) {
  io_uring_sqe* sqe = io_uring_get_sqe(r);
  if (sqe == nullptr) return absl::ResourceExhaustedError("SQ full");
  io_uring_prep_read(sqe, efd, buf, sizeof(*buf), 0);
  io_uring_sqe_set_data64(sqe, kReadTag);
  return absl::OkStatus();
}

absl::Status prep_msg(io_uring* r, int target_ring_fd, uint64_t tag) {
  io_uring_sqe* sqe = io_uring_get_sqe(r);
  if (sqe == nullptr) return absl::ResourceExhaustedError("SQ full");
  io_uring_prep_msg_ring(sqe, target_ring_fd, 0, tag, 0);
  io_uring_sqe_set_data64(sqe, kSendTag);
  // A runtime would not want a CQE per wake on its own ring either.
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  return absl::OkStatus();
}

// Submits whatever is queued and sleeps until one CQE; returns its tag and res.
absl::Status wait_one(io_uring* r, uint64_t* tag, int* res) {
  __kernel_timespec ts{};
  ts.tv_sec = kTimeout.count();
  io_uring_cqe* cqe = nullptr;
  int ret = io_uring_submit_and_wait_timeout(r, &cqe, 1, &ts, nullptr);
  if (ret < 0) return errno_status(-ret, "io_uring_submit_and_wait_timeout");
  if (cqe == nullptr) return absl::InternalError("no CQE after a successful wait");
  *tag = cqe->user_data;
  *res = cqe->res;
  io_uring_cqe_seen(r, cqe);
  return absl::OkStatus();
}

absl::Status expect(uint64_t tag, int res, uint64_t want_tag) {
  if (tag == want_tag) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CQE tag ", tag, " res ", res, " (", std::strerror(res < 0 ? -res : 0),
                                          "), wanted tag ", want_tag));
}

// B: a thread pinned to a CPU (1 unless told) that builds its own ring there
// and runs body.
class Peer {
 public:
  Peer() = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  // Every body's waits are bounded by kTimeout, so this join is too.
  ~Peer() {
    if (thread_.joinable()) thread_.join();
  }

  // body: absl::Status(Ring&). Returns once B's ring exists (its fd is then
  // ring_fd()) or failed to.
  template <typename Body>
  absl::Status start(unsigned flags, Body body, int cpu = 1) {
    std::promise<absl::StatusOr<int>> ready;
    std::future<absl::StatusOr<int>> ready_future = ready.get_future();
    thread_ = std::thread([this, flags, cpu, body = std::move(body), ready = std::move(ready)]() mutable {
      pin_to_cpu(cpu);
      Ring ring;
      absl::Status s = ring.init(flags);
      if (!s.ok()) {
        result_ = s;
        ready.set_value(s);
        return;
      }
      ready.set_value(ring.fd());
      result_ = body(ring);
    });
    if (ready_future.wait_for(kTimeout) != std::future_status::ready) {
      return absl::DeadlineExceededError("peer thread did not start");
    }
    absl::StatusOr<int> fd = ready_future.get();
    if (!fd.ok()) return fd.status();
    ring_fd_ = *fd;
    return absl::OkStatus();
  }
  int ring_fd() const { return ring_fd_; }
  absl::Status join() {
    if (thread_.joinable()) thread_.join();
    return result_;
  }

 private:
  std::thread thread_;
  int ring_fd_ = -1;
  absl::Status result_;  // written by the thread, read after join
};

// The run's verdict: the first of the loop's and the peer's errors.
void finish(benchmark::State& state, const absl::Status& loop, const absl::Status& peer) {
  const absl::Status& s = !loop.ok() ? loop : peer;
  if (!s.ok()) state.SkipWithError(s.ToString().c_str());
}

// ---- (a) and (b): round trips between two sleeping threads ----

void BM_RoundTrip_Eventfd(benchmark::State& state, unsigned flags, int peer_cpu) {
  pin_to_cpu(0);
  EventFd efd_a, efd_b;
  Ring ring_a;
  absl::Status s = efd_a.init();
  if (s.ok()) s = efd_b.init();
  if (s.ok()) s = ring_a.init(flags);
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  std::atomic<bool> stop{false};
  Peer peer;
  s = peer.start(flags, [&](Ring& ring_b) -> absl::Status {
    absl::Status bs = prep_read(ring_b.get(), efd_b.fd(), &g_read_buf_b);
    for (uint64_t i = 0; bs.ok() && i < kMaxRounds; ++i) {
      uint64_t tag;
      int res;
      // Submits the re-armed read, then sleeps until A's write completes it.
      bs = wait_one(ring_b.get(), &tag, &res);
      if (bs.ok()) bs = expect(tag, res, kReadTag);
      // acquire: A stores stop before its last write, which this read consumed.
      if (bs.ok() && stop.load(std::memory_order_acquire)) return absl::OkStatus();
      // Prepared, not submitted: it goes in with the next wait, one enter.
      if (bs.ok()) bs = prep_read(ring_b.get(), efd_b.fd(), &g_read_buf_b);
      if (bs.ok()) bs = write_eventfd(efd_a.fd());
    }
    return bs.ok() ? absl::ResourceExhaustedError("peer: kMaxRounds reached") : bs;
  }, peer_cpu);
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());

  s = prep_read(ring_a.get(), efd_a.fd(), &g_read_buf_a);
  for (auto _ : state) {
    if (!s.ok()) break;
    uint64_t tag;
    int res;
    s = write_eventfd(efd_b.fd());
    if (s.ok()) s = wait_one(ring_a.get(), &tag, &res);
    if (s.ok()) s = expect(tag, res, kReadTag);
    if (s.ok()) s = prep_read(ring_a.get(), efd_a.fd(), &g_read_buf_a);
  }
  stop.store(true, std::memory_order_release);
  absl::Status stop_write = write_eventfd(efd_b.fd());
  if (s.ok()) s = stop_write;
  finish(state, s, peer.join());
  state.SetItemsProcessed(state.iterations());
}

void BM_RoundTrip_MsgRing(benchmark::State& state, unsigned flags, int peer_cpu) {
  pin_to_cpu(0);
  Ring ring_a;
  absl::Status s = ring_a.init(flags);
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  const int a_fd = ring_a.fd();
  Peer peer;
  s = peer.start(flags, [a_fd](Ring& ring_b) -> absl::Status {
    absl::Status bs;
    for (uint64_t i = 0; bs.ok() && i < kMaxRounds; ++i) {
      uint64_t tag;
      int res;
      // Submits the answer to the previous wake, then sleeps for the next.
      bs = wait_one(ring_b.get(), &tag, &res);
      if (bs.ok() && tag == kStopTag) return absl::OkStatus();
      if (bs.ok()) bs = expect(tag, res, kWakeTag);
      if (bs.ok()) bs = prep_msg(ring_b.get(), a_fd, kWakeTag);
    }
    return bs.ok() ? absl::ResourceExhaustedError("peer: kMaxRounds reached") : bs;
  }, peer_cpu);
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  const int b_fd = peer.ring_fd();

  for (auto _ : state) {
    if (!s.ok()) break;
    uint64_t tag;
    int res;
    s = prep_msg(ring_a.get(), b_fd, kWakeTag);
    if (s.ok()) s = wait_one(ring_a.get(), &tag, &res);
    if (s.ok()) s = expect(tag, res, kWakeTag);
  }
  absl::Status stop = prep_msg(ring_a.get(), b_fd, kStopTag);
  if (stop.ok() && io_uring_submit(ring_a.get()) != 1) stop = absl::InternalError("stop message not submitted");
  if (s.ok()) s = stop;
  finish(state, s, peer.join());
  state.SetItemsProcessed(state.iterations());
}

// ---- (c): the sender's cost when the target is busy ----

enum class WakeKind { kEventfd, kMsgRing };

struct alignas(64) Sink {
  // Wakes B has drained; release so the sender's window check is exact.
  alignas(64) std::atomic<uint64_t> drained{0};
  alignas(64) std::atomic<bool> stop{false};
  // B's statistics, read after join.
  uint64_t ticks_with_wakes = 0;
  uint64_t wakes = 0;
};

// B never sleeps: each tick is one non-blocking enter with GETEVENTS (a
// busy runtime's tick: it submits, and runs DEFER_TASKRUN's deferred
// completions), then a drain of the CQ, then a little "work".
absl::Status busy_receiver(Ring& ring, WakeKind kind, int efd, Sink& sink) {
  io_uring* r = ring.get();
  absl::Status s;
  if (kind == WakeKind::kEventfd) s = prep_read(r, efd, &g_read_buf_b);
  uint64_t drained = 0;
  uint64_t drained_at_check = 0;
  auto last_progress = std::chrono::steady_clock::now();
  for (uint64_t tick = 0; s.ok() && tick < kMaxRounds; ++tick) {
    int ret = io_uring_submit_and_get_events(r);
    if (ret < 0) return errno_status(-ret, "io_uring_submit_and_get_events");
    unsigned head;
    unsigned seen = 0;
    io_uring_cqe* cqe;
    bool read_done = false;
    bool stopped = false;
    io_uring_for_each_cqe(r, head, cqe) {
      ++seen;
      if (cqe->user_data == kReadTag && cqe->res == static_cast<int>(sizeof(uint64_t))) {
        drained += g_read_buf_b;  // the eventfd count: every write since the last read
        read_done = true;
      } else if (cqe->user_data == kWakeTag) {
        ++drained;
      } else if (cqe->user_data == kStopTag) {
        stopped = true;
      } else if (s.ok()) {
        s = expect(cqe->user_data, cqe->res, kind == WakeKind::kEventfd ? kReadTag : kWakeTag);
      }
    }
    io_uring_cq_advance(r, seen);
    if (read_done) {
      // Stop is stored before the sender's last write, so seeing it after a
      // completed read means nothing else is coming and no read is in flight.
      if (sink.stop.load(std::memory_order_acquire)) stopped = true;
      else if (s.ok()) s = prep_read(r, efd, &g_read_buf_b);
    }
    if (seen > 0) {
      sink.drained.store(drained, std::memory_order_release);
      ++sink.ticks_with_wakes;
    }
    if (stopped) {
      sink.wakes = drained;
      return s;
    }
    for (int k = 0; k < kWorkSpins; ++k) cpu_relax();
    if ((tick & 1023) == 0) {
      auto now = std::chrono::steady_clock::now();
      if (drained != drained_at_check) {
        drained_at_check = drained;
        last_progress = now;
      } else if (now - last_progress > kTimeout) {
        s = absl::DeadlineExceededError("receiver: no wake for 5 s");
      }
    }
  }
  return s.ok() ? absl::ResourceExhaustedError("receiver: kMaxRounds reached") : s;
}

// Keeps at most kWindow wakes in flight. The wait is B's drain rate, not the
// sender's cost, so the clock is paused for it.
absl::Status throttle(benchmark::State& state, uint64_t sent, Sink& sink) {
  if (sent - sink.drained.load(std::memory_order_acquire) <= kWindow) return absl::OkStatus();
  state.PauseTiming();
  absl::Status s;
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < kMaxRounds; ++i) {
    if (sent - sink.drained.load(std::memory_order_acquire) <= kWindow / 2) break;
    cpu_relax();
    if ((i & 1023) == 1023 && std::chrono::steady_clock::now() - start > kTimeout) {
      s = absl::DeadlineExceededError("sender: receiver stopped draining");
      break;
    }
  }
  state.ResumeTiming();
  return s;
}

void report_wakes(benchmark::State& state, uint64_t sent, const Sink& sink) {
  state.counters["ns_per_wake"] =
      benchmark::Counter(static_cast<double>(sent), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["wakes_per_drain"] =
      static_cast<double>(sink.wakes) / static_cast<double>(sink.ticks_with_wakes > 0 ? sink.ticks_with_wakes : 1);
  state.SetItemsProcessed(static_cast<int64_t>(sent));
}

// The only wake a foreign thread (no ring of its own) can make.
void BM_Sender_Eventfd(benchmark::State& state, unsigned flags) {
  pin_to_cpu(0);
  EventFd efd;
  absl::Status s = efd.init();
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  Sink sink;
  Peer peer;
  const int fd = efd.fd();
  s = peer.start(flags, [fd, &sink](Ring& ring_b) { return busy_receiver(ring_b, WakeKind::kEventfd, fd, sink); });
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());

  uint64_t sent = 0;
  for (auto _ : state) {
    if (!s.ok()) break;
    s = write_eventfd(fd);
    ++sent;
    // Not every wake: the load misses in cache (B writes the line), which
    // would be the sender paying for the harness.
    if ((sent & 63) == 0 && s.ok()) s = throttle(state, sent, sink);
  }
  sink.stop.store(true, std::memory_order_release);
  absl::Status stop_write = write_eventfd(fd);
  if (s.ok()) s = stop_write;
  finish(state, s, peer.join());
  report_wakes(state, sent, sink);
}

void BM_Sender_MsgRing(benchmark::State& state, unsigned flags) {
  const int batch = static_cast<int>(state.range(0));
  pin_to_cpu(0);
  Ring ring_a;
  absl::Status s = ring_a.init(flags);
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  if (batch < 1 || static_cast<unsigned>(batch) > kSqEntries) return state.SkipWithError("batch out of SQ range");
  Sink sink;
  Peer peer;
  s = peer.start(flags, [&sink](Ring& ring_b) { return busy_receiver(ring_b, WakeKind::kMsgRing, -1, sink); });
  if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
  const int b_fd = peer.ring_fd();
  io_uring* r = ring_a.get();

  uint64_t sent = 0;
  uint64_t checked = 0;
  for (auto _ : state) {
    if (!s.ok()) break;
    for (int i = 0; i < batch && s.ok(); ++i) s = prep_msg(r, b_fd, kWakeTag);
    if (s.ok() && io_uring_submit(r) != batch) s = absl::InternalError("short MSG_RING submit");
    sent += static_cast<uint64_t>(batch);
    // Successes post nothing here (CQE_SKIP_SUCCESS): any CQE is a failure.
    // A load of our own CQ tail, no syscall.
    if (s.ok() && io_uring_cq_ready(r) != 0) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_peek_cqe(r, &cqe) == 0 && cqe != nullptr) s = expect(cqe->user_data, cqe->res, kWakeTag);
      else s = absl::InternalError("CQ ready but no CQE");
    }
    if (sent - checked >= 64 && s.ok()) {
      checked = sent;
      s = throttle(state, sent, sink);
    }
  }
  absl::Status stop = prep_msg(r, b_fd, kStopTag);
  if (stop.ok() && io_uring_submit(r) != 1) stop = absl::InternalError("stop message not submitted");
  if (s.ok()) s = stop;
  finish(state, s, peer.join());
  report_wakes(state, sent, sink);
}

// ---- When does a wake to a busy ring become visible? ----

void BM_Probe(benchmark::State& state, unsigned flags, WakeKind kind) {
  pin_to_cpu(0);
  double without_enter = 0;
  double after_getevents = 0;
  double taskrun = 0;
  double runs = 0;
  for (auto _ : state) {
    EventFd efd;
    Ring ring_a;
    absl::Status s = kind == WakeKind::kEventfd ? efd.init() : ring_a.init(flags);
    if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
    std::atomic<bool> armed{false};
    bool seen_by_load = false;
    bool seen_after_enter = false;
    bool saw_taskrun = false;
    const int fd = efd.fd();
    Peer peer;
    s = peer.start(flags, [&](Ring& ring_b) -> absl::Status {
      io_uring* r = ring_b.get();
      if (kind == WakeKind::kEventfd) {
        absl::Status bs = prep_read(r, fd, &g_read_buf_b);
        if (!bs.ok()) return bs;
        if (io_uring_submit(r) != 1) return absl::InternalError("read not submitted");
      }
      armed.store(true, std::memory_order_release);
      // Userspace only: loads of the CQ tail and SQ flags, the vDSO clock.
      const auto start = std::chrono::steady_clock::now();
      for (uint64_t i = 0; i < kMaxRounds; ++i) {
        if (IO_URING_READ_ONCE(*r->sq.kflags) & IORING_SQ_TASKRUN) saw_taskrun = true;
        if (io_uring_cq_ready(r) != 0) {
          seen_by_load = true;
          break;
        }
        cpu_relax();
        if ((i & 1023) == 1023 && std::chrono::steady_clock::now() - start > std::chrono::milliseconds(50)) break;
      }
      if (!seen_by_load) {
        int ret = io_uring_get_events(r);
        if (ret < 0) return errno_status(-ret, "io_uring_get_events");
        seen_after_enter = io_uring_cq_ready(r) != 0;
      }
      // Leave no read armed behind (g_read_buf_b is reused by the next run).
      uint64_t tag;
      int res;
      return wait_one(r, &tag, &res);
    });
    if (!s.ok()) return state.SkipWithError(s.ToString().c_str());
    const auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < kMaxRounds && !armed.load(std::memory_order_acquire); ++i) {
      if (std::chrono::steady_clock::now() - start > kTimeout) break;
      std::this_thread::yield();
    }
    // Let B settle into its spin before the wake lands.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (kind == WakeKind::kEventfd) {
      s = write_eventfd(fd);
    } else {
      s = prep_msg(ring_a.get(), peer.ring_fd(), kWakeTag);
      if (s.ok() && io_uring_submit(ring_a.get()) != 1) s = absl::InternalError("MSG_RING not submitted");
    }
    absl::Status ps = peer.join();
    if (!s.ok() || !ps.ok()) return finish(state, s, ps);
    without_enter += seen_by_load ? 1 : 0;
    after_getevents += seen_by_load || seen_after_enter ? 1 : 0;
    taskrun += saw_taskrun ? 1 : 0;
    runs += 1;
  }
  if (runs == 0) runs = 1;
  state.counters["visible_without_enter"] = without_enter / runs;
  state.counters["visible_after_getevents"] = after_getevents / runs;
  state.counters["sq_taskrun"] = taskrun / runs;
}

BENCHMARK_CAPTURE(BM_RoundTrip_Eventfd, defer_taskrun/cross_cpu, kDefer, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_MsgRing, defer_taskrun/cross_cpu, kDefer, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_Eventfd, coop_taskrun/cross_cpu, kCoop, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_MsgRing, coop_taskrun/cross_cpu, kCoop, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_Eventfd, plain/cross_cpu, kPlain, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_MsgRing, plain/cross_cpu, kPlain, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_Eventfd, defer_taskrun/same_cpu, kDefer, 0)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_MsgRing, defer_taskrun/same_cpu, kDefer, 0)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_Eventfd, plain/same_cpu, kPlain, 0)->UseRealTime();
BENCHMARK_CAPTURE(BM_RoundTrip_MsgRing, plain/same_cpu, kPlain, 0)->UseRealTime();

BENCHMARK_CAPTURE(BM_Sender_Eventfd, defer_taskrun, kDefer);
BENCHMARK_CAPTURE(BM_Sender_MsgRing, defer_taskrun, kDefer)->ArgName("batch")->Arg(1)->Arg(32);
BENCHMARK_CAPTURE(BM_Sender_Eventfd, coop_taskrun, kCoop);
BENCHMARK_CAPTURE(BM_Sender_MsgRing, coop_taskrun, kCoop)->ArgName("batch")->Arg(1)->Arg(32);
BENCHMARK_CAPTURE(BM_Sender_Eventfd, plain, kPlain);
BENCHMARK_CAPTURE(BM_Sender_MsgRing, plain, kPlain)->ArgName("batch")->Arg(1)->Arg(32);

BENCHMARK_CAPTURE(BM_Probe, eventfd_defer_taskrun, kDefer, WakeKind::kEventfd)->Iterations(4)->UseRealTime();
BENCHMARK_CAPTURE(BM_Probe, msg_ring_defer_taskrun, kDefer, WakeKind::kMsgRing)->Iterations(4)->UseRealTime();
BENCHMARK_CAPTURE(BM_Probe, eventfd_coop_taskrun, kCoop, WakeKind::kEventfd)->Iterations(4)->UseRealTime();
BENCHMARK_CAPTURE(BM_Probe, msg_ring_coop_taskrun, kCoop, WakeKind::kMsgRing)->Iterations(4)->UseRealTime();
BENCHMARK_CAPTURE(BM_Probe, eventfd_plain, kPlain, WakeKind::kEventfd)->Iterations(4)->UseRealTime();
BENCHMARK_CAPTURE(BM_Probe, msg_ring_plain, kPlain, WakeKind::kMsgRing)->Iterations(4)->UseRealTime();

}  // namespace
