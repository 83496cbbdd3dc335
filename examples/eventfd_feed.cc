// eventfd_feed: a thread that is not pollux's feeds a task through an
// eventfd, with AsyncFd (reactor/async_fd.h).
//
//   ./bazelw run //examples:eventfd_feed
//   POLLUX_BACKEND=epoll ./bazelw run //examples:eventfd_feed
//
// The producer thread pushes numbered items into a locked queue and writes
// the eventfd after each (an eventfd counts: many writes, one wake-up). The
// consumer task waits until the eventfd is readable, reads its count, takes
// that many items, and when the read says EAGAIN clears the readiness so the
// next write is a new edge. It checks that every item arrived exactly once,
// in order, then says how many wake-ups that took on which backend.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "future/task.h"
#include "reactor/async_fd.h"
#include "reactor/owned_fd.h"
#include "runtime/runtime.h"

namespace {

constexpr uint64_t kItems = 200'000;

// What the producer hands over: items under a lock, announced by the eventfd.
struct Mailbox {
  std::mutex mu;
  std::deque<uint64_t> items;
};

struct Tally {
  uint64_t received = 0;
  uint64_t wakeups = 0;
  uint64_t clears = 0;
  bool in_order = true;
};

pollux::Task<absl::Status> consume(int efd, Mailbox* box, Tally* t) {
  absl::StatusOr<pollux::reactor::AsyncFd> afd = pollux::reactor::AsyncFd::create(efd);
  if (!afd.ok()) co_return afd.status();
  while (t->received < kItems) {
    absl::StatusOr<pollux::reactor::ReadyGuard> ready = co_await afd->readable();
    if (!ready.ok()) co_return ready.status();
    ++t->wakeups;
    uint64_t count = 0;
    if (::read(efd, &count, sizeof(count)) < 0) {
      if (errno != EAGAIN) co_return absl::InternalError("eventfd read failed");
      ready->clear_ready();  // drained: the producer's next write is a new edge
      ++t->clears;
      continue;
    }
    std::lock_guard lock(box->mu);
    for (uint64_t i = 0; i < count; ++i) {
      const uint64_t item = box->items.front();
      box->items.pop_front();
      t->in_order = t->in_order && item == t->received;
      ++t->received;
    }
  }
  co_return absl::OkStatus();
}

}  // namespace

int main() {
  pollux::OwnedFd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd.valid()) {
    std::perror("eventfd");
    return 1;
  }
  absl::StatusOr<pollux::Runtime> rt =
      pollux::Runtime::Builder().current_thread().enable_all().build();
  if (!rt.ok()) {
    std::fprintf(stderr, "eventfd_feed: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  std::printf("backend: %s (%s)\n", rt->backend().name(), rt->backend().reason.c_str());
  Mailbox box;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kItems; ++i) {
      {
        std::lock_guard lock(box.mu);
        box.items.push_back(i);
      }
      const uint64_t one = 1;
      if (::write(efd.get(), &one, sizeof(one)) != sizeof(one)) std::perror("eventfd write");
      if (i % 64 == 0) std::this_thread::yield();  // let the consumer catch up now and then
    }
  });
  Tally t;
  absl::Status s = rt->block_on(consume(efd.get(), &box, &t));
  producer.join();
  std::printf("%" PRIu64 " items from a foreign thread in %" PRIu64 " wake-ups (%" PRIu64
              " clears after EAGAIN), %s\n",
              t.received, t.wakeups, t.clears, t.in_order ? "in order" : "OUT OF ORDER");
  const bool ok = s.ok() && t.received == kItems && t.in_order;
  if (!s.ok()) std::printf("error: %s\n", s.ToString().c_str());
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
