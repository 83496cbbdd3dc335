#include "tests/model/checker.h"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/model/internal/allocation_tracker.h"
#include "tests/model/internal/execution.h"
#include "tests/model/internal/exploration.h"
#include "tests/model/internal/hooks.h"
#include "tests/model/internal/report.h"
#include "tests/model/internal/trace.h"

namespace pollux::model {

namespace {

int preemption_bound(const Options& options) {
  if (const char* env = std::getenv("POLLUX_MODEL_PREEMPTIONS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 0 && v < 100) return static_cast<int>(v);
    std::fprintf(stderr, "model: ignoring POLLUX_MODEL_PREEMPTIONS=%s (not a small number)\n", env);
  }
  return options.max_preemptions;
}

void run_body(void* body) { (*static_cast<const std::function<void()>*>(body))(); }

}  // namespace

Stats check(const std::function<void()>& body, const Options& options) {
  using internal::Execution;
  if (internal::current_execution() != nullptr) {
    internal::report_failure(internal::FailureKind::kMisuse,
                             "model::check called while another check runs");
  }
  Stats stats;
  stats.max_preemptions = preemption_bound(options);
  const internal::ExecutionLimits limits{stats.max_preemptions, options.max_steps};
  const auto start = std::chrono::steady_clock::now();
  {
    Execution execution;
    internal::Exploration exploration;
    internal::install_crash_reports();
    const internal::ThreadBody main{&run_body, nullptr,
                                    const_cast<std::function<void()>*>(&body)};
    for (;;) {
      execution.run(main, limits, exploration);
      ++stats.executions;
      if (execution.step() > stats.max_steps) stats.max_steps = execution.step();
      if (exploration.depth() > stats.max_choices) stats.max_choices = exploration.depth();
      internal::check_allocations_after_execution();
      if (!exploration.advance()) {
        stats.complete = true;
        break;
      }
      if (stats.executions >= options.max_executions) break;
    }
    internal::remove_crash_reports();
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[model] %s: %" PRIu64 " executions%s (max %" PRIu64 " steps, %" PRIu64
              " choices, <= %d preemptions) in %.2f s\n",
              options.name, stats.executions, stats.complete ? "" : " (stopped at the cap)",
              stats.max_steps, stats.max_choices, stats.max_preemptions, stats.seconds);
  std::fflush(stdout);
  return stats;
}

namespace internal {

void model_assertion_failed(const char* condition, const char* file, int line) {
  const std::string what = std::string("MODEL_ASSERT(") + condition + ") failed at " +
                           short_file(file) + ":" + std::to_string(line);
  if (!in_execution()) {
    std::fprintf(stderr, "%s (outside a model execution)\n", what.c_str());
    std::abort();
  }
  report_failure(FailureKind::kAssertion, what);
}

}  // namespace internal

}  // namespace pollux::model
