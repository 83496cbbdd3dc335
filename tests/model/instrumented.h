// The concurrency shim under `--config=model` (POLLUX_MODEL): what
// future/internal/{atomic,mutex,thread,race_cell}.h include instead of the
// std/absl types, so that the model checker of tests/model/ runs the real
// code (DESIGN §10).
//
// In namespace pollux::detail, with the normal shim's API:
//   Atomic<T>, atomic_fence           tests/model/instrumented/atomic.h
//   Mutex, MutexLock, CondVar         tests/model/instrumented/mutex.h
//   Thread, ThreadLifetimeAllocation  tests/model/instrumented/thread.h
//   RaceCell<T>                       tests/model/instrumented/race_cell.h
// Each operation made by a model thread during model::check
// (tests/model/checker.h) is seen by the checker; anywhere else each type
// behaves as the ordinary one, so a whole binary can be built with
// --config=model and its plain tests still run.
//
// Accessors take a trailing source location defaulted to the caller's
// (__builtin_FILE/__builtin_LINE), which the checker's reports print; code
// written against the normal shim never passes it.
#ifndef POLLUX_TESTS_MODEL_INSTRUMENTED_H_
#define POLLUX_TESTS_MODEL_INSTRUMENTED_H_

#if !defined(POLLUX_MODEL)
#error "tests/model/instrumented.h is the --config=model shim; include future/internal/*.h instead"
#endif

#include "tests/model/instrumented/atomic.h"
#include "tests/model/instrumented/mutex.h"
#include "tests/model/instrumented/race_cell.h"
#include "tests/model/instrumented/thread.h"

#endif  // POLLUX_TESTS_MODEL_INSTRUMENTED_H_
