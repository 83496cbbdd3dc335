// Tutorial step 7 (docs/tutorial.md): cancellation is dropping a future.
//
// select and timeout finish by destroying the futures that lost, and
// JoinHandle::abort drops a task's future at its next scheduling point: a
// dropped future never runs again, and its destructors (RAII) do the
// cleanup. What a dropped operation had already done is that operation's
// "Cancellation" contract (net/tcp.h for reads). Prints exactly
// step7_cancel.out.
//
//   ./bazelw run //examples/tutorial:step7_cancel
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "future/select.h"
#include "future/task.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"
#include "timer/sleep.h"
#include "timer/timeout.h"

namespace {

using pollux::Task;
namespace net = pollux::net;

// Prints when destroyed: shows that an aborted task's frame is unwound.
struct Cleanup {
  ~Cleanup() { std::printf("worker: dropped mid-sleep, its destructors ran\n"); }
};

Task<void> worker() {
  Cleanup cleanup;
  std::printf("worker: started, sleeping 10s\n");
  co_await pollux::sleep(absl::Seconds(10));
  std::printf("worker: woke up (never printed: it is aborted first)\n");
}

Task<void> reads(net::TcpStream& client, net::TcpStream& server) {
  // select: the sleep is listed first, and select polls in order, so it wins
  // even if both were ready. The losing read is dropped at once, cancelling
  // its recv. Nothing had been sent yet, so it took no data: the stream is
  // still usable. Had data been in flight, io_uring might have copied some
  // into the dropped read's buffer (lost); so in general, drop a read only
  // when you are done with the stream.
  auto raced = co_await pollux::select(pollux::sleep(absl::Milliseconds(20)),
                                       client.read(std::vector<char>(64)));
  std::printf("select(sleep 20ms, read): branch %zu won, the read was dropped\n", raced.index);

  std::string hello = "hello";
  net::WriteAllResult w = co_await server.write_all(std::vector<char>(hello.begin(), hello.end()));
  absl::StatusOr<std::vector<char>> got = co_await client.read_exact(hello.size());
  if (w.status.ok() && got.ok()) {
    std::printf("a new read got \"%s\"\n", std::string(got->begin(), got->end()).c_str());
  }

  // timeout is select with a sleep built in: the read's output, or
  // DeadlineExceeded (the read and its buffer dropped).
  absl::StatusOr<pollux::reactor::IoResult> r =
      co_await pollux::timeout(client.read(std::vector<char>(64)), absl::Milliseconds(30));
  std::printf("read under a 30ms timeout: %s\n", r.status().ToString().c_str());
}

Task<int> run() {
  absl::StatusOr<net::TcpListener> listener =
      net::TcpListener::bind(*net::SocketAddr::parse("127.0.0.1:0"));
  if (!listener.ok()) co_return 1;
  absl::StatusOr<net::TcpStream> client = co_await net::TcpStream::connect(listener->local_addr());
  auto accepted = co_await listener->accept();
  if (!client.ok() || !accepted.ok()) co_return 1;
  co_await reads(*client, accepted->first);

  pollux::JoinHandle<void> task = pollux::spawn(worker());
  co_await pollux::sleep(absl::Milliseconds(10));  // lets the worker start
  task.abort();
  pollux::JoinResult<pollux::Unit> result = co_await std::move(task);
  std::printf("JoinHandle after abort(): %s\n", result.status().ToString().c_str());
  co_return 0;
}

}  // namespace

int main() {
  absl::StatusOr<pollux::Runtime> rt =
      pollux::Runtime::Builder().current_thread().enable_all().build();
  if (!rt.ok()) {
    std::fprintf(stderr, "no runtime: %s\n", rt.status().ToString().c_str());
    return 1;
  }
  return rt->block_on(run());
}
