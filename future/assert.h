// Checks that turn misuse into a clear message instead of silent corruption.
//
// POLLUX_CHECK(cond, msg) is always on: it guards contract violations whose
// consequences would be memory corruption or a hang (re-entering block_on from
// inside a task, for example). POLLUX_DCHECK(cond, msg) is compiled out under
// NDEBUG (`-c opt`) and guards contract violations that are cheap to detect in
// debug builds but sit on hot paths (polling a future after it returned Ready).
// Both print the message, file and line to stderr and abort.
#ifndef POLLUX_FUTURE_ASSERT_H_
#define POLLUX_FUTURE_ASSERT_H_

namespace pollux::detail {
[[noreturn]] void check_failed(const char* condition, const char* message, const char* file,
                               int line) noexcept;
}  // namespace pollux::detail

#define POLLUX_CHECK(cond, msg)                                                  \
  do {                                                                           \
    if (__builtin_expect(!(cond), 0)) {                                          \
      ::pollux::detail::check_failed(#cond, (msg), __FILE__, __LINE__);          \
    }                                                                            \
  } while (false)

#ifdef NDEBUG
#define POLLUX_DCHECK(cond, msg) \
  do {                           \
  } while (false && (cond))
#else
#define POLLUX_DCHECK(cond, msg) POLLUX_CHECK(cond, msg)
#endif

#endif  // POLLUX_FUTURE_ASSERT_H_
