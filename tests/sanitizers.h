// Which sanitizer a test binary is built with, for the tests that must
// shrink (ThreadSanitizer makes each task about ten times slower) or skip
// (ThreadSanitizer cannot start threads in a child forked from a process
// that has them). GCC defines __SANITIZE_THREAD__; clang has
// __has_feature(thread_sanitizer) instead.
#ifndef POLLUX_TESTS_SANITIZERS_H_
#define POLLUX_TESTS_SANITIZERS_H_

#if defined(__SANITIZE_THREAD__)
#define POLLUX_TESTS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define POLLUX_TESTS_TSAN 1
#endif
#endif

namespace pollux::testing {

#if defined(POLLUX_TESTS_TSAN)
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif

}  // namespace pollux::testing

#endif  // POLLUX_TESTS_SANITIZERS_H_
