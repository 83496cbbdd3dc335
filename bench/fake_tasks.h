// run_fake_connections: the pollux side of the fake-backend loops
// (bench/fake_echo.cc, bench/fake_http.cc) runs one task per connection on a
// LocalExecutor over FakeBackend, and this is that set-up, shared so both
// measure the same runtime path: the executor parks through `park` (the
// backend itself, or a wrapper that lets fake peers move first), and every
// op future finds `backend` in the RuntimeContext, as on a real runtime.
//
// Thread-safety: none; the calling thread runs everything.
#ifndef POLLUX_BENCH_FAKE_TASKS_H_
#define POLLUX_BENCH_FAKE_TASKS_H_

#include <cstddef>
#include <vector>

#include "bench/fake_sockets.h"
#include "executor/context.h"
#include "executor/driver.h"
#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "executor/spawn.h"
#include "future/assert.h"
#include "future/task.h"

namespace pollux::bench {

namespace detail {
template <class Connection>
Task<void> spawn_and_join(int connections, Connection& connection) {
  std::vector<JoinHandle<void>> handles;
  handles.reserve(static_cast<size_t>(connections));
  for (int fd = 0; fd < connections; ++fd) handles.push_back(pollux::spawn(connection(fd)));
  for (JoinHandle<void>& h : handles) {
    auto r = co_await h;
    POLLUX_CHECK(r.ok(), "a fake connection's task failed");
  }
}
}  // namespace detail

// Runs connection(fd) (a Task<void>) for every fd in [0, connections), one
// task each, until all have finished.
template <class Connection>
void run_fake_connections(Park& park, FakeBackend& backend, int connections,
                          Connection connection) {
  LocalExecutor executor(park);
  RuntimeContext ctx = RuntimeContext::current();
  ctx.backend = &backend;
  RuntimeContext::Enter entered(ctx);
  executor.block_on(detail::spawn_and_join(connections, connection));
}

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_FAKE_TASKS_H_
