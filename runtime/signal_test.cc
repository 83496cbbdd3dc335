// Tests for runtime/signal.h, on every flavour and both backends (BUILD's
// cc_test_every_flavour): a SIGTERM wakes every awaiting task; two
// runtimes both get one; a signal raised between subscribe and recv is
// kept; deliveries coalesce; with no subscriber left the previous
// disposition runs (a counting handler; SIG_DFL kills a child); ctrl_c;
// SignalEvent set from a real handler; the pipe's fds go with the runtime;
// subscribe's refusals.
//
// Each test uses its own signal where the process-wide state would carry
// over (the first subscribe remembers the disposition of that moment):
// SIGTERM (waking, two runtimes, the death test), SIGUSR1 (kept, coalesced),
// SIGUSR2 (the counting previous handler), SIGINT (ctrl_c), SIGHUP (fds),
// SIGRTMIN+2 (SignalEvent, under a handler of the test's own), SIGRTMIN+3
// (the stress test, over a counting handler).
#include "runtime/signal.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/task.h"
#include "gtest/gtest.h"
#include "runtime/internal/signal_registry.h"
#include "runtime/runtime.h"
#include "tests/fd_count.h"
#include "tests/sanitizers.h"
#include "tests/flavour.h"
#include "tests/watchdog.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace pollux {
namespace {

using testing::open_fd_count;
using testing::Watchdog;

Runtime make_runtime() {
  absl::StatusOr<Runtime> rt = pollux::testing::runtime_builder().enable_all().build();
  POLLUX_CHECK(rt.ok(), "building the runtime");
  return std::move(*rt);
}

// Sleeps in the task until `pred()` holds (or about 10 s pass: the caller's
// assertion then fails).
template <class Pred>
Task<void> until(Pred pred) {
  for (int i = 0; i < 10000 && !pred(); ++i) co_await sleep(absl::Milliseconds(1));
}

class SignalTest : public ::testing::Test {
 protected:
  Watchdog dog_{std::chrono::seconds(60), "signal test"};
};

TEST_F(SignalTest, SigtermWakesEveryAwaitingTask) {
  Runtime rt = make_runtime();
  constexpr int kTasks = 4;
  std::atomic<int> subscribed{0};
  std::vector<absl::Status> got = rt.block_on([&]() -> Task<std::vector<absl::Status>> {
    std::vector<JoinHandle<absl::Status>> hs;
    for (int i = 0; i < kTasks; ++i) {
      hs.push_back(pollux::spawn([&subscribed]() -> Task<absl::Status> {
        absl::StatusOr<signal::Signal> s = signal::subscribe(SIGTERM);
        if (!s.ok()) co_return s.status();
        subscribed.fetch_add(1);
        co_return co_await s->recv();
      }));
    }
    co_await until([&] { return subscribed.load() == kTasks; });
    ::kill(::getpid(), SIGTERM);  // process-directed: any thread may run the handler
    std::vector<absl::Status> out;
    for (JoinHandle<absl::Status>& h : hs) {
      JoinResult<absl::Status> r = co_await h;
      out.push_back(r.ok() ? std::move(r).value() : r.status());
    }
    co_return out;
  }());
  ASSERT_EQ(got.size(), static_cast<size_t>(kTasks));
  for (const absl::Status& s : got) EXPECT_TRUE(s.ok()) << s;
}

TEST_F(SignalTest, TwoRuntimesInOneProcessBothGetIt) {
  std::atomic<int> subscribed{0};
  absl::Status got[2];
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      Runtime rt = make_runtime();
      got[i] = rt.block_on([&]() -> Task<absl::Status> {
        absl::StatusOr<signal::Signal> s = signal::subscribe(SIGTERM);
        if (!s.ok()) co_return s.status();
        subscribed.fetch_add(1);
        co_return co_await s->recv();
      }());
    });
  }
  for (int i = 0; i < 10000 && subscribed.load() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(subscribed.load(), 2);
  ::kill(::getpid(), SIGTERM);
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(got[0].ok()) << got[0];
  EXPECT_TRUE(got[1].ok()) << got[1];
}

