// Watchdog: aborts the test binary with a message when a scope does not end
// in time, so a lost wake-up fails fast and says where instead of hanging
// until the test runner's timeout.
//
//   Watchdog dog(std::chrono::seconds(20), "the 100k drop loop");
//
// Thread-safety: one watchdog thread per object; the destructor joins it.
#ifndef POLLUX_TESTS_WATCHDOG_H_
#define POLLUX_TESTS_WATCHDOG_H_

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace pollux::testing {

class Watchdog {
 public:
  Watchdog(std::chrono::seconds limit, std::string what)
      : what_(std::move(what)), thread_([this, limit] { run(limit); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void run(std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
      std::fprintf(stderr, "WATCHDOG: %s did not finish within %d s (lost wake-up?)\n",
                   what_.c_str(), static_cast<int>(limit.count()));
      std::fflush(stderr);
      std::abort();
    }
  }

  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: started after the members it reads
};

}  // namespace pollux::testing

#endif  // POLLUX_TESTS_WATCHDOG_H_
