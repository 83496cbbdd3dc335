// coroutines: the same hand-written Countdown future, awaited from C++20
// coroutines, mixed with join and select.
//
//   ./bazelw run //examples:coroutines
//
// A Task<T> is itself a Future: it can co_await any future (hand-written or
// not), be co_awaited, joined, selected, or spawned.
#include <chrono>
#include <cstdio>
#include <string>

#include "examples/countdown.h"
#include "executor/local_executor.h"
#include "future/join.h"
#include "future/select.h"
#include "future/task.h"

namespace {

using pollux::Task;

// A coroutine that awaits the hand-written future and reports on it.
Task<int> count(std::string name, int from, examples::TickSource& ticks) {
  int polls = co_await examples::Countdown(name, from, ticks);
  std::printf("  %s finished (%d polls)\n", name.c_str(), polls);
  co_return from;
}

Task<int> both(examples::TickSource& ticks) {
  // join: both run concurrently inside this one task; outputs come in order.
  auto [a, b] = co_await pollux::join(count("join-a", 3, ticks), count("join-b", 2, ticks));
  co_return a + b;
}

Task<std::string> race(examples::TickSource& ticks) {
  // select: the first to finish wins; the loser is destroyed at once.
  auto r = co_await pollux::select(count("fast", 1, ticks), count("slow", 4, ticks));
  co_return r.index == 0 ? "fast" : "slow";
}

}  // namespace

int main() {
  examples::TickSource ticks(std::chrono::milliseconds(150));
  pollux::LocalExecutor executor;

  std::printf("coroutines: join of two countdowns\n");
  int sum = executor.block_on(both(ticks));
  std::printf("join result: %d\n\n", sum);

  std::printf("coroutines: select of a fast and a slow countdown\n");
  std::string winner = executor.block_on(race(ticks));
  std::printf("select winner: %s (the slow one was dropped mid-count)\n\n", winner.c_str());

  std::printf("coroutines: a spawned coroutine lambda (its captures live in the task)\n");
  int base = 40;
  auto handle = executor.spawn_local([base, &ticks]() -> Task<int> {
    co_await examples::Countdown("spawned", 2, ticks);
    co_return base + 2;
  });
  auto result = executor.block_on(std::move(handle));
  std::printf("spawned task returned %d\n", result.value());
  return 0;
}