TEST_F(SignalTest, RaisedBeforeRecvIsKeptAndDeliveriesCoalesce) {
  Runtime rt = make_runtime();
  struct Out {
    absl::Status first, second, after_coalesced, third;
  };
  Out out = rt.block_on([]() -> Task<Out> {
    Out o;
    absl::StatusOr<signal::Signal> s = signal::subscribe(SIGUSR1);
    if (!s.ok()) {
      o.first = s.status();
      co_return o;
    }
    // Raised on this thread before any recv, before the reader task even ran.
    ::raise(SIGUSR1);
    o.first = co_await s->recv();
    // Three more, all dispatched (the sleep) before the next recv: one OK...
    ::raise(SIGUSR1);
    ::raise(SIGUSR1);
    ::raise(SIGUSR1);
    co_await sleep(absl::Milliseconds(50));
    o.second = co_await s->recv();
    // ... and nothing after it.
    o.after_coalesced = co_await timeout(s->recv(), absl::Milliseconds(50));
    // A recv dropped by that timeout lost nothing: the next one works.
    ::raise(SIGUSR1);
    o.third = co_await timeout(s->recv(), absl::Seconds(10));
    co_return o;
  }());
  EXPECT_TRUE(out.first.ok()) << out.first;
  EXPECT_TRUE(out.second.ok()) << out.second;
  EXPECT_EQ(out.after_coalesced.code(), absl::StatusCode::kDeadlineExceeded) << out.after_coalesced;
  EXPECT_TRUE(out.third.ok()) << out.third;
}

std::atomic<int> g_usr2_calls{0};
void count_usr2(int) {
  // relaxed: a counter read after raise() returned on the same thread.
  g_usr2_calls.fetch_add(1, std::memory_order_relaxed);
}

TEST_F(SignalTest, WithNoSubscriberThePreviousHandlerRuns) {
  struct sigaction counting {};
  counting.sa_handler = count_usr2;
  sigemptyset(&counting.sa_mask);
  ASSERT_EQ(::sigaction(SIGUSR2, &counting, nullptr), 0);
  const unsigned long chained_before = detail::signal_registry::chained_count(SIGUSR2);

  std::optional<signal::Signal> outliving;
  {
    Runtime rt = make_runtime();
    // Subscribed: the runtime gets it, the old handler does not.
    absl::Status s1 = rt.block_on([]() -> Task<absl::Status> {
      absl::StatusOr<signal::Signal> s = signal::subscribe(SIGUSR2);
      if (!s.ok()) co_return s.status();
      ::raise(SIGUSR2);
      co_return co_await s->recv();
    }());
    EXPECT_TRUE(s1.ok()) << s1;
    EXPECT_EQ(g_usr2_calls.load(), 0);
    // Its Signal dropped, the runtime still alive: the old handler again.
    ::raise(SIGUSR2);
    EXPECT_EQ(g_usr2_calls.load(), 1);
    // Subscribed again; the Signal leaves the runtime, which then goes.
    outliving = rt.block_on([]() -> Task<std::optional<signal::Signal>> {
      absl::StatusOr<signal::Signal> s = signal::subscribe(SIGUSR2);
      EXPECT_TRUE(s.ok()) << s.status();
      if (!s.ok()) co_return std::nullopt;
      co_return std::move(*s);
    }());
    ASSERT_TRUE(outliving.has_value());
    ::raise(SIGUSR2);  // subscribed: not the old handler's
    EXPECT_EQ(g_usr2_calls.load(), 1);
  }
  // The runtime went away: unsubscribed although its Signal lives.
  ::raise(SIGUSR2);
  EXPECT_EQ(g_usr2_calls.load(), 2);
  EXPECT_EQ(detail::signal_registry::chained_count(SIGUSR2) - chained_before, 2u);
  // The outliving Signal says so.
  LocalExecutor ex;
  absl::Status late = ex.block_on(outliving->recv());
  EXPECT_EQ(late.code(), absl::StatusCode::kCancelled) << late;
}

