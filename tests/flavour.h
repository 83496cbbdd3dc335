// The runtime flavour a test binary runs on, so one test suite covers
// current_thread, multi_thread(2) and thread_per_core(2).
//
// BUILD's cc_test_every_flavour (tests/both_backends.bzl) builds a test
// binary once and runs it as four targets: on current_thread with the
// default backend, on current_thread with POLLUX_BACKEND=epoll, and with
// POLLUX_TEST_FLAVOUR=multi_thread or thread_per_core. A test that builds
// its runtime with runtime_builder() runs on whichever the target names;
// one that needs current_thread (the paused clock, spawn_local's thread,
// the runtime being driven by the test's own thread) names it itself or
// skips with kSkipUnlessCurrentThread's message.
//
// Thread-safety: the functions read the environment only; call them from
// any thread. live_ops() must not be called from one of rt's workers.
#ifndef POLLUX_TESTS_FLAVOUR_H_
#define POLLUX_TESTS_FLAVOUR_H_

#include <cstddef>

#include "runtime/runtime.h"

namespace pollux::testing {

enum class TestFlavour { kCurrentThread, kMultiThread, kThreadPerCore };

// The flavour POLLUX_TEST_FLAVOUR names (current_thread when it is unset;
// a bad value aborts with a message that lists the good ones).
TestFlavour test_flavour();
inline bool on_current_thread() { return test_flavour() == TestFlavour::kCurrentThread; }

// Runtime::Builder() set to test_flavour(): current_thread(),
// multi_thread(2) or thread_per_core(2). Chain the rest (enable_all() ...).
Runtime::Builder runtime_builder();

// The op slots live in all of rt's backends (Backend::live_ops), each read
// on the thread that owns it: the caller's for current_thread (it drives
// the runtime), a task on each worker (core) for the other flavours.
size_t live_ops(Runtime& rt);

// The GTEST_SKIP message of tests that only make sense on current_thread.
inline constexpr char kCurrentThreadOnly[] =
    "current_thread only: this test drives the runtime from the test's thread";

}  // namespace pollux::testing

#endif  // POLLUX_TESTS_FLAVOUR_H_
