// Fault injection through IoUringOptions::syscalls (internal/uring_syscalls.h;
// reactor/epoll/fault_injection_test.cc is the epoll analogue):
// submits refused with -EAGAIN / -EBUSY / -ENOMEM (in io_uring_submit, in
// io_uring_submit_and_get_events and in io_uring_submit_and_wait_timeout,
// without making the real call), a full SQ (get_sqe returning null), short
// reads (a CQE's res rewritten, and an SQE's length cut before the kernel
// sees it), and a real CQ overflow (a 128-entry CQ and 2,000 nops in one
// tick). In every case every operation completes exactly once, no op slot
// leaks, and the runtime keeps working afterwards.
#include <fcntl.h>
#include <liburing.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/yield_now.h"
#include "future/poll_fn.h"
#include "future/ready.h"
#include "future/select.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "reactor/uring/internal/uring_syscalls.h"
#include "reactor/uring/io_uring_backend.h"
#include "reactor/ops.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"

namespace pollux {
namespace {

using reactor::IoResult;
using reactor::IoUringOptions;
using testing::Watchdog;

class FaultySyscalls : public reactor::UringSyscalls {
 public:
  // Faults still to inject; each is consumed as it fires.
  int fail_submit = 0;             // submit(): -submit_errno, real call skipped
  int fail_get_events = 0;         // submit_and_get_events(): same
  int fail_wait = 0;               // submit_and_wait_timeout(): same
  int submit_errno = EAGAIN;
  int null_sqes = 0;               // get_sqe(): null, as if the SQ were full
  uint32_t cap_read_cqe = 0;       // on_cqe(): a read's res cut to this (0: off)
  uint32_t cap_read_sqe = 0;       // on_prep(): a read's len cut to this (0: off)

  // What happened.
  int submit_calls = 0, submit_real = 0;
  int get_events_calls = 0, get_events_real = 0;
  int wait_calls = 0, wait_real = 0;
  int get_sqe_calls = 0;
  int cqe_reads_cut = 0;

  int faults_left() const { return fail_submit + fail_get_events + fail_wait + null_sqes; }

  io_uring_sqe* get_sqe(io_uring* ring) override {
    ++get_sqe_calls;
    if (null_sqes > 0) {
      --null_sqes;
      return nullptr;
    }
    return UringSyscalls::get_sqe(ring);
  }
  int submit(io_uring* ring) override {
    ++submit_calls;
    if (fail_submit > 0) {
      --fail_submit;
      return -submit_errno;
    }
    ++submit_real;
    return UringSyscalls::submit(ring);
  }
  int submit_and_get_events(io_uring* ring) override {
    ++get_events_calls;
    if (fail_get_events > 0) {
      --fail_get_events;
      return -submit_errno;
    }
    ++get_events_real;
    return UringSyscalls::submit_and_get_events(ring);
  }
  int submit_and_wait_timeout(io_uring* ring, io_uring_cqe** cqe, unsigned wait_nr,
                              __kernel_timespec* ts) override {
    ++wait_calls;
    if (fail_wait > 0) {
      --fail_wait;
      return -submit_errno;
    }
    ++wait_real;
    return UringSyscalls::submit_and_wait_timeout(ring, cqe, wait_nr, ts);
  }
  // Remembers the data reads (so on_cqe can tell their CQEs apart; the
  // backend's own eventfd read is not one: its buffer is 8 bytes), and
  // shortens them if asked.
  void on_prep(io_uring_sqe* sqe) override {
    if (sqe->opcode != IORING_OP_READ || sqe->len <= sizeof(uint64_t)) return;
    reads_.insert(sqe->user_data);
    if (cap_read_sqe > 0 && sqe->len > cap_read_sqe) sqe->len = cap_read_sqe;
  }
  bool on_cqe(io_uring_cqe* cqe) override {
    if (reads_.erase(cqe->user_data) == 0) return true;
    if (cap_read_cqe > 0 && cqe->res > static_cast<int32_t>(cap_read_cqe)) {
      cqe->res = static_cast<int32_t>(cap_read_cqe);
      ++cqe_reads_cut;
    }
    return true;
  }