std::atomic<int> g_siginfo_signo{0};
void record_siginfo(int, siginfo_t* info, void*) {
  // relaxed: read after raise() returned on the same thread.
  g_siginfo_signo.store(info->si_signo, std::memory_order_relaxed);
}

// The other two previous dispositions: an SA_SIGINFO handler gets its
// siginfo; SIG_IGN (for signals whose default would kill) ignores.
TEST_F(SignalTest, WithNoSubscriberSiginfoHandlersAndSigIgnApply) {
  const int info_sig = SIGRTMIN + 4;
  const int ignored_sig = SIGRTMIN + 5;  // default: terminate
  struct sigaction sa {};
  sa.sa_sigaction = record_siginfo;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(::sigaction(info_sig, &sa, nullptr), 0);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ASSERT_EQ(::sigaction(ignored_sig, &ign, nullptr), 0);
  {
    Runtime rt = make_runtime();
    absl::Status s = rt.block_on([info_sig, ignored_sig]() -> Task<absl::Status> {
      absl::StatusOr<signal::Signal> a = signal::subscribe(info_sig);
      if (!a.ok()) co_return a.status();
      absl::StatusOr<signal::Signal> b = signal::subscribe(ignored_sig);
      if (!b.ok()) co_return b.status();
      ::raise(info_sig);
      ::raise(ignored_sig);
      if (absl::Status r = co_await a->recv(); !r.ok()) co_return r;
      co_return co_await b->recv();
    }());
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(g_siginfo_signo.load(), 0);  // the subscriber had it
  }
  ::raise(info_sig);
  EXPECT_EQ(g_siginfo_signo.load(), info_sig);
  ::raise(ignored_sig);  // ignored, as before pollux: we are still here
  SUCCEED();
}

