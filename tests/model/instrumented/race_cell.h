// The model checker's detail::RaceCell<T> (the --config=model side of
// future/internal/race_cell.h).
//
// On a model thread during model::check, get() is a read access and
// get_mut() a write access of the cell, and so are its construction and
// destruction (a write: they make and end the value). The checker reports
// two accesses of which one writes and neither happens before the other
// (tests/model/internal/cell_hooks.cc). Accesses are not scheduling points:
// the race is found in whichever interleaving both accesses happen.
// Anywhere else it is the T and two accessors.
#ifndef POLLUX_TESTS_MODEL_INSTRUMENTED_RACE_CELL_H_
#define POLLUX_TESTS_MODEL_INSTRUMENTED_RACE_CELL_H_

#include <utility>

#include "tests/model/internal/hooks.h"

namespace pollux::detail {

template <class T>
class RaceCell {
 public:
  template <class... Args>
  explicit RaceCell(Args&&... args) : value_(std::forward<Args>(args)...) {
    if (model::internal::in_execution()) {
      model::internal::cell_access(link_, this, model::internal::CellAccess::kConstruct,
                                   {nullptr, 0});
    }
  }
  ~RaceCell() {
    if (model::internal::in_execution()) {
      model::internal::cell_access(link_, this, model::internal::CellAccess::kDestroy,
                                   {nullptr, 0});
    }
  }
  RaceCell(const RaceCell&) = delete;
  RaceCell& operator=(const RaceCell&) = delete;

  // A read access.
  const T& get(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const noexcept {
    if (model::internal::in_execution()) {
      model::internal::cell_access(link_, this, model::internal::CellAccess::kRead, {file, line});
    }
    return value_;
  }
  // A write access.
  T& get_mut(const char* file = __builtin_FILE(), int line = __builtin_LINE()) noexcept {
    if (model::internal::in_execution()) {
      model::internal::cell_access(link_, this, model::internal::CellAccess::kWrite,
                                   {file, line});
    }
    return value_;
  }

 private:
  T value_;
  mutable model::internal::CellLink link_;
};

}  // namespace pollux::detail

#endif  // POLLUX_TESTS_MODEL_INSTRUMENTED_RACE_CELL_H_
