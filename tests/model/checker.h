// model::check: pollux's exhaustive interleaving checker (DESIGN §10), in
// the spirit of tokio's loom, written for this project.
//
//   TEST(ParkModel, UnparkIsNeverLost) {
//     POLLUX_MODEL_ONLY();  // tests/model/model_test.h: skipped without --config=model
//     model::Stats s = model::check([] {
//       ThreadParker parker;
//       detail::Atomic<bool> work{false};
//       detail::Thread waker([&] { work.store(true, std::memory_order_release);
//                                  parker.unparker()->unpark(); });
//       while (!work.load(std::memory_order_acquire)) parker.park(std::nullopt);
//       waker.join();
//     });
//     EXPECT_GT(s.executions, 1u);
//   }
//
// check() runs `body` as model thread 0 again and again, once per
// execution, until every execution within the bounds has been explored
// (depth-first; the first is the plain sequential one). The body builds
// its state, starts up to 7 more threads with detail::Thread, joins them
// and checks its invariants with MODEL_ASSERT. Everything the body and its
// threads do through the concurrency shim (future/internal/) is seen by
// the checker, built with --config=model: each access is a scheduling
// point, and a load may read any store the C++ memory model allows
// (within the approximations listed in tests/model/README.md).
//
// It reports, and then exits the process with status 1 (use EXPECT_EXIT
// with ExitedWithCode(1) to show that a planted bug is caught):
//   a failed MODEL_ASSERT, or an abort (a failed POLLUX_CHECK);
//   a data race on a RaceCell; a deadlock; a leak or a double free of an
//   allocation made during an execution; an execution longer than
//   max_steps; misuse of the shim types; a model that is not deterministic.
// The report names the execution, the thread switches and, for each load,
// the store it read.
//
// A model must be deterministic given the checker's choices (no time, no
// randomness, no state carried over from an earlier execution) and must
// free in each execution what it allocates there.
//
// Thread-safety: call from a test's thread, one check at a time.
#ifndef POLLUX_TESTS_MODEL_CHECKER_H_
#define POLLUX_TESTS_MODEL_CHECKER_H_

#include <cstdint>
#include <functional>

namespace pollux::model {

struct Options {
  // Switches away from a runnable thread per execution (switching when a
  // thread blocks or finishes is free). The environment variable
  // POLLUX_MODEL_PREEMPTIONS overrides it, for deeper runs by hand (3).
  int max_preemptions = 2;
  // Scheduling points per execution; an execution that needs more is
  // reported (a livelock, or a spin loop the model should not have).
  uint64_t max_steps = 20000;
  // Stop (Stats::complete false) after this many executions.
  uint64_t max_executions = 20'000'000;
  // Printed in the summary line.
  const char* name = "model";
};

struct Stats {
  uint64_t executions = 0;
  uint64_t max_steps = 0;    // scheduling points in the longest execution
  uint64_t max_choices = 0;  // choice points in the deepest execution
  int max_preemptions = 0;   // the bound used
  bool complete = false;     // every execution within the bound was explored
  double seconds = 0;
};

// Explores `body` (see the header comment). Returns only when no failure
// was found.
Stats check(const std::function<void()>& body, const Options& options = {});

namespace internal {
[[noreturn]] void model_assertion_failed(const char* condition, const char* file, int line);
}  // namespace internal

}  // namespace pollux::model

// Checks `cond` inside a model; a failure is reported with the schedule
// that led to it. Outside model::check it prints and aborts.
#define MODEL_ASSERT(cond)                                                        \
  do {                                                                            \
    if (!(cond)) ::pollux::model::internal::model_assertion_failed(#cond, __FILE__, __LINE__); \
  } while (false)

#endif  // POLLUX_TESTS_MODEL_CHECKER_H_
