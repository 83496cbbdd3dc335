// consumer: pollux used from another Bazel workspace, through
// `@pollux//:pollux` and pollux's own include paths only.
//
// Contract: prints one line per check and a final "consumer: ok ..." line,
// and exits 0 only when all three held:
//   1. a hand-written future (poll(Context&) storing cx.waker()) completes
//      when another thread wakes the stored waker;
//   2. a Task<T> coroutine co_awaits that future and another coroutine;
//   3. a TCP echo round trip over 127.0.0.1 (an ephemeral port) gives back
//      exactly the bytes sent.
// Any failure prints "consumer: FAIL ..." and exits 1.
//
//   cd examples/consumer && ./bazelw run //:consumer
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "future/future.h"
#include "future/join.h"
#include "future/task.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"

namespace {

using pollux::Task;
using pollux::net::SocketAddr;
using pollux::net::TcpListener;
using pollux::net::TcpStream;

// A value handed over from a plain std::thread. The future keeps the
// latest waker it was polled with; the thread wakes it after storing the
// value, under the same lock, so a poll either sees the value or has left a
// waker the thread will find: no lost wake-up.
struct Slot {
  std::mutex mu;
  std::optional<int> value;
  pollux::Waker waker;
};

class WaitForValue {
 public:
  using Output = int;
  explicit WaitForValue(Slot& slot) : slot_(&slot) {}

  pollux::Poll<int> poll(pollux::Context& cx) {
    std::lock_guard lock(slot_->mu);
    if (slot_->value) return pollux::Ready(*slot_->value);
    // Replace rather than keep the first: the task may have been moved to
    // another waker since the last poll.
    if (!slot_->waker.will_wake(cx.waker())) slot_->waker = cx.waker();
    return pollux::Pending{};
  }

 private:
  Slot* slot_;
};

bool check(bool ok, const std::string& what) {
  std::printf("consumer: %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  return ok;
}

// Check 1 and 2: a coroutine awaiting the hand-written future (the value
// arrives from another thread) and then a second coroutine.
Task<int> doubled(int v) { co_return v * 2; }

Task<bool> future_and_coroutine() {
  Slot slot;
  std::thread setter([&slot] {
    // Late enough that the first poll finds nothing and must park.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pollux::Waker w;
    {
      std::lock_guard lock(slot.mu);
      slot.value = 21;
      w = std::move(slot.waker);
    }
    std::move(w).wake();  // outside the lock: the wake may poll at once
  });
  int v = co_await WaitForValue(slot);
  setter.join();
  bool ok = check(v == 21, "hand-written future woken from another thread: " + std::to_string(v));
  int d = co_await doubled(v);
  ok = check(d == 42, "Task<int> co_await Task<int>: " + std::to_string(d)) && ok;
  co_return ok;
}

// Server side of check 3: echo what one connection sends until its end.
Task<bool> echo_one(TcpListener& listener) {
  auto accepted = co_await listener.accept();
  if (!accepted.ok()) co_return check(false, "accept: " + accepted.status().ToString());
  TcpStream s = std::move(accepted->first);
  for (;;) {
    pollux::reactor::IoResult r = co_await s.read(std::vector<char>(4096));
    if (!r.n.ok()) co_return check(false, "server read: " + r.n.status().ToString());
    if (*r.n == 0) co_return true;  // the client shut down its write side
    pollux::net::WriteAllResult w = co_await s.write_all(std::move(r.buf), *r.n);
    if (!w.status.ok()) co_return check(false, "server write: " + w.status.ToString());
  }
}

// Client side of check 3.
Task<bool> send_and_read_back(SocketAddr addr, std::string message) {
  auto c = co_await TcpStream::connect(addr);
  if (!c.ok()) co_return check(false, "connect: " + c.status().ToString());
  pollux::net::WriteAllResult w =
      co_await c->write_all(std::vector<char>(message.begin(), message.end()));
  if (!w.status.ok()) co_return check(false, "client write: " + w.status.ToString());
  auto back = co_await c->read_exact(message.size());
  if (!back.ok()) co_return check(false, "client read: " + back.status().ToString());
  // Ends the server's loop; the echo is already complete.
  (void)c->shutdown_write();
  std::string got(back->begin(), back->end());
  co_return check(got == message, "TCP echo on " + addr.to_string() + ": \"" + got + "\"");
}

Task<bool> tcp_echo() {
  auto listener = TcpListener::bind(SocketAddr::ipv4_loopback(0));
  if (!listener.ok()) co_return check(false, "bind: " + listener.status().ToString());
  // Both sides in one task: join polls them concurrently, no spawn needed.
  auto [server_ok, client_ok] = co_await pollux::join(
      echo_one(*listener), send_and_read_back(listener->local_addr(), "hello from a consumer"));
  co_return server_ok && client_ok;
}

Task<bool> main_task() {
  bool a = co_await future_and_coroutine();
  bool b = co_await tcp_echo();
  co_return a && b;
}

}  // namespace

int main() {
  auto rt = pollux::Runtime::Builder().current_thread().enable_all().build();
  if (!rt.ok()) {
    std::printf("consumer: FAIL runtime: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  bool ok = rt->block_on(main_task());
  std::printf("consumer: %s (pollux as @pollux//:pollux, backend %s)\n",
              ok ? "ok, every check passed" : "FAIL, see above", rt->backend().name());
  return ok ? 0 : 1;
}
