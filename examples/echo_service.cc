#include "examples/echo_service.h"

#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "examples/server_flags.h"
#include "executor/join_handle.h"
#include "future/future.h"
#include "future/select.h"
#include "net/socket_addr.h"
#include "reactor/errno_status.h"
#include "reactor/ops.h"
#include "runtime/runtime.h"
#include "runtime/signal.h"
#include "sync/join_set.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timeout.h"
#include "timer/timer_queue.h"

namespace pollux::examples {
namespace {

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

// Ready (with Unit) when some connection task in the set has finished, its
// handle taken out of the set. Pending while the set is empty, without a
// waker: only an accept adds to the set, and the accept loop builds a new
// Reap after every accept. Keeps finished handles from piling up while the
// server accepts.
class Reap {
 public:
  using Output = Unit;
  explicit Reap(sync::JoinSet<void>& set) : set_(&set) {}
  Poll<Unit> poll(Context& cx) {
    if (set_->empty()) return Pending{};
    auto next = set_->join_next();
    auto p = next.poll(cx);
    if (p.is_pending() || !std::move(p).value().has_value()) return Pending{};
    return Ready<Unit>{Unit{}};
  }

 private:
  sync::JoinSet<void>* set_;
};

}  // namespace

Task<void> serve_connections(net::TcpListener listener_in, ConnectionHandler handler,
                             ServeOptions options, ShutdownTrigger shutdown,
                             std::shared_ptr<ServeStats> stats) {
  std::optional<net::TcpListener> listener(std::move(listener_in));
  const std::string name = listener->local_addr().to_string();
  // Dropping the set (with this frame) aborts every connection still in it.
  sync::JoinSet<void> connections;
  // One multishot accept serves the whole loop: no SQE per connection.
  std::optional<net::Incoming> incoming(listener->incoming());
  for (;;) {
    // Biased: the shutdown first, then reaping (bounded by what was
    // accepted, so it cannot starve the accepts), then the next connection.
    auto r = co_await pollux::select(shutdown.graceful().cancelled(), Reap(connections),
                                     incoming->next());
    if (r.index == 0) break;
    if (r.index == 1) continue;
    absl::StatusOr<net::TcpStream> accepted = std::get<2>(std::move(r.value));
    if (!accepted.ok()) {
      const int err = errno_of(accepted.status());
      if (is_resource_exhaustion(err)) {
        co_await pollux::sleep(absl::Milliseconds(10));
      } else if (is_listener_broken(err)) {
        std::fprintf(stderr, "server on %s stops: %s\n", name.c_str(),
                     accepted.status().ToString().c_str());
        co_return;
      }
      // Anything else (ECONNABORTED, a pending network error handed over by
      // accept) concerns that one connection: accept the next.
      continue;
    }
    stats->counts.add(ServeStats::kConnections, 1);
    connections.spawn(handler(std::move(*accepted),
                              ConnectionEnv{options, shutdown.graceful().child_token(), stats}));
  }
  // Stop accepting: the multishot accept is cancelled (closing what it had
  // accepted and not handed out) and the listening socket closes, so new
  // connections are refused.
  incoming.reset();
  listener.reset();
  // The connections finish on their own (they saw their stop token) until
  // the grace period ends or shutdown.now().
  const Instant grace_end = Limit(options.grace).deadline();
  while (!connections.empty() && options.grace > absl::ZeroDuration()) {
    auto done = co_await pollux::select(shutdown.immediate().cancelled(),
                                        pollux::timeout_at(connections.join_next(), grace_end));
    if (done.index == 0) break;
    if (!std::get<1>(done.value).ok()) break;  // the grace period is over
  }
  connections.abort_all();
  // Aborted tasks are dropped at their next scheduling point; wait for them
  // so their sockets are closed when this returns.
  while (co_await connections.join_next()) {
  }
}

Task<void> serve_connections(net::TcpListener listener, ConnectionHandler handler) {
  return serve_connections(std::move(listener), handler, ServeOptions{}, ShutdownTrigger{},
                           std::make_shared<ServeStats>());
}

Task<void> echo_connection(net::TcpStream stream, ConnectionEnv env) {
  // Echo writes whatever one read returned; with Nagle on, a message split
  // across two reads would wait for the client's delayed ACK (~40 ms).
  stream.set_nodelay(true).IgnoreError();
  ServeStats& stats = *env.stats;
  // One multishot recv for the whole connection on io_uring (a plain recv
  // per next() on epoll). A next() dropped by the idle timeout loses
  // nothing, though the connection then ends anyway.
  net::TcpRecvStream in = stream.recv_stream();
  std::vector<char> buf(kEchoBufferBytes);
  // One timer each for the whole connection, pushed back on every message:
  // a later deadline is a store, not a wheel insert and cancel per message
  // (timeout_on, timer/timeout.h).
  Sleep idle = pollux::sleep_until(Instant::max());
  Sleep write_limit = pollux::sleep_until(Instant::max());
  const Limit idle_timeout(env.options.idle_timeout);
  const Limit write_timeout(env.options.write_timeout);
  for (;;) {
    idle.reset(idle_timeout.deadline());
    auto first = pollux::timeout_on(idle, in.next());
    absl::StatusOr<reactor::RecvBuf> lease = co_await std::move(first);
    // Idle for idle_timeout, an error, or end of stream: this connection is done.
    if (!lease.ok() || lease->empty()) co_return;
    // Copied out, and the lease dropped before the send: a buffer of the
    // worker's shared ring must not wait on a slow peer (at most 16 KiB of
    // memcpy, next to a send syscall). Arrivals already queued behind it
    // join the same send.
    size_t n = 0;
    bool end = false;
    for (;;) {
      if (buf.size() < n + lease->size()) buf.resize(n + lease->size());  // a bigger ring buffer
      std::memcpy(buf.data() + n, lease->data(), lease->size());
      n += lease->size();
      lease->reset();
      if (in.queued() == 0 || n + reactor::kRecvStreamFallbackBytes > buf.size()) break;
      lease = co_await in.next();  // queued: ready at once
      if (!lease.ok() || lease->empty()) {
        end = true;  // send what came before the end first
        break;
      }
    }
    stats.counts.add(ServeStats::kRequests, 1);
    stats.counts.add(ServeStats::kBytesIn, n);
    // Send just the n bytes read; the buffer keeps its size (resizing it
    // back up would zero-fill 16 KiB per message). The peer must take them
    // within write_timeout: reading is stopped meanwhile, so a client that
    // sends without reading is held back by its own full socket buffer.
    // On io_uring its arrivals meanwhile queue in provided buffers of the
    // worker's ring (the multishot stays armed), which other connections
    // then wait for: write_timeout bounds that too.
    write_limit.reset(write_timeout.deadline());
    auto put = pollux::timeout_on(write_limit, stream.write_all(std::move(buf), n));
    absl::StatusOr<net::WriteAllResult> w = co_await std::move(put);
    if (!w.ok()) co_return;
    buf = std::move(w->buf);
    if (!w->status.ok()) co_return;
    stats.counts.add(ServeStats::kBytesOut, n);
    if (end) co_return;
  }
}

Task<void> serve_echo(net::TcpListener listener) {
  return serve_connections(std::move(listener), echo_connection);
}

Task<void> serve_echo(net::TcpListener listener, ServeOptions options, ShutdownTrigger shutdown,
                      std::shared_ptr<ServeStats> stats) {
  return serve_connections(std::move(listener), echo_connection, options, std::move(shutdown),
                           std::move(stats));
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

int run_server(int argc, char** argv, int default_port, ConnectionHandler handler) {
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
  // Subscribed before "listening" is printed: a signal sent as soon as a
  // script sees that line must find the handler installed.
  ShutdownTrigger shutdown;
  absl::StatusOr<absl::StatusOr<JoinHandle<void>>> signals =
      rt->try_block_on([shutdown]() -> Task<absl::StatusOr<JoinHandle<void>>> {
        co_return install_shutdown_signals(shutdown);
      }());
  if (!signals.ok() || !signals->ok()) {
    const absl::Status why = signals.ok() ? signals->status() : signals.status();
    std::fprintf(stderr, "%s: no graceful shutdown on SIGINT/SIGTERM: %s\n", program,
                 why.ToString().c_str());
  }
  const Runtime& runtime = *rt;
  absl::StatusOr<absl::StatusOr<JoinHandle<void>>> dumps =
      rt->try_block_on([&runtime]() -> Task<absl::StatusOr<JoinHandle<void>>> {
        co_return install_task_dump_on_sigquit(runtime);
      }());
  if (!dumps.ok() || !dumps->ok()) {
    const absl::Status why = dumps.ok() ? dumps->status() : dumps.status();
    std::fprintf(stderr, "%s: no task dump on SIGQUIT: %s\n", program, why.ToString().c_str());
  }
  // Which backend and why (kAuto falls back to epoll where io_uring is
  // refused); the "listening" lines stay last and exact for scripts.
  std::printf("backend: %s (%s)\n", rt->backend().name(), rt->backend().reason.c_str());
  absl::StatusOr<std::vector<net::TcpListener>> listeners = bind_listeners(*flags, *addr, threads);
  if (!listeners.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, listeners.status().ToString().c_str());
    return 1;
  }
  ServeOptions options;
  options.header_timeout = flags->header_timeout;
  options.idle_timeout = flags->idle_timeout;
  options.write_timeout = flags->write_timeout;
  options.grace = flags->grace;
  // GET /metrics on http_hello; `rt` outlives every server (joined below).
  options.metrics_text = [runtime = &*rt] { return runtime->metrics().to_prometheus(); };
  auto stats = std::make_shared<ServeStats>();
  const Instant started = Instant::now();
  // Server i accepts on worker (core) i for its whole life; its connection
  // tasks start there (multi_thread may steal them before their first I/O).
  std::vector<JoinHandle<void>> servers;
  for (size_t i = 0; i < threads; ++i) {
    servers.push_back(rt->spawn_on(i, [=, l = std::move((*listeners)[i])]() mutable {
      return serve_connections(std::move(l), handler, options, shutdown, stats);
    }));
  }
  std::optional<Instant> shutdown_began;
  absl::StatusOr<Unit> served = rt->try_block_on([&]() -> Task<void> {
    // Notes when the shutdown began, for the summary; ends with the servers.
    JoinHandle<void> watch = pollux::spawn([&shutdown_began, shutdown]() -> Task<void> {
      co_await shutdown.graceful().cancelled();
      shutdown_began = Instant::now();
    });
    for (JoinHandle<void>& h : servers) (void)co_await h;
    watch.abort();
    (void)co_await std::move(watch);
    for (auto* watcher : {&signals, &dumps}) {
      if (watcher->ok() && (*watcher)->ok()) {
        (**watcher)->abort();
        (void)co_await std::move(***watcher);
      }
    }
  }());
  if (!served.ok()) {
    std::fprintf(stderr, "%s: the runtime stopped: %s\n", program,
                 served.status().ToString().c_str());
    return 1;
  }
  if (!shutdown.begun()) return 1;  // a listener broke; its server said why on stderr
  const Instant ended = Instant::now();
  const Instant began = shutdown_began.value_or(ended);
  // The servers have been joined: every count is in (ServeStats).
  std::printf("summary: %llu connections, %llu requests, %llu bytes in, %llu bytes out, up %.3f s, "
              "shutdown %.3f s\n",
              static_cast<unsigned long long>(stats->counts.total(ServeStats::kConnections)),
              static_cast<unsigned long long>(stats->counts.total(ServeStats::kRequests)),
              static_cast<unsigned long long>(stats->counts.total(ServeStats::kBytesIn)),
              static_cast<unsigned long long>(stats->counts.total(ServeStats::kBytesOut)),
              absl::ToDoubleSeconds(ended - started), absl::ToDoubleSeconds(ended - began));
  std::fflush(stdout);
  return 0;
}

absl::StatusOr<JoinHandle<void>> install_shutdown_signals(ShutdownTrigger shutdown) {
  absl::StatusOr<signal::Signal> sigint = signal::subscribe(SIGINT);
  if (!sigint.ok()) return sigint.status();
  absl::StatusOr<signal::Signal> sigterm = signal::subscribe(SIGTERM);
  if (!sigterm.ok()) return sigterm.status();
  return pollux::spawn([sigint = std::move(*sigint), sigterm = std::move(*sigterm),
                        shutdown]() mutable -> Task<void> {
    for (int delivery = 0; delivery < 2; ++delivery) {
      auto r = co_await pollux::select(sigint.recv(), sigterm.recv());
      const absl::Status s = r.index == 0 ? std::get<0>(r.value) : std::get<1>(r.value);
      if (!s.ok()) co_return;  // the runtime is going away
      const char* name = r.index == 0 ? "SIGINT" : "SIGTERM";
      if (delivery == 0) {
        std::fprintf(stderr, "%s: graceful shutdown (a second signal stops at once)\n", name);
        shutdown.begin();
      } else {
        std::fprintf(stderr, "%s: stopping now\n", name);
        shutdown.now();
      }
    }
    // Dropping the Signals here gives SIGINT/SIGTERM their default action
    // back: a third one ends the process at once.
  });
}

absl::StatusOr<JoinHandle<void>> install_task_dump_on_sigquit(const Runtime& rt) {
  absl::StatusOr<signal::Signal> sigquit = signal::subscribe(SIGQUIT);
  if (!sigquit.ok()) return sigquit.status();
  return pollux::spawn([sigquit = std::move(*sigquit), &rt]() mutable -> Task<void> {
    for (;;) {
      const absl::Status s = co_await sigquit.recv();
      if (!s.ok()) co_return;  // the runtime is going away
      const TaskDump dump = rt.dump_tasks();
      std::fprintf(stderr, "SIGQUIT: %s", dump.to_string().c_str());
    }
  });
}

}  // namespace pollux::examples
