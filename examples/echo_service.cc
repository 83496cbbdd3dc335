#include "examples/echo_service.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "examples/server_flags.h"
#include "executor/join_handle.h"
#include "net/socket_addr.h"
#include "reactor/errno_status.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "timer/sleep.h"

namespace pollux::examples {
namespace {

// The connection tasks a server has spawned and not yet seen finish. A task
// removes its own entry when its handler returns; whatever is left when the
// server task is dropped is aborted, so no connection outlives its server.
struct LiveConnections {
  uint64_t next_id = 0;
  std::unordered_map<uint64_t, JoinHandle<void>> tasks;
};

// Lives in the server's coroutine frame: destroying the frame (dropping the
// server task) aborts every connection task still running.
class AbortConnectionsOnDrop {
 public:
  explicit AbortConnectionsOnDrop(std::shared_ptr<LiveConnections> live) : live_(std::move(live)) {}
  AbortConnectionsOnDrop(const AbortConnectionsOnDrop&) = delete;
  AbortConnectionsOnDrop& operator=(const AbortConnectionsOnDrop&) = delete;
  ~AbortConnectionsOnDrop() {
    for (auto& [id, task] : live_->tasks) task.abort();
    live_->tasks.clear();  // detaches them: each is dropped at its next scheduling point
  }

 private:
  std::shared_ptr<LiveConnections> live_;
};

// True for accept errors that only say "not now" (no fd or memory left):
// worth retrying after connections have had a moment to close.
bool is_resource_exhaustion(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

// True for accept errors that will repeat forever: the listener itself is
// unusable (moved from, closed, not a socket) or there is no I/O driver.
bool is_listener_broken(int err) {
  return err == 0 || err == EBADF || err == EINVAL || err == ENOTSOCK;
}

}  // namespace

Task<void> serve_connections(net::TcpListener listener, ConnectionHandler handler) {
  auto live = std::make_shared<LiveConnections>();
  AbortConnectionsOnDrop abort_on_drop(live);
  // One multishot accept serves the whole loop: no SQE per connection.
  net::Incoming incoming = listener.incoming();
  for (;;) {
    absl::StatusOr<net::TcpStream> accepted = co_await incoming.next();
    if (!accepted.ok()) {
      const int err = errno_of(accepted.status());
      if (is_resource_exhaustion(err)) {
        co_await pollux::sleep(absl::Milliseconds(10));
      } else if (is_listener_broken(err)) {
        std::fprintf(stderr, "server on %s stops: %s\n", listener.local_addr().to_string().c_str(),
                     accepted.status().ToString().c_str());
        co_return;
      }
      // Anything else (ECONNABORTED, a pending network error handed over by
      // accept) concerns that one connection: accept the next.
      continue;
    }
    const uint64_t id = live->next_id++;
    // The task starts at a later tick, so its entry is in the map before it
    // can remove it.
    JoinHandle<void> task = pollux::spawn(
        [live, id, handler, stream = std::move(*accepted)]() mutable -> Task<void> {
          co_await handler(std::move(stream));
          live->tasks.erase(id);  // drops our own handle: detaching a running task is fine
        });
    live->tasks.emplace(id, std::move(task));
  }
}

Task<void> echo_connection(net::TcpStream stream) {
  // Echo writes whatever one read returned; with Nagle on, a message split
  // across two reads would wait for the client's delayed ACK (~40 ms).
  stream.set_nodelay(true).IgnoreError();
  std::vector<char> buf(kEchoBufferBytes);
  for (;;) {
    reactor::IoResult r = co_await stream.read(std::move(buf));
    buf = std::move(r.buf);
    if (!r.n.ok() || *r.n == 0) co_return;  // error or end of stream: this connection is done
    // Send just the n bytes read; the buffer keeps its size (resizing it
    // back up would zero-fill 16 KiB per message).
    net::WriteAllResult w = co_await stream.write_all(std::move(buf), *r.n);
    buf = std::move(w.buf);
    if (!w.status.ok()) co_return;
  }
}

Task<void> serve_echo(net::TcpListener listener) {
  return serve_connections(std::move(listener), echo_connection);
}

unsigned long long raise_open_file_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur != lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return static_cast<unsigned long long>(lim.rlim_cur);
}

int run_server(int argc, char** argv, int default_port, Task<void> (*serve)(net::TcpListener)) {
  const char* program = argc > 0 ? argv[0] : "server";
  absl::StatusOr<ServerFlags> flags = parse_server_flags(argc, argv, default_port);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, std::string(flags.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<net::SocketAddr> addr = net::SocketAddr::parse(host_port(*flags));
  if (!addr.ok()) {
    std::fprintf(stderr, "%s: bad --addr=%s: %s\n", program, flags->addr.c_str(),
                 addr.status().ToString().c_str());
    return 2;
  }
  raise_open_file_limit();
  absl::StatusOr<Runtime> rt = Runtime::Builder().current_thread().enable_all().build();
  if (!rt.ok()) {
    std::fprintf(stderr, "%s: could not start the runtime: %s\n", program,
                 rt.status().ToString().c_str());
    return 1;
  }
  // A first round trip through the kernel before announcing readiness: a
  // ring the kernel refuses to enable or enter (seccomp, a container) is
  // reported here, not after "listening".
  if (absl::Status s = rt->try_block_on(reactor::nop()); !s.ok()) {
    std::fprintf(stderr, "%s: the runtime cannot do I/O: %s\n", program, s.ToString().c_str());
    return 1;
  }
  absl::StatusOr<net::TcpListener> listener = net::TcpListener::bind(*addr);
  if (!listener.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, listener.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on %s\n", listener->local_addr().to_string().c_str());
  std::fflush(stdout);
  absl::StatusOr<Unit> served = rt->try_block_on(serve(std::move(*listener)));
  if (!served.ok()) {
    std::fprintf(stderr, "%s: the runtime stopped: %s\n", program,
                 served.status().ToString().c_str());
  }
  return 1;  // serve only returns when the listener broke; it said why on stderr
}

}  // namespace pollux::examples
