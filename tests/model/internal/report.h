// The model checker's failure report: what went wrong, in which execution,
// and the schedule that led there. Printed to stderr; then the process
// exits with status 1 (tests of planted bugs expect exactly that with
// EXPECT_EXIT). Called on the model thread that found the failure, or on
// the controller after an execution (a leak); never returns.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_REPORT_H_
#define POLLUX_TESTS_MODEL_INTERNAL_REPORT_H_

#include <string>

namespace pollux::model::internal {

enum class FailureKind {
  kAssertion,       // MODEL_ASSERT, or the program aborted (a failed POLLUX_CHECK)
  kDataRace,        // on a RaceCell
  kDeadlock,        // no thread can run, not all finished
  kLeak,            // allocations left at the end of an execution
  kDoubleFree,
  kStepBound,       // an execution longer than Options::max_steps (livelock?)
  kMisuse,          // of the instrumented types (unlock of a mutex not held, ...)
  kNondeterminism,  // a replay diverged
  kCrash,           // a fatal signal other than SIGABRT
};

const char* failure_kind_name(FailureKind kind) noexcept;

// The exit status of a process whose model check failed.
inline constexpr int kFailureExitStatus = 1;

[[noreturn]] void report_failure(FailureKind kind, const std::string& what);

// While installed, a fatal signal on a model thread prints a report first:
// SIGABRT (a failed POLLUX_CHECK, assert, or libc's own abort) as a failed
// assertion, exiting with kFailureExitStatus; SIGSEGV, SIGBUS, SIGFPE and
// SIGILL as a crash, then the signal's default action.
void install_crash_reports();
void remove_crash_reports();

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_REPORT_H_
