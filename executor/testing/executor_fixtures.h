// Test helpers the executor tests share.
//
//   ExecutorTest    A gtest fixture base: resets Counted, remembers
//                   live_task_cells() and arms a 120 s Watchdog named after the
//                   test in SetUp; TearDown expects every Counted and every
//                   task cell made during the test to be gone (a leak or a
//                   double destruction fails the test; a hang aborts it).
//   ProbeLog        What a Probe saw: its polls, and every destruction of a
//                   live (not moved-from) Probe with the thread it ran on.
//   Probe<F>        Wraps a future: counts its polls into a ProbeLog, holds a
//                   Counted, records its destruction (and where) in the log.
//   CountingDriver  A ThreadParker-backed Park that counts parks,
//                   non-blocking polls and unparks.
#ifndef POLLUX_EXECUTOR_TESTING_EXECUTOR_FIXTURES_H_
#define POLLUX_EXECUTOR_TESTING_EXECUTOR_FIXTURES_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "executor/driver.h"
#include "executor/local_executor.h"
#include "executor/thread_parker.h"
#include "future/context.h"
#include "future/future.h"
#include "future/poll.h"
#include "future/testing/counted.h"
#include "gtest/gtest.h"
#include "tests/watchdog.h"

namespace pollux::testing {

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Counted::reset();
    cells_at_start_ = live_task_cells();
    dog_.emplace(std::chrono::seconds(120),
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    EXPECT_EQ(Counted::live(), 0) << "a future or output leaked or was destroyed twice";
    EXPECT_EQ(live_task_cells(), cells_at_start_) << "a task cell leaked";
  }
  int64_t cells_at_start_ = 0;
  std::optional<Watchdog> dog_;  // a hang fails the test instead
};

struct ProbeLog {
  std::atomic<int> polls{0};
  std::atomic<int> destroyed{0};
  std::mutex mu;
  std::vector<std::thread::id> dtor_threads;
  bool all_destroyed_on(std::thread::id id) {
    std::lock_guard lock(mu);
    for (auto t : dtor_threads) {
      if (t != id) return false;
    }
    return true;
  }
};

template <Future F>
class Probe {
 public:
  using Output = output_t<F>;
  Probe(F f, std::shared_ptr<ProbeLog> log) : f_(std::move(f)), log_(std::move(log)) {}
  Probe(Probe&& o) noexcept : f_(std::move(o.f_)), log_(std::move(o.log_)), counted_(o.counted_) {}
  ~Probe() {
    if (!log_) return;
    log_->destroyed.fetch_add(1);
    std::lock_guard lock(log_->mu);
    log_->dtor_threads.push_back(std::this_thread::get_id());
  }
  Poll<Output> poll(Context& cx) {
    log_->polls.fetch_add(1);
    return f_.poll(cx);
  }

 private:
  F f_;
  std::shared_ptr<ProbeLog> log_;
  Counted counted_;
};

class CountingDriver final : public Park {
 public:
  struct CountingUnparker final : Unparker {
    explicit CountingUnparker(std::shared_ptr<Unparker> i) : inner(std::move(i)) {}
    void unpark() noexcept override {
      count.fetch_add(1);
      inner->unpark();
    }
    std::shared_ptr<Unparker> inner;
    std::atomic<int> count{0};
  };

  CountingDriver() : unparker_(std::make_shared<CountingUnparker>(parker_.unparker())) {}
  bool park(std::optional<absl::Duration> timeout) override {
    ++parks;
    return parker_.park(timeout);
  }
  void poll_now() override { ++nonblocking; }
  std::shared_ptr<Unparker> unparker() override { return unparker_; }
  int unparks() const { return unparker_->count.load(); }

  std::atomic<int> parks{0};  // read by other threads to know the owner parked
  int nonblocking = 0;

 private:
  ThreadParker parker_;
  std::shared_ptr<CountingUnparker> unparker_;
};

}  // namespace pollux::testing

#endif  // POLLUX_EXECUTOR_TESTING_EXECUTOR_FIXTURES_H_