 private:
  std::unordered_set<uint64_t> reads_;
};

struct Pipe {
  OwnedFd r, w;
  static Pipe make() {
    int p[2];
    POLLUX_CHECK(::pipe2(p, O_CLOEXEC) == 0, "pipe2");
    return Pipe{OwnedFd(p[0]), OwnedFd(p[1])};
  }
};

std::vector<char> pattern(size_t n, int seed) {
  std::vector<char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>('A' + (i * 13 + seed) % 26);
  return v;
}

Runtime make_runtime(FaultySyscalls& sys, unsigned sq = 8, unsigned cq = 64) {
  IoUringOptions o;
  o.sq_entries = sq;
  o.cq_entries = cq;
  o.syscalls = &sys;
  absl::StatusOr<Runtime> rt =
      Runtime::Builder().current_thread().enable_all().backend(BackendKind::kIoUring).io_uring_options(o).build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

// Reads exactly `n` bytes (short reads are retried). At most 1,000 reads.
Task<std::vector<char>> read_exact(int fd, size_t n, int* short_reads) {
  std::vector<char> out;
  for (int i = 0; i < 1000 && out.size() < n; ++i) {
    const size_t want = n - out.size();
    IoResult r = co_await reactor::read(fd, std::vector<char>(want));
    if (!r.n.ok() || *r.n == 0) break;
    EXPECT_EQ(r.buf.size(), want) << "the whole buffer comes back";
    if (*r.n < want) ++*short_reads;
    out.insert(out.end(), r.buf.begin(), r.buf.begin() + *r.n);
  }
  co_return out;
}

Task<bool> round_trip(int r, int w, int seed, int* short_reads) {
  std::vector<char> data = pattern(100, seed);
  IoResult wr = co_await reactor::write(w, data);
  if (!wr.n.ok() || *wr.n != data.size()) co_return false;
  std::vector<char> got = co_await read_exact(r, data.size(), short_reads);
  co_return got == data;
}

struct WorkloadResult {
  int nops_ok = 0;
  int round_trips_ok = 0;
  int dropped = 0;
  int short_reads = 0;
};
constexpr int kNops = 100;
constexpr int kRoundTrips = 8;

// 100 nop tasks (more than an 8-entry SQ holds in one tick), 8 pipe round
// trips, a read dropped after submission, and a 2 ms sleep.
Task<WorkloadResult> workload(std::vector<Pipe>* pipes, int idle_fd) {
  WorkloadResult res;
  std::vector<JoinHandle<absl::Status>> nops;
  for (int i = 0; i < kNops; ++i) nops.push_back(pollux::spawn(reactor::nop()));
  std::vector<JoinHandle<bool>> trips;
  for (int i = 0; i < kRoundTrips; ++i) {
    const int r = (*pipes)[i].r.get(), w = (*pipes)[i].w.get();
    trips.push_back(pollux::spawn(
        [r, w, i, sr = &res.short_reads]() -> Task<bool> { co_return co_await round_trip(r, w, i, sr); }));
  }
  auto lost = co_await select(reactor::read(idle_fd, std::vector<char>(8)), ready(1));
  if (lost.index == 1) ++res.dropped;
  co_await sleep(absl::Milliseconds(2));
  for (auto& h : nops) {
    JoinResult<absl::Status> r = co_await h;
    if (r.ok() && r.value().ok()) ++res.nops_ok;
  }
  for (auto& h : trips) {
    JoinResult<bool> r = co_await h;
    if (r.ok() && r.value()) ++res.round_trips_ok;
  }
  co_return res;
}

reactor::IoUringBackend& uring_of(Runtime& rt) {
  auto* b = dynamic_cast<reactor::IoUringBackend*>(rt.io_backend());
  POLLUX_CHECK(b != nullptr, "the runtime does not run on io_uring");
  return *b;
}

// Runs ticks until no op slot is live (at most 200 rounds).
size_t settle(Runtime& rt) {
  reactor::Backend* d = rt.io_backend();
  for (int i = 0; i < 200 && d->live_ops() != 0; ++i) {
    if (i % 2 == 0) {
      (void)rt.block_on(reactor::nop());
    } else {
      rt.block_on(sleep(absl::Milliseconds(1)));
    }
  }
  return d->live_ops();
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kRoundTrips; ++i) pipes_.push_back(Pipe::make());
    idle_ = Pipe::make();
  }
  // Runs the workload up to `runs` times, until every injected fault fired;
  // each run must fully succeed.
  void run_workload(Runtime& rt, FaultySyscalls& sys, int runs = 20) {
    for (int i = 0; i < runs; ++i) {
      WorkloadResult r = rt.block_on(workload(&pipes_, idle_.r.get()));
      EXPECT_EQ(r.nops_ok, kNops) << "run " << i;
      EXPECT_EQ(r.round_trips_ok, kRoundTrips) << "run " << i;
      EXPECT_EQ(r.dropped, 1) << "run " << i;
      total_short_reads_ += r.short_reads;
      if (sys.faults_left() == 0) break;
    }
    EXPECT_EQ(sys.faults_left(), 0) << "the workload did not reach every injected fault";
    EXPECT_EQ(settle(rt), 0u) << "an op slot leaked";
    // The runtime recovered: plain operations work.
    EXPECT_TRUE(rt.block_on(reactor::nop()).ok());
    WorkloadResult again = rt.block_on(workload(&pipes_, idle_.r.get()));
    EXPECT_EQ(again.nops_ok, kNops);
    EXPECT_EQ(again.round_trips_ok, kRoundTrips);
    EXPECT_EQ(settle(rt), 0u);
    EXPECT_EQ(uring_of(rt).uring_stats().stale_cqes, 0u);
  }

