// Exploration: the depth-first search over executions.
//
// An execution is a sequence of choices (which thread runs at a scheduling
// point, which store a load reads, which waiter a notify_one wakes). The
// exploration replays the recorded prefix of choices, and past its end takes
// alternative 0 at each new choice and records it. After the execution,
// advance() moves to the next untried alternative of the deepest choice
// that has one, dropping everything after it: that is depth-first order,
// and alternative 0 everywhere (no preemption, newest values) is the plain
// sequential execution, explored first.
//
// The model must be deterministic given the choices: a replayed choice
// point with a different kind or number of alternatives is reported.
#ifndef POLLUX_TESTS_MODEL_INTERNAL_EXPLORATION_H_
#define POLLUX_TESTS_MODEL_INTERNAL_EXPLORATION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pollux::model::internal {

enum class ChoiceKind : uint8_t { kSchedule, kLoad, kNotify };

const char* choice_kind_name(ChoiceKind kind) noexcept;

class Exploration {
 public:
  // Starts replaying the current path from its first choice.
  void begin_execution() noexcept { next_ = 0; }
  // Which of `alternatives` (>= 2) to take at the next choice point.
  [[nodiscard]] uint32_t choose(ChoiceKind kind, uint32_t alternatives);
  // After an execution: false when every path has been explored.
  [[nodiscard]] bool advance();
  // Choice points in the current execution so far.
  [[nodiscard]] size_t depth() const noexcept { return next_; }

 private:
  struct Choice {
    ChoiceKind kind;
    uint32_t taken;
    uint32_t alternatives;
  };
  std::vector<Choice> path_;
  size_t next_ = 0;
};

}  // namespace pollux::model::internal

#endif  // POLLUX_TESTS_MODEL_INTERNAL_EXPLORATION_H_
