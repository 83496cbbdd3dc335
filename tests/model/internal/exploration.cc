#include "tests/model/internal/exploration.h"

#include <string>

#include "tests/model/internal/report.h"

namespace pollux::model::internal {

const char* choice_kind_name(ChoiceKind kind) noexcept {
  switch (kind) {
    case ChoiceKind::kSchedule:
      return "schedule";
    case ChoiceKind::kLoad:
      return "load value";
    case ChoiceKind::kNotify:
      return "notify_one waiter";
  }
  return "?";
}

uint32_t Exploration::choose(ChoiceKind kind, uint32_t alternatives) {
  if (next_ < path_.size()) {
    const Choice& c = path_[next_];
    if (c.kind != kind || c.alternatives != alternatives) {
      report_failure(FailureKind::kNondeterminism,
                     "replaying choice " + std::to_string(next_) + ": expected a " +
                         choice_kind_name(c.kind) + " choice among " +
                         std::to_string(c.alternatives) + ", the model made a " +
                         choice_kind_name(kind) + " choice among " +
                         std::to_string(alternatives) +
                         " (the model depends on something other than the checker's choices: "
                         "time, addresses, state left by an earlier execution?)");
    }
    ++next_;
    return c.taken;
  }
  path_.push_back(Choice{kind, 0, alternatives});
  ++next_;
  return 0;
}

bool Exploration::advance() {
  if (next_ < path_.size()) {
    report_failure(FailureKind::kNondeterminism,
                   "the execution ended after " + std::to_string(next_) + " of the " +
                       std::to_string(path_.size()) + " choices it was replaying");
  }
  while (!path_.empty() && path_.back().taken + 1 >= path_.back().alternatives) path_.pop_back();
  if (path_.empty()) return false;
  ++path_.back().taken;
  return true;
}

}  // namespace pollux::model::internal
