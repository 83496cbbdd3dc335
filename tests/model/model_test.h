// What every model test (tests/model/*_test.cc) shares.
//
// POLLUX_MODEL_ONLY() skips the test unless it is built with
// --config=model: without it the shim types are the std ones and the
// checker would only run each body once, on real threads, checking
// nothing. So `./bazelw test //...` stays green in every other config.
#ifndef POLLUX_TESTS_MODEL_MODEL_TEST_H_
#define POLLUX_TESTS_MODEL_MODEL_TEST_H_

#include "gtest/gtest.h"
#include "tests/model/checker.h"

#if defined(POLLUX_MODEL)
#define POLLUX_MODEL_ONLY() \
  do {                      \
  } while (false)
#else
#define POLLUX_MODEL_ONLY() GTEST_SKIP() << "needs --config=model"
#endif

namespace pollux::model {

// The checker's failures end the process with this status and a report
// whose first line names the kind: EXPECT_EXIT(check(...), ExitsWithFailure(), "deadlock").
inline ::testing::ExitedWithCode ExitsWithFailure() { return ::testing::ExitedWithCode(1); }

}  // namespace pollux::model

#endif  // POLLUX_TESTS_MODEL_MODEL_TEST_H_
