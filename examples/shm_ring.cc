// shm_ring: a foreign producer feeding a task through a single-producer
// single-consumer ring of fixed-size records (issue 14's seed scenario).
//
//   ./bazelw run //examples:shm_ring                     # both modes, 1,000,000 records each
//   ./bazelw run //examples:shm_ring -- --mode=thread --records=20000
//
// - process (--mode=process): the ring lives in an mmap(MAP_SHARED |
//   MAP_ANONYMOUS) region, the producer is a fork()ed child, and it signals
//   through an eventfd made before the fork. The consumer is a task on a
//   current-thread runtime that awaits the eventfd's readiness with the
//   reactor's poll operation (reactor::poll_add; AsyncFd does not exist yet).
// - thread (--mode=thread): the same ring, a producer thread, and
//   sync::UserEvent instead of the eventfd.
// Default: both, one after the other. The consumer checks every record (its
// sequence number and every word derived from it) in order, and prints
// records/s. Exit status 0 only if every record of every mode arrived, in
// order and intact; 1 otherwise (with the first bad record on stderr).
// --skip_record=K makes the producer leave out record K, for the test that
// shows the check catches a gap (examples/shm_ring_test.sh).
//
// The ring: `head` counts records published (written only by the producer),
// `tail` records consumed (only by the consumer); each side reads the
// other's with acquire and publishes its own with release. std::atomic in
// the shared region is fine: the 64-bit atomics are lock-free, hence
// address-free, so two processes mapping the page at different addresses
// still synchronise through them (static_assert below).
//
// Why no wake-up is lost (either signal: the eventfd or the UserEvent):
// - The producer publishes a batch (head.store, release) and then signals.
// - The signal is a pending state that coalesces: the eventfd's counter is
//   nonzero from the write until the consumer's read(2) resets it; a
//   UserEvent set() stays pending until a wait() completes on it.
// - The consumer, after each wake, first consumes the pending state (reads
//   the counter / the completed wait consumed the event), then drains the
//   ring up to the head it loads (acquire) and re-checks before waiting
//   again (its drain loop ends only when head == tail).
// So take any batch: its signal comes after its publish. If the signal
// lands before the consumer's reset, the drain that follows the reset comes
// after the publish too (the signal's syscall or lock orders them) and sees
// the batch. If it lands after the reset, the signal is still pending when
// the consumer next waits, so that wait returns at once and the drain after
// it sees the batch. Resetting *after* the drain instead would lose a batch
// signalled between the drain's last load and the reset. At worst a signal
// finds its batch already drained: one spurious wake, an empty drain.
//
// The eventfd is EFD_NONBLOCK. Either way would work: pollux never changes
// O_NONBLOCK on an fd it did not create, and poll_add only waits for
// readiness, it reads nothing. Non-blocking makes the consumer's reset
// read(2) unable to stall the runtime thread even if it were ever issued
// without readiness (it then fails with EAGAIN, and there was nothing to
// reset); the producer's write(2) never blocks anyway (the counter cannot
// come near its 2^64-2 limit).
//
// When the ring is full the producer yields and retries (sched_yield): it
// is the side this example does not make asynchronous. A producer that dies
// early is noticed: after 5 s without a wake the consumer checks whether it
// is still there (waitpid WNOHANG / a flag the thread sets when it ends).
// And a lost wake-up would not hide behind that check: if records were
// published during such a 5 s wait, their signal was missed, and the
// consumer fails with "lost wake-up".
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <new>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "future/task.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "sync/user_event.h"
#include "timer/timeout.h"

ABSL_FLAG(std::string, mode, "both", "process, thread, or both (one after the other)");
ABSL_FLAG(uint64_t, records, 1'000'000, "records to push through the ring in each mode");
ABSL_FLAG(int64_t, skip_record, -1,
          "for tests: the producer leaves out this sequence number, so the consumer must "
          "report a gap and the program exit 1");

namespace {

using pollux::Task;

// One record: its sequence number and seven words derived from it, so a
// torn or stale slot is caught, not only a wrong sequence number.
struct Record {
  uint64_t seq;
  uint64_t words[7];
};
static_assert(sizeof(Record) == 64, "one record per cache line");

uint64_t word_of(uint64_t seq, int i) {
  return (seq + 1) * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(i + 1) << 56);
}