  std::vector<Pipe> pipes_;
  Pipe idle_;  // never written: reads on it only end by cancellation
  int total_short_reads_ = 0;
  Watchdog dog_{std::chrono::seconds(60), "fault injection test"};
};

// ---- Refused submits ----

enum class Where { kSubmit, kGetEvents, kWait, kAll };

class SubmitFaults : public FaultTest,
                     public ::testing::WithParamInterface<std::tuple<Where, int>> {};

TEST_P(SubmitFaults, EveryOpCompletesOnceAndTheRuntimeRecovers) {
  constexpr int kN = 10;
  const auto [where, err] = GetParam();
  FaultySyscalls sys;
  sys.submit_errno = err;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());  // ring enabled; faults start now
  if (where == Where::kSubmit || where == Where::kAll) sys.fail_submit = kN;
  if (where == Where::kGetEvents || where == Where::kAll) sys.fail_get_events = kN;
  if (where == Where::kWait || where == Where::kAll) sys.fail_wait = kN;
  const int real_before = sys.submit_real + sys.get_events_real + sys.wait_real;

  run_workload(rt, sys);

  EXPECT_GT(sys.submit_real + sys.get_events_real + sys.wait_real, real_before)
      << "the real call was made after the faults";
  // Every refused kernel entry is counted.
  uint64_t counted = 0;
  if (where == Where::kSubmit || where == Where::kAll) counted += kN;
  if (where == Where::kGetEvents || where == Where::kAll) counted += kN;
  if (where == Where::kWait || where == Where::kAll) counted += kN;
  EXPECT_GE(rt.io_backend()->stats().enter_errors, counted);
  EXPECT_TRUE(rt.io_backend()->status().ok()) << "transient errors never end the backend";
}

std::string submit_fault_name(const ::testing::TestParamInfo<std::tuple<Where, int>>& i) {
  static const char* const kWhere[] = {"Submit", "GetEvents", "Wait", "All"};
  const int e = std::get<1>(i.param);
  return std::string(kWhere[static_cast<int>(std::get<0>(i.param))]) +
         (e == EAGAIN ? "Eagain" : "Ebusy");
}

