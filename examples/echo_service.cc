#include "examples/echo_service.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
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
// Locked: on a multi_thread runtime connection tasks finish on any worker.
// A std::mutex, not absl::Mutex: Debian's abseil is built without
// ThreadSanitizer, which then cannot see absl::Mutex's ordering and reports
// every access under it as a race (future/internal/mutex.h says more).
struct LiveConnections {
  std::mutex mu;
  uint64_t next_id = 0;                                   // guarded by mu
  std::unordered_map<uint64_t, JoinHandle<void>> tasks;  // guarded by mu
};

// Lives in the server's coroutine frame: destroying the frame (dropping the
// server task) aborts every connection task still running.
class AbortConnectionsOnDrop {
 public:
  explicit AbortConnectionsOnDrop(std::shared_ptr<LiveConnections> live) : live_(std::move(live)) {}
  AbortConnectionsOnDrop(const AbortConnectionsOnDrop&) = delete;
  AbortConnectionsOnDrop& operator=(const AbortConnectionsOnDrop&) = delete;
  ~AbortConnectionsOnDrop() {
    std::unordered_map<uint64_t, JoinHandle<void>> tasks;
    {
      std::lock_guard lock(live_->mu);
      tasks.swap(live_->tasks);
    }
    for (auto& [id, task] : tasks) task.abort();
    // Dropping the handles detaches them: each is dropped at its next
    // scheduling point.
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
    // Spawned under the lock, so its entry is in the map before the task
    // (which may start at once on another worker) can remove it.
    std::lock_guard lock(live->mu);
    const uint64_t id = live->next_id++;
    JoinHandle<void> task = pollux::spawn(
        [live, id, handler, stream = std::move(*accepted)]() mutable -> Task<void> {
          co_await handler(std::move(stream));
          // Our own handle, dropped after the unlock: detaching a running
          // task is fine.
          std::optional<JoinHandle<void>> own;
          std::lock_guard done(live->mu);
          if (auto it = live->tasks.find(id); it != live->tasks.end()) {
            own.emplace(std::move(it->second));
            live->tasks.erase(it);
          }
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

namespace {

absl::StatusOr<Runtime> build_runtime(const ServerFlags& flags) {
  Runtime::Builder b;
  switch (flags.flavour) {
    case ServerFlags::Flavour::kCurrentThread:
      b.current_thread();
      break;
    case ServerFlags::Flavour::kMultiThread:
      b.multi_thread(static_cast<size_t>(flags.threads));
      break;
    case ServerFlags::Flavour::kThreadPerCore:
      b.thread_per_core(static_cast<size_t>(flags.threads));
      break;
  }
  b.worker_cpu_affinity(flags.cpu_affinity);
  return b.enable_all().build();
}

// One listener per runtime thread (see server_flags.h, --port_per_thread),
// each announced as scripts expect.
absl::StatusOr<std::vector<net::TcpListener>> bind_listeners(const ServerFlags& flags,
                                                             const net::SocketAddr& addr,
                                                             size_t count) {
  std::vector<net::TcpListener> listeners;
  net::TcpListener::Options options;
  options.reuse_port = count > 1 && !flags.port_per_thread;
  net::SocketAddr next = addr;
  for (size_t i = 0; i < count; ++i) {
    absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(next, options);
    if (!l.ok()) return l.status();
    if (flags.port_per_thread) {
      if (flags.port != 0) next.set_port(static_cast<uint16_t>(flags.port + i + 1));
      std::printf("listening on %s\n", l->local_addr().to_string().c_str());
    } else if (i == 0) {
      next = l->local_addr();  // the others join the first one's port
      std::printf("listening on %s\n", next.to_string().c_str());
    }
    listeners.push_back(std::move(*l));
  }
  std::fflush(stdout);
  return listeners;
}

// A NOP through worker (core) i's backend.
absl::Status nop_on(Runtime& rt, size_t i) {
  absl::StatusOr<JoinResult<absl::Status>> r =
      rt.try_block_on(rt.spawn_on(i, [] { return reactor::nop(); }));
  if (!r.ok()) return r.status();
  return r->ok() ? r->value() : r->status();
}

}  // namespace

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
  absl::StatusOr<Runtime> rt = build_runtime(*flags);
  if (!rt.ok()) {
    std::fprintf(stderr, "%s: could not start the runtime: %s\n", program,
                 rt.status().ToString().c_str());
    return rt.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  // A first round trip through the kernel on every thread before announcing
  // readiness: a ring the kernel refuses to enable or enter (seccomp, a
  // container) is reported here, not after "listening".
  const size_t threads = rt->worker_count();
  for (size_t i = 0; i < threads; ++i) {
    if (absl::Status s = nop_on(*rt, i); !s.ok()) {
      std::fprintf(stderr, "%s: the runtime cannot do I/O: %s\n", program, s.ToString().c_str());
      return 1;
    }
  }
  // Which backend and why (kAuto falls back to epoll where io_uring is
  // refused); the "listening" lines stay last and exact for scripts.
  std::printf("backend: %s (%s)\n", rt->backend().name(), rt->backend().reason.c_str());
  absl::StatusOr<std::vector<net::TcpListener>> listeners = bind_listeners(*flags, *addr, threads);
  if (!listeners.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, listeners.status().ToString().c_str());
    return 1;
  }
  // Server i accepts on worker (core) i for its whole life; its connection
  // tasks start there (multi_thread may steal them before their first I/O).
  std::vector<JoinHandle<void>> servers;
  for (size_t i = 0; i < threads; ++i) {
    servers.push_back(rt->spawn_on(
        i, [serve, l = std::move((*listeners)[i])]() mutable { return serve(std::move(l)); }));
  }
  absl::StatusOr<Unit> served = rt->try_block_on([&]() -> Task<void> {
    for (JoinHandle<void>& h : servers) (void)co_await h;
  }());
  if (!served.ok()) {
    std::fprintf(stderr, "%s: the runtime stopped: %s\n", program,
                 served.status().ToString().c_str());
  }
  return 1;  // serve only returns when a listener broke; it said why on stderr
}

}  // namespace pollux::examples