struct Ring {
  static constexpr uint64_t kSlots = 1024;  // a power of two
  static constexpr uint64_t kMask = kSlots - 1;
  // Records published: the producer's release store pairs with the
  // consumer's acquire load (the records before it are written).
  alignas(64) std::atomic<uint64_t> head{0};
  // Records consumed: the consumer's release store pairs with the
  // producer's acquire load (the slots before it are read, free to reuse).
  alignas(64) std::atomic<uint64_t> tail{0};
  alignas(64) Record slots[kSlots];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "the ring's indices must be lock-free (so address-free) to work across processes");

// The ring in a shared anonymous mapping (inherited by a fork()ed child).
Ring* map_ring() {
  void* p = ::mmap(nullptr, sizeof(Ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
                   0);
  if (p == MAP_FAILED) return nullptr;
  return new (p) Ring();
}
void unmap_ring(Ring* r) {
  r->~Ring();
  ::munmap(r, sizeof(Ring));
}

// The producer: `n` records in order (leaving out `skip`, if >= 0), in
// batches of what fits, each batch published and then signalled. Gives up
// early when `stop()` says so (the consumer gave up: the ring may stay full).
template <class Signal, class Stop>
void produce(Ring* r, uint64_t n, int64_t skip, Signal signal, Stop stop) {
  constexpr uint64_t kBatch = 64;
  uint64_t head = 0;  // ours: only we write r->head
  uint64_t seq = 0;
  uint64_t written = 0;
  while (written < n) {
    // acquire: pairs with the consumer's release of tail.
    const uint64_t tail = r->tail.load(std::memory_order_acquire);
    const uint64_t room = Ring::kSlots - (head - tail);
    if (room == 0) {
      if (stop()) return;
      sched_yield();  // full: let the consumer run
      continue;
    }
    const uint64_t batch = std::min({room, kBatch, n - written});
    for (uint64_t i = 0; i < batch; ++i) {
      if (static_cast<int64_t>(seq) == skip) ++seq;  // the planted gap
      Record& rec = r->slots[(head + i) & Ring::kMask];
      rec.seq = seq;
      for (int w = 0; w < 7; ++w) rec.words[w] = word_of(seq, w);
      ++seq;
    }
    head += batch;
    written += batch;
    // release: pairs with the consumer's acquire load of head.
    r->head.store(head, std::memory_order_release);
    signal();  // after publishing (see the header)
  }
}

// The consumer's side of the ring and its checks.
class Consumer {
 public:
  Consumer(Ring* r, uint64_t n) : r_(r), n_(n) {}

  bool done() const { return expected_ == n_; }
  uint64_t received() const { return expected_; }
  // Records published but not read yet. After a long wait that no signal
  // ended, any is a lost wake-up: their signal came and was missed.
  uint64_t unread() const {
    // acquire: as in drain().
    return r_->head.load(std::memory_order_acquire) - tail_;
  }
  // Reads every published record, checking each. Ends when it has caught up
  // with the head it loaded (the re-check before waiting), at n records, or
  // at the first bad one (then the error is the status).
  absl::Status drain() {
    // acquire: pairs with the producer's release of head.
    const uint64_t head = r_->head.load(std::memory_order_acquire);
    while (tail_ < head && !done()) {
      const Record& rec = r_->slots[tail_ & Ring::kMask];
      if (rec.seq != expected_) {
        return absl::DataLossError(absl::StrCat("record ", tail_, " has sequence number ", rec.seq,
                                                ", expected ", expected_));
      }
      for (int w = 0; w < 7; ++w) {
        if (rec.words[w] != word_of(rec.seq, w)) {
          return absl::DataLossError(
              absl::StrCat("record ", rec.seq, ": word ", w, " is corrupt"));
        }
      }
      ++tail_;
      ++expected_;
      // Hand the room back every quarter ring, not once per record (each
      // store bounces the cache line to the producer).
      // release: pairs with the producer's acquire load of tail.
      if ((tail_ & (Ring::kSlots / 4 - 1)) == 0) r_->tail.store(tail_, std::memory_order_release);
    }
    r_->tail.store(tail_, std::memory_order_release);  // as above
    return absl::OkStatus();
  }

 private:
  Ring* r_;
  uint64_t n_;
  uint64_t tail_ = 0;
  uint64_t expected_ = 0;
};

constexpr absl::Duration kStallCheck = absl::Seconds(5);

absl::Status lost_wake_up(uint64_t unread) {
  return absl::InternalError(absl::StrCat("lost wake-up: ", unread,
                                          " records were published during a ",
                                          absl::FormatDuration(kStallCheck),
                                          " wait that no signal ended"));
}

struct Outcome {
  absl::Status status;
  uint64_t received = 0;
  uint64_t wakes = 0;
};

// Process mode's consumer task: waits for the eventfd's readiness.
Task<Outcome> consume_eventfd(Ring* r, int efd, uint64_t n, pid_t producer) {
  Consumer c(r, n);
  Outcome out;
  for (;;) {
    out.status = c.drain();
    out.received = c.received();
    if (!out.status.ok() || c.done()) co_return out;
    absl::StatusOr<uint32_t> ready =
        co_await pollux::timeout(pollux::reactor::poll_add(efd, POLLIN), kStallCheck);
    if (absl::IsDeadlineExceeded(ready.status())) {
      if (const uint64_t unread = c.unread(); unread > 0) {
        // Unless the signal is there after all (it raced the deadline).
        pollfd pfd{efd, POLLIN, 0};
        if (::poll(&pfd, 1, 0) == 1) continue;
        out.status = lost_wake_up(unread);
        co_return out;
      }
      int wstatus = 0;
      if (::waitpid(producer, &wstatus, WNOHANG) == producer) {
        out.status = c.drain();  // what it published before it went
        out.received = c.received();
        if (out.status.ok() && !c.done()) {
          out.status = absl::DataLossError(absl::StrCat(
              "the producer exited (wait status ", wstatus, ") after ", c.received(), " records"));
        }
        co_return out;
      }
      continue;  // still producing, only slowly: keep waiting
    }
    if (!ready.ok()) {
      out.status = ready.status();
      co_return out;
    }
    ++out.wakes;
    // Reset the counter before draining (see the header).
    uint64_t count;
    if (::read(efd, &count, sizeof count) < 0 && errno != EAGAIN) {
      out.status = absl::ErrnoToStatus(errno, "read(eventfd)");
      co_return out;
    }
  }
}

// Thread mode's consumer task: waits on the UserEvent.
Task<Outcome> consume_user_event(Ring* r, pollux::sync::UserEvent* ev, uint64_t n,
                                 const std::atomic<bool>* producer_finished) {
  Consumer c(r, n);
  Outcome out;
  for (;;) {
    out.status = c.drain();
    out.received = c.received();
    if (!out.status.ok() || c.done()) co_return out;
    // The completed wait consumes the event (see the header).
    absl::Status woke = co_await pollux::timeout(ev->wait(), kStallCheck);
    if (absl::IsDeadlineExceeded(woke)) {
      if (const uint64_t unread = c.unread(); unread > 0) {
        // Unless the event is pending after all (it raced the deadline): a
        // wait with no time left still completes on a pending event.
        if ((co_await pollux::timeout(ev->wait(), absl::ZeroDuration())).ok()) continue;
        out.status = lost_wake_up(unread);
        co_return out;
      }
      // acquire: pairs with the producer thread's release when it ends.
      if (producer_finished->load(std::memory_order_acquire)) {
        out.status = c.drain();
        out.received = c.received();
        if (out.status.ok() && !c.done()) {
          out.status = absl::DataLossError(
              absl::StrCat("the producer ended after ", c.received(), " records"));
        }
        co_return out;
      }
      continue;
    }
    ++out.wakes;
  }
}

absl::StatusOr<pollux::Runtime> make_runtime() {
  return pollux::Runtime::Builder().current_thread().enable_all().build();
}

void report(const char* mode, const Outcome& o, uint64_t n, double seconds) {
  if (!o.status.ok()) {
    std::fprintf(stderr, "shm_ring %s: FAILED after %llu of %llu records: %s\n", mode,
                 static_cast<unsigned long long>(o.received), static_cast<unsigned long long>(n),
                 o.status.ToString().c_str());
    return;
  }
  std::printf("shm_ring %s: %llu records of %zu bytes in order in %.3f s: %.2f M records/s "
              "(%llu wake-ups)\n",
              mode, static_cast<unsigned long long>(n), sizeof(Record), seconds,
              static_cast<double>(n) / seconds / 1e6,
              static_cast<unsigned long long>(o.wakes));
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Fork first, build the runtime after: the child is a plain loop, and no
// runtime (ring, threads) is ever forked.
bool run_process_mode(uint64_t n, int64_t skip) {
  Ring* ring = map_ring();
  if (ring == nullptr) {
    std::perror("shm_ring process: mmap");
    return false;
  }
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    std::perror("shm_ring process: eventfd");
    unmap_ring(ring);
    return false;
  }
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("shm_ring process: fork");
    ::close(efd);
    unmap_ring(ring);
    return false;
  }
  if (pid == 0) {
    produce(
        ring, n, skip,
        [efd] {
          const uint64_t one = 1;
          // Cannot block or fail short of a closed fd: the counter never nears its limit.
          if (::write(efd, &one, sizeof one) != sizeof one) _exit(2);
        },
        [] { return false; });  // a consumer that gives up kills us instead
    _exit(0);  // no atexit handlers, no destructors of the parent's objects
  }
  Outcome out;
  {
    absl::StatusOr<pollux::Runtime> rt = make_runtime();
    if (!rt.ok()) {
      out.status = rt.status();
    } else {
      out = rt->block_on(consume_eventfd(ring, efd, n, pid));
    }
  }
  const double secs = seconds_since(start);
  if (!out.status.ok()) ::kill(pid, SIGKILL);  // it may be stuck on a full ring
  int wstatus = 0;
  if (::waitpid(pid, &wstatus, 0) == pid && out.status.ok() &&
      !(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) {
    out.status = absl::InternalError(absl::StrCat("the producer ended with wait status ", wstatus));
  }
  report("process", out, n, secs);
  ::close(efd);
  unmap_ring(ring);
  return out.status.ok();
}

bool run_thread_mode(uint64_t n, int64_t skip) {
  Ring* ring = map_ring();  // the same ring; private to the process this time
  if (ring == nullptr) {
    std::perror("shm_ring thread: mmap");
    return false;
  }
  pollux::sync::UserEvent ev;
  std::atomic<bool> finished{false};
  std::atomic<bool> stop{false};  // the consumer gave up: let a producer on a full ring go
  Outcome out;
  const auto start = std::chrono::steady_clock::now();
  {
    absl::StatusOr<pollux::Runtime> rt = make_runtime();
    if (!rt.ok()) {
      out.status = rt.status();
    } else {
      std::thread producer([&] {
        produce(
            ring, n, skip, [&] { ev.set(); },
            // relaxed: only a hint to give up; nothing is read after it.
            [&] { return stop.load(std::memory_order_relaxed); });
        // release: pairs with the consumer's acquire (what was published is visible).
        finished.store(true, std::memory_order_release);
      });
      out = rt->block_on(consume_user_event(ring, &ev, n, &finished));
      // relaxed: as above.
      stop.store(true, std::memory_order_relaxed);
      producer.join();
    }
  }
  report("thread", out, n, seconds_since(start));
  unmap_ring(ring);
  return out.status.ok();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "shm_ring [--mode=process|thread|both] [--records=N]: a producer process or thread "
      "feeding a task through a shared-memory ring; exits 0 only if every record arrived in "
      "order");
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const uint64_t n = absl::GetFlag(FLAGS_records);
  const int64_t skip = absl::GetFlag(FLAGS_skip_record);
  if (mode != "process" && mode != "thread" && mode != "both") {
    std::fprintf(stderr, "shm_ring: --mode must be process, thread or both, not '%s'\n",
                 mode.c_str());
    return 2;
  }
  if (n == 0) {
    std::fprintf(stderr, "shm_ring: --records must be at least 1\n");
    return 2;
  }
  bool ok = true;
  if (mode != "thread") ok = run_process_mode(n, skip) && ok;
  if (mode != "process") ok = run_thread_mode(n, skip) && ok;
  return ok ? 0 : 1;
}