INSTANTIATE_TEST_SUITE_P(
    Errnos, SubmitFaults,
    ::testing::Combine(::testing::Values(Where::kSubmit, Where::kGetEvents, Where::kWait, Where::kAll),
                       ::testing::Values(EAGAIN, EBUSY)),
    submit_fault_name);

// ---- Errors that are not transient ----

// ENOMEM (or anything but EINTR, EAGAIN, EBUSY, ETIME) twice in a row is
// survived: the next entry succeeds and everything completes. From each of
// the three kernel entries.
class NonTransientFaults : public FaultTest, public ::testing::WithParamInterface<Where> {};

TEST_P(NonTransientFaults, TwoEnomemsInARowAreSurvived) {
  FaultySyscalls sys;
  sys.submit_errno = ENOMEM;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());
  const uint64_t errors_before = rt.io_backend()->stats().enter_errors;
  switch (GetParam()) {
    case Where::kSubmit: sys.fail_submit = 2; break;
    case Where::kGetEvents: sys.fail_get_events = 2; break;
    default: sys.fail_wait = 2; break;
  }
  run_workload(rt, sys);
  EXPECT_EQ(rt.io_backend()->stats().enter_errors - errors_before, 2u);
  EXPECT_TRUE(rt.io_backend()->status().ok());
}

std::string entry_name(const ::testing::TestParamInfo<Where>& i) {
  static const char* const kWhere[] = {"Submit", "GetEvents", "Wait"};
  return kWhere[static_cast<int>(i.param)];
}

INSTANTIATE_TEST_SUITE_P(Entries, NonTransientFaults,
                         ::testing::Values(Where::kSubmit, Where::kGetEvents, Where::kWait),
                         entry_name);

// A kernel entry that fails every time (seen with io_uring_enter refused
// after setup) ends the run with that error after three tries instead of
// spinning at 100% CPU: try_block_on returns it, naming the call and errno.
TEST_F(FaultTest, AKernelEntryThatAlwaysFailsEndsTheRunWithItsError) {
  FaultySyscalls sys;
  sys.submit_errno = EPERM;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());
  sys.fail_submit = sys.fail_get_events = sys.fail_wait = 1'000'000;
  const int calls_before = sys.submit_calls + sys.get_events_calls + sys.wait_calls;
  absl::StatusOr<reactor::IoResult> r =
      rt.try_block_on(reactor::read(idle_.r.get(), std::vector<char>(8)));
  ASSERT_FALSE(r.ok()) << "the run should have ended";
  EXPECT_EQ(errno_of(r.status()), EPERM) << r.status();
  EXPECT_NE(r.status().message().find("3 times in a row"), absl::string_view::npos) << r.status();
  const int calls = sys.submit_calls + sys.get_events_calls + sys.wait_calls - calls_before;
  EXPECT_LE(calls, 5) << "kept entering a kernel that refuses";
  EXPECT_FALSE(rt.io_backend()->status().ok());
  // A later run that needs the kernel ends with the same status at once.
  absl::Status again = rt.try_block_on(reactor::nop());
  EXPECT_EQ(errno_of(again), EPERM) << again;
}

// ---- A full SQ ----

TEST_F(FaultTest, GetSqeNullForTheFirstCallsIsRetried) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  (void)rt.block_on(reactor::nop());
  sys.null_sqes = 50;
  run_workload(rt, sys);
  EXPECT_GE(uring_of(rt).uring_stats().sq_full_flushes, 1u);
}

