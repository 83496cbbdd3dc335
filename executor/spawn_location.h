// SpawnLocation: where a task was spawned, for the task dump
// (Runtime::dump_tasks). Every spawn function takes one as a defaulted
// last argument, `SpawnLocation loc = SpawnLocation::current()`, so it names
// the caller's file, line and function at no cost beyond storing it.
//
// It is std::source_location where the standard library has it (libstdc++
// with gcc, or clang >= 15): one pointer to a static record, which is what
// the task's trailer stores. Under older clang (14 has no
// __builtin_source_location, so libstdc++'s <source_location> is empty) a
// stand-in with the same accessors, built from __builtin_FILE/LINE/FUNCTION
// (three words, not one).
//
// Thread-safety: a value type; its strings are static.
#ifndef POLLUX_EXECUTOR_SPAWN_LOCATION_H_
#define POLLUX_EXECUTOR_SPAWN_LOCATION_H_

#include <cstdint>
#include <version>

#if defined(__cpp_lib_source_location)
#include <source_location>
#endif

namespace pollux {

#if defined(__cpp_lib_source_location)
// The spawn site: std::source_location (see the header comment).
using SpawnLocation = std::source_location;
#else
// The spawn site: a stand-in for std::source_location (see the header comment).
class SpawnLocation {
 public:
  // The caller's location when used as a default argument.
  static constexpr SpawnLocation current(const char* file = __builtin_FILE(),
                                         uint_least32_t line = __builtin_LINE(),
                                         const char* function = __builtin_FUNCTION()) noexcept {
    SpawnLocation l;
    l.file_ = file;
    l.line_ = line;
    l.function_ = function;
    return l;
  }
  constexpr SpawnLocation() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr uint_least32_t line() const noexcept { return line_; }
  constexpr uint_least32_t column() const noexcept { return 0; }
  constexpr const char* function_name() const noexcept { return function_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  uint_least32_t line_ = 0;
};
#endif

}  // namespace pollux

#endif  // POLLUX_EXECUTOR_SPAWN_LOCATION_H_
