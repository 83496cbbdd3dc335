#include "tests/model/internal/report.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>

#include "tests/model/internal/execution.h"

namespace pollux::model::internal {

const char* failure_kind_name(FailureKind kind) noexcept {
  switch (kind) {
    case FailureKind::kAssertion:
      return "assertion failed";
    case FailureKind::kDataRace:
      return "data race on RaceCell";
    case FailureKind::kDeadlock:
      return "deadlock";
    case FailureKind::kLeak:
      return "leak";
    case FailureKind::kDoubleFree:
      return "double free";
    case FailureKind::kStepBound:
      return "step bound exceeded";
    case FailureKind::kMisuse:
      return "misuse of a model type";
    case FailureKind::kNondeterminism:
      return "nondeterministic model";
    case FailureKind::kCrash:
      return "crash";
  }
  return "?";
}

// Events of the trace printed at most (the end of the execution matters most).
inline constexpr size_t kReportEvents = 3000;

void report_failure(FailureKind kind, const std::string& what) {
  CheckerScope scope;
  // One report per process: a second failure while reporting (a crash in
  // the report itself) just exits.
  static std::atomic<bool> reporting{false};
  if (reporting.exchange(true)) _exit(kFailureExitStatus);
  std::fprintf(stderr, "\n==== pollux model checker: %s ====\n%s\n", failure_kind_name(kind),
               what.c_str());
  if (const Execution* e = current_execution()) {
    std::fprintf(stderr,
                 "in execution %" PRIu64 " of this check (%d of %d preemptions used, %" PRIu64
                 " steps, %zu choices)\n",
                 e->runs(), e->preemptions(), e->limits().max_preemptions, e->step(), e->choices());
    std::fprintf(stderr, "threads:\n%s", e->describe_threads().c_str());
    std::fprintf(stderr,
                 "schedule (step, thread, operation; ---- a thread switch; <- the store a load "
                 "read):\n");
    e->trace().print(stderr, kReportEvents);
  }
  std::fprintf(stderr, "==== end of model checker report ====\n");
  std::fflush(stderr);
  _exit(kFailureExitStatus);
}

namespace {

constexpr int kCrashSignals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
struct sigaction g_previous[sizeof kCrashSignals / sizeof kCrashSignals[0]];

void on_crash_signal(int sig) {
  // Only a model thread's signal is the model's; the controller's is ours.
  if (in_execution() && current_execution() != nullptr) {
    if (sig == SIGABRT) {
      report_failure(FailureKind::kAssertion,
                     "the program aborted on model thread T" +
                         std::to_string(current_execution()->running_id()) +
                         " (a failed POLLUX_CHECK/POLLUX_DCHECK or assert: its message is above)");
    }
    // Not report_failure: the default action (a core dump) should follow.
    std::fprintf(stderr, "\n==== pollux model checker: %s (signal %d) on model thread T%d ====\n",
                 failure_kind_name(FailureKind::kCrash), sig, current_execution()->running_id());
    current_execution()->trace().print(stderr, kReportEvents);
    std::fprintf(stderr, "==== end of model checker report ====\n");
    std::fflush(stderr);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void install_crash_reports() {
  for (size_t i = 0; i < sizeof kCrashSignals / sizeof kCrashSignals[0]; ++i) {
    struct sigaction sa {};
    sa.sa_handler = &on_crash_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(kCrashSignals[i], &sa, &g_previous[i]);
  }
}

void remove_crash_reports() {
  for (size_t i = 0; i < sizeof kCrashSignals / sizeof kCrashSignals[0]; ++i) {
    sigaction(kCrashSignals[i], &g_previous[i], nullptr);
  }
}

}  // namespace pollux::model::internal