// A future dropped while no SQE can be had: its ASYNC_CANCEL must still reach
// the kernel later, or the read would wait forever (a slot leak, and a
// buffer the kernel could write into at any time).
TEST_F(FaultTest, CancelThatFindsNoSqeIsSentLater) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  const int fd = idle_.r.get();
  rt.block_on([&]() -> Task<void> {
    auto op = reactor::read(fd, std::vector<char>(64));
    co_await poll_fn([&](Context& cx) -> Poll<Unit> {
      EXPECT_TRUE(op.poll(cx).is_pending());
      return Ready(Unit{});
    });
    EXPECT_TRUE((co_await reactor::nop()).ok());  // the read is in the kernel
    EXPECT_EQ(rt.io_backend()->live_ops(), 1u);
    // The drop's cancel_op gets no SQE (and neither does its flush retry).
    sys.null_sqes = 2;
  }());
  EXPECT_EQ(sys.null_sqes, 0) << "the drop asked for an SQE twice";
  EXPECT_EQ(settle(rt), 0u) << "the cancel was never sent: the read is still in the kernel";
  ASSERT_EQ(::write(idle_.w.get(), "data", 4), 4);
  int avail = 0;
  ASSERT_EQ(::ioctl(idle_.r.get(), FIONREAD, &avail), 0);
  EXPECT_EQ(avail, 4) << "the dropped read consumed data";
}

// Same, but the runtime is destroyed at once: shutdown must send the cancel
// itself instead of waiting for a completion that never comes.
TEST_F(FaultTest, ShutdownCancelsADroppedOpWhoseCancelFoundNoSqe) {
  FaultySyscalls sys;
  int waits_at_shutdown = 0;
  {
    Runtime rt = make_runtime(sys);
    const int fd = idle_.r.get();
    rt.block_on([&]() -> Task<void> {
      auto op = reactor::read(fd, std::vector<char>(64));
      co_await poll_fn([&](Context& cx) -> Poll<Unit> {
        EXPECT_TRUE(op.poll(cx).is_pending());
        return Ready(Unit{});
      });
      EXPECT_TRUE((co_await reactor::nop()).ok());
      sys.null_sqes = 2;
    }());
    waits_at_shutdown = sys.wait_calls;
  }
  const int drain_waits = sys.wait_calls - waits_at_shutdown;
  EXPECT_LT(drain_waits, 20) << "shutdown waited round after round for a read nobody cancelled";
  ASSERT_EQ(::write(idle_.w.get(), "data", 4), 4);
  int avail = 0;
  ASSERT_EQ(::ioctl(idle_.r.get(), FIONREAD, &avail), 0);
  EXPECT_EQ(avail, 4) << "a read outlived its runtime";
}

// ---- Short reads ----

TEST_F(FaultTest, ShortReadFromTheCqeIsReportedAsNBytes) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  std::vector<char> data = pattern(64, 3);
  ASSERT_EQ(::write(pipes_[0].w.get(), data.data(), data.size()), 64);
  sys.cap_read_cqe = 10;
  IoResult r = rt.block_on(reactor::read(pipes_[0].r.get(), std::vector<char>(64)));
  ASSERT_TRUE(r.n.ok()) << r.n.status();
  EXPECT_EQ(*r.n, 10u);
  EXPECT_EQ(sys.cqe_reads_cut, 1);
  ASSERT_EQ(r.buf.size(), 64u) << "the whole buffer comes back; only n bytes count";
  EXPECT_EQ(std::vector<char>(r.buf.begin(), r.buf.begin() + 10),
            std::vector<char>(data.begin(), data.begin() + 10));
  sys.cap_read_cqe = 0;
  // (The kernel did read all 64 bytes; the rest is lost to the simulation.)
  run_workload(rt, sys, 1);
}

TEST_F(FaultTest, ShortReadsFromCutSqesAreReassembled) {
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys);
  sys.cap_read_sqe = 7;  // the kernel reads at most 7 bytes per read
  run_workload(rt, sys, 1);
  EXPECT_GT(total_short_reads_, kRoundTrips) << "every 100-byte read came back short";
}

// ---- CQ overflow ----