TEST_F(SignalTest, SigtermWithDefaultDispositionKillsOnceUnsubscribed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // runtime and watchdog threads run
  EXPECT_EXIT(
      {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(SIGTERM, &dfl, nullptr);
        {
          Runtime rt = make_runtime();
          absl::Status s = rt.block_on([]() -> Task<absl::Status> {
            absl::StatusOr<signal::Signal> sig = signal::subscribe(SIGTERM);
            if (!sig.ok()) co_return sig.status();
            ::raise(SIGTERM);  // caught: the process lives on
            co_return co_await sig->recv();
          }());
          if (!s.ok()) ::_exit(2);
        }
        ::raise(SIGTERM);  // nobody subscribed: the default action
        ::_exit(3);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

// A child forked (no exec) while the parent subscribes does not inherit the
// subscription: its SIGTERM takes the default action.
TEST_F(SignalTest, AForkedChildIsNotSubscribed) {
  if (pollux::testing::kUnderTsan) {
    // Seen: under TSan the child (forked, no exec, from a threaded parent)
    // survives its raise(SIGTERM) even with sleeps before its _exit; TSan
    // defers signals and does not seem to deliver them in such a child.
    GTEST_SKIP() << "TSan does not deliver the child's signal (see the comment)";
  }
  Runtime rt = make_runtime();
  int status = -1;
  absl::Status got = rt.block_on([&status]() -> Task<absl::Status> {
    absl::StatusOr<signal::Signal> sig = signal::subscribe(SIGTERM);
    if (!sig.ok()) co_return sig.status();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::raise(SIGTERM);  // async-signal-safe calls only in the child
      ::_exit(3);
    }
    if (pid < 0) co_return absl::InternalError("fork failed");
    if (::waitpid(pid, &status, 0) != pid) co_return absl::InternalError("waitpid failed");
    // The parent is still subscribed.
    ::raise(SIGTERM);
    co_return co_await sig->recv();
  }());
  EXPECT_TRUE(got.ok()) << got;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "status " << status;
}

// Polls a CtrlC and notes that it was polled (so it has subscribed).
struct NotePolled {
  using Output = absl::Status;
  NotePolled(signal::CtrlC* c, std::atomic<bool>* p) : f(c), polled(p) {}
  signal::CtrlC* f;
  std::atomic<bool>* polled;
  Poll<absl::Status> poll(Context& cx) {
    Poll<absl::Status> p = f->poll(cx);
    polled->store(true);
    return p;
  }
};

TEST_F(SignalTest, CtrlCResolvesOnTheNextSigint) {
  Runtime rt = make_runtime();
  std::atomic<bool> polled{false};
  absl::Status got = rt.block_on([&]() -> Task<absl::Status> {
    JoinHandle<absl::Status> h = pollux::spawn([&polled]() -> Task<absl::Status> {
      signal::CtrlC c = signal::ctrl_c();
      co_return co_await NotePolled(&c, &polled);
    });
    co_await until([&] { return polled.load(); });
    if (!polled.load()) co_return absl::DeadlineExceededError("ctrl_c never polled");
    ::kill(::getpid(), SIGINT);
    JoinResult<absl::Status> r = co_await h;
    co_return r.ok() ? std::move(r).value() : r.status();
  }());
  EXPECT_TRUE(got.ok()) << got;
}

signal::SignalEvent* g_event = nullptr;
void set_event(int) { g_event->set(); }

TEST_F(SignalTest, SignalEventSetFromARealHandlerWakesATask) {
  static signal::SignalEvent event;
  g_event = &event;
  const int sig = SIGRTMIN + 2;
  struct sigaction sa {};
  sa.sa_handler = set_event;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(::sigaction(sig, &sa, nullptr), 0);

  Runtime rt = make_runtime();
  std::atomic<bool> waiting{false};
  struct Out {
    absl::Status before, woken, coalesced_extra;
  };
  Out out = rt.block_on([&]() -> Task<Out> {
    Out o;
    // Set before the wait: not lost.
    ::raise(sig);
    o.before = co_await event.wait();
    // A task waiting, woken by a handler on another thread.
    JoinHandle<absl::Status> h = pollux::spawn([&waiting]() -> Task<absl::Status> {
      waiting.store(true);
      co_return co_await event.wait();
    });
    co_await until([&] { return waiting.load(); });
    co_await sleep(absl::Milliseconds(20));  // let it park in the readiness wait
    std::thread([sig] { ::raise(sig); }).join();
    JoinResult<absl::Status> r = co_await h;
    o.woken = r.ok() ? std::move(r).value() : r.status();
    // Two sets while none waits coalesce into one.
    ::raise(sig);
    ::raise(sig);
    absl::Status one = co_await event.wait();
    if (!one.ok()) o.coalesced_extra = one;
    o.coalesced_extra = co_await timeout(event.wait(), absl::Milliseconds(50));
    co_return o;
  }());
  EXPECT_TRUE(out.before.ok()) << out.before;
  EXPECT_TRUE(out.woken.ok()) << out.woken;
  EXPECT_EQ(out.coalesced_extra.code(), absl::StatusCode::kDeadlineExceeded)
      << out.coalesced_extra;
}

TEST_F(SignalTest, FdsBackToBaselineAfterTheRuntimeGoes) {
  { Runtime warm = make_runtime(); }  // the backend probe, once per process
  const int before = open_fd_count();
  {
    Runtime rt = make_runtime();
    absl::Status s = rt.block_on([]() -> Task<absl::Status> {
      absl::StatusOr<signal::Signal> sig = signal::subscribe(SIGHUP);
      if (!sig.ok()) co_return sig.status();
      ::raise(SIGHUP);
      co_return co_await sig->recv();
    }());
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(open_fd_count() - before >= 2, true);  // the runtime's pipe, at least
  }
  EXPECT_EQ(open_fd_count(), before);
}

TEST_F(SignalTest, SubscribeRefusesWhatCannotBeAwaited) {
  // Outside a runtime.
  EXPECT_EQ(signal::subscribe(SIGTERM).status().code(), absl::StatusCode::kFailedPrecondition);
  Runtime rt = make_runtime();
  std::vector<absl::StatusCode> codes = rt.block_on([]() -> Task<std::vector<absl::StatusCode>> {
    std::vector<absl::StatusCode> c;
    std::vector<int> bad;
    bad.push_back(0);
    bad.push_back(-1);
    bad.push_back(NSIG);
    bad.push_back(SIGKILL);
    bad.push_back(SIGSTOP);
    bad.push_back(SIGSEGV);
    bad.push_back(SIGBUS);
    bad.push_back(SIGFPE);
    bad.push_back(SIGILL);
    bad.push_back(SIGABRT);
    bad.push_back(32);
    for (int signo : bad) c.push_back(signal::subscribe(signo).status().code());
    co_return c;
  }());
  for (absl::StatusCode c : codes) EXPECT_EQ(c, absl::StatusCode::kInvalidArgument);
  // A runtime without I/O cannot watch the pipe.
  absl::StatusOr<Runtime> no_io = pollux::testing::runtime_builder().enable_time().build();
  ASSERT_TRUE(no_io.ok());
  absl::StatusCode c = no_io->block_on([]() -> Task<absl::StatusCode> {
    co_return signal::subscribe(SIGTERM).status().code();
  }());
  EXPECT_EQ(c, absl::StatusCode::kFailedPrecondition);
}

std::atomic<int> g_stress_chained{0};
void count_stress(int) {
  // relaxed: a counter.
  g_stress_chained.fetch_add(1, std::memory_order_relaxed);
}

// Two threads raise a signal without pause while runtimes come and go and
// their tasks subscribe, wait a little and unsubscribe: every recv ends OK or
// by its timeout, a runtime going away never has a handler write into its
// closed pipe (ASan/TSan; the fd count), and the windows with no subscriber
// go to the counting handler, never to SIG_DFL.
TEST_F(SignalTest, StressRaisesWhileRuntimesSubscribeAndGo) {
  const int sig = SIGRTMIN + 3;
  struct sigaction counting {};
  counting.sa_handler = count_stress;
  sigemptyset(&counting.sa_mask);
  ASSERT_EQ(::sigaction(sig, &counting, nullptr), 0);
  { Runtime warm = make_runtime(); }
  const int fds_before = open_fd_count();
  std::atomic<bool> stop{false};
  std::vector<std::thread> raisers;
  for (int i = 0; i < 2; ++i) {
    raisers.emplace_back([&stop, sig] {
      while (!stop.load()) {
        ::kill(::getpid(), sig);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
  }
  int ok = 0, timed_out = 0, other = 0;
  for (int round = 0; round < 30; ++round) {
    Runtime rt = make_runtime();
    std::vector<absl::Status> got = rt.block_on([]() -> Task<std::vector<absl::Status>> {
      std::vector<JoinHandle<std::vector<absl::Status>>> hs;
      for (int t = 0; t < 3; ++t) {
        hs.push_back(pollux::spawn([]() -> Task<std::vector<absl::Status>> {
          std::vector<absl::Status> out;
          for (int j = 0; j < 4; ++j) {
            absl::StatusOr<signal::Signal> s = signal::subscribe(SIGRTMIN + 3);
            if (!s.ok()) {
              out.push_back(s.status());
              continue;
            }
            out.push_back(co_await timeout(s->recv(), absl::Milliseconds(10)));
          }
          co_return out;
        }));
      }
      std::vector<absl::Status> all;
      for (JoinHandle<std::vector<absl::Status>>& h : hs) {
        JoinResult<std::vector<absl::Status>> r = co_await h;
        if (!r.ok()) {
          all.push_back(r.status());
          continue;
        }
        for (absl::Status& s : r.value()) all.push_back(std::move(s));
      }
      co_return all;
    }());
    for (const absl::Status& s : got) {
      if (s.ok()) {
        ++ok;
      } else if (s.code() == absl::StatusCode::kDeadlineExceeded) {
        ++timed_out;
      } else {
        ++other;
        ADD_FAILURE() << s;
      }
    }
  }
  stop.store(true);
  for (std::thread& t : raisers) t.join();
  EXPECT_EQ(other, 0);
  EXPECT_GT(ok, 0);  // signals every 100 us on average: most recvs get one
  EXPECT_EQ(ok + timed_out, 30 * 3 * 4);
  EXPECT_EQ(open_fd_count(), fds_before);
}

}  // namespace
}  // namespace pollux