// 2,000 nops started in one poll of one future: the SQ (64) is flushed about
// 31 times within the poll, so about 2,000 CQEs arrive before the first
// reap, far more than the 128-entry CQ. IORING_FEAT_NODROP keeps them in the
// kernel's overflow list; the driver must still deliver each exactly once.
class ManyNops {
 public:
  using Output = int;
  explicit ManyNops(int n) : done_(n, false) {
    for (int i = 0; i < n; ++i) {
      ops_.push_back(std::make_unique<reactor::NopOp>(reactor::nop()));
    }
  }
  Poll<int> poll(Context& cx) {
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (done_[i]) continue;
      Poll<absl::Status> p = ops_[i]->poll(cx);
      if (p.is_pending()) continue;
      done_[i] = true;
      ++completed_;
      if (p.value().ok()) ++ok_;
      ops_[i].reset();
    }
    if (completed_ == ops_.size()) return Ready(ok_);
    return Pending{};
  }

 private:
  std::vector<std::unique_ptr<reactor::NopOp>> ops_;
  std::vector<bool> done_;
  size_t completed_ = 0;
  int ok_ = 0;
};

TEST(CqOverflow, TwoThousandNopsInOnePollAllCompleteExactlyOnce) {
  constexpr int kN = 2000;
  FaultySyscalls sys;  // no faults: only the small ring
  Runtime rt = make_runtime(sys, 64, 128);
  Watchdog dog(std::chrono::seconds(60), "CQ overflow");
  (void)rt.block_on(reactor::nop());
  const reactor::UringStats before = uring_of(rt).uring_stats();
  const int ok = rt.block_on(ManyNops(kN));
  const reactor::UringStats after = uring_of(rt).uring_stats();
  EXPECT_EQ(ok, kN);
  EXPECT_EQ(after.completions - before.completions, static_cast<uint64_t>(kN))
      << "a CQE lost or delivered twice";
  EXPECT_EQ(after.stale_cqes, before.stale_cqes);
  EXPECT_EQ(rt.io_backend()->live_ops(), 0u);
  std::fprintf(stderr, "CQ overflow (one poll): cq_overflows seen %llu, sq_full_flushes %llu\n",
               static_cast<unsigned long long>(after.cq_overflows - before.cq_overflows),
               static_cast<unsigned long long>(after.sq_full_flushes - before.sq_full_flushes));
  EXPECT_GT(after.cq_overflows, before.cq_overflows)
      << "2,000 CQEs into a 128-entry CQ without a reap must overflow";
  EXPECT_TRUE(rt.block_on(reactor::nop()).ok()) << "the runtime recovered";
}

TEST(CqOverflow, TwoThousandSpawnedNopTasksAllCompleteExactlyOnce) {
  constexpr int kN = 2000;
  FaultySyscalls sys;
  Runtime rt = make_runtime(sys, 64, 128);
  Watchdog dog(std::chrono::seconds(60), "CQ overflow, spawned");
  (void)rt.block_on(reactor::nop());
  const reactor::UringStats before = uring_of(rt).uring_stats();
  const int ok = rt.block_on([]() -> Task<int> {
    std::vector<JoinHandle<absl::Status>> hs;
    for (int i = 0; i < kN; ++i) hs.push_back(pollux::spawn(reactor::nop()));
    int n = 0;
    for (auto& h : hs) {
      JoinResult<absl::Status> r = co_await h;
      if (r.ok() && r.value().ok()) ++n;
    }
    co_return n;
  }());
  const reactor::UringStats after = uring_of(rt).uring_stats();
  EXPECT_EQ(ok, kN);
  EXPECT_EQ(after.completions - before.completions, static_cast<uint64_t>(kN));
  EXPECT_EQ(rt.io_backend()->live_ops(), 0u);
  std::fprintf(stderr, "CQ overflow (2,000 tasks): cq_overflows seen %llu\n",
               static_cast<unsigned long long>(after.cq_overflows - before.cq_overflows));
}

}  // namespace
}  // namespace pollux
