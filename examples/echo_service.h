// The echo server, and the pieces every example server shares: the accept
// loop that runs one task per connection (serve_connections), the limits
// and shutdown trigger it hands each connection, and the main() body of the
// server binaries (run_server).
//
//   absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(addr);
//   rt->block_on(pollux::examples::serve_echo(std::move(*l)));   // runs until dropped
//
//   ShutdownTrigger shutdown;                       // or: graceful stop
//   auto stats = std::make_shared<ServeStats>();
//   JoinHandle<void> server = spawn(serve_connections(std::move(*l), echo_connection,
//                                                     ServeOptions{}, shutdown, stats));
//   shutdown.begin();   // stop accepting; connections get ServeOptions::grace
//   co_await server;    // every connection has finished (or was aborted)
//
// Stopping, two ways:
// - Graceful (ShutdownTrigger::begin, what SIGINT/SIGTERM do in run_server):
//   the listener closes at once (new connections are refused), each
//   connection sees its ConnectionEnv::stop token cancelled and finishes on
//   its own terms (HTTP: answers the request in flight with
//   `Connection: close`, an idle one closes; echo: goes on until the peer
//   closes), and whatever is still open after ServeOptions::grace is
//   aborted. serve_connections then returns. ShutdownTrigger::now (a second
//   signal) skips the rest of the grace period.
// - Dropping the serve task: its multishot accept (TcpListener::incoming) is
//   cancelled, the listener closes, and every connection task it spawned is
//   aborted (the JoinSet holding them is dropped; each socket closes when
//   the executor drops its task, at its next scheduling point or at runtime
//   shutdown). So `select(stop_signal, serve_echo(l))`,
//   `timeout(serve_echo(l), d)`, `JoinHandle::abort()` on a spawned server,
//   and destroying the runtime all close everything the server opened.
//
// Limits per connection (ServeOptions): a request head that does not arrive
// within header_timeout, an idle connection after idle_timeout, a write
// that does not finish within write_timeout: each closes that connection.
// Zero disables a limit.
//
// Errors on one connection (reset, broken pipe) end that connection's task
// only. Accept errors that mean "out of fds/memory" back off 10 ms and
// retry, so a full fd table slows the server down instead of spinning or
// stopping it.
//
// Thread-safety: a serve_* task accepts on the thread that polls it; the
// connection tasks it spawns (pollux::spawn) start on that worker and, on a
// multi_thread runtime, may be stolen before their first I/O pins them.
// ShutdownTrigger and ServeStats may be used from any thread.
#ifndef POLLUX_EXAMPLES_ECHO_SERVICE_H_
#define POLLUX_EXAMPLES_ECHO_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "examples/event_counts.h"
#include "executor/join_handle.h"
#include "future/task.h"
#include "net/tcp.h"
#include "runtime/runtime.h"
#include "sync/cancellation_token.h"
#include "timer/instant.h"
#include "timer/timer_queue.h"

namespace pollux::examples {

/// Limits a server applies to every connection, and its shutdown grace
/// period. absl::ZeroDuration() disables a timeout.
struct ServeOptions {
  // A request head must be complete this long after the connection opened
  // or after its first byte arrived (slowloris); echo has no heads.
  absl::Duration header_timeout = absl::Seconds(10);
  // A keep-alive connection with nothing buffered is closed after this
  // long. 75 s: longer than the 60 s idle timeout common in load balancers
  // (AWS ALB's default), so a proxy in front closes an idle connection first
  // and never sends a request into one we are closing at that moment;
  // nginx's default keepalive_timeout is 75 s too.
  absl::Duration idle_timeout = absl::Seconds(75);
  // One batch of output (at most kMaxOutputBytes plus one response for
  // HTTP, one read's worth for echo) must be sent within this long: a
  // client that stops reading cannot pin the connection forever.
  absl::Duration write_timeout = absl::Seconds(30);
  // After a graceful shutdown begins, connections still open this much
  // later are aborted.
  absl::Duration grace = absl::Seconds(5);
  // HTTP only: the body of `GET /metrics` (http_wire.h's
  // AnswerOptions::metrics_text); run_server serves Runtime::metrics().
  std::function<std::string()> metrics_text;
};

/// One of ServeOptions' limits, converted once (a connection makes one per
/// limit): deadline() is the limit counted from this tick's time on the
/// timer clock, with no clock read (timer::tick_now()) and no call into
/// absl per message (which Instant + absl::Duration makes); Instant::max()
/// when the limit is zero or less (disabled) or beyond the clock's range.
class Limit {
 public:
  explicit Limit(absl::Duration d) noexcept
      : nanos_(d <= absl::ZeroDuration() ? -1 : absl::ToInt64Nanoseconds(d)) {}
  Instant deadline() const noexcept {
    int64_t at = 0;
    if (nanos_ < 0 || __builtin_add_overflow(timer::tick_now().nanos(), nanos_, &at)) {
      return Instant::max();
    }
    return Instant::from_nanos(at);
  }

 private:
  int64_t nanos_;  // -1: disabled
};

/// Output bytes a connection buffers before it stops reading (backpressure:
/// it sends them first, so memory per connection stays bounded).
inline constexpr size_t kMaxOutputBytes = 64 * 1024;

/// Counters one server (or several sharing it) adds to; read at any time,
/// exact once the servers have been joined (the join orders the last adds
/// before the read). Sharded per thread (examples/event_counts.h): a
/// connection counts each message with no locked instruction.
///
///   stats->counts.add(ServeStats::kBytesIn, n);
///   uint64_t in = stats->counts.total(ServeStats::kBytesIn);
struct ServeStats {
  enum Counter : size_t {
    kConnections,  // accepted
    kRequests,     // HTTP requests answered / echo reads echoed
    kBytesIn,
    kBytesOut,
    kCounters,
  };
  EventCounts<kCounters> counts;
};

/// How a server is told to stop. begin(): graceful (see the header
/// comment); now(): at once (skips the grace period; implies begin()).
/// Copies share the same tokens.
class ShutdownTrigger {
 public:
  ShutdownTrigger() : graceful_(immediate_.child_token()) {}
  void begin() const noexcept { graceful_.cancel(); }
  void now() const noexcept { immediate_.cancel(); }
  bool begun() const noexcept { return graceful_.is_cancelled(); }
  // Cancelled by begin() or now().
  const sync::CancellationToken& graceful() const noexcept { return graceful_; }
  // Cancelled by now() only.
  const sync::CancellationToken& immediate() const noexcept { return immediate_; }

 private:
  sync::CancellationToken immediate_;
  sync::CancellationToken graceful_;
};

/// What serve_connections gives each connection handler.
struct ConnectionEnv {
  ServeOptions options;
  sync::CancellationToken stop;  // a child of the server's graceful token
  std::shared_ptr<ServeStats> stats;
};

// Serves one accepted connection until the peer, an error, a limit or a
// shutdown ends it.
using ConnectionHandler = Task<void> (*)(net::TcpStream stream, ConnectionEnv env);

// Accepts on `listener` until `shutdown` begins, running handler(stream,
// env) as one task per connection (kept in a sync::JoinSet), then closes
// the listener, waits up to options.grace (less if shutdown.now()) for the
// connections, aborts the rest and returns. Needs a runtime with I/O and
// time. Dropping the returned task stops the server at once and aborts
// every connection task (see the header comment).
[[nodiscard]] Task<void> serve_connections(net::TcpListener listener, ConnectionHandler handler,
                                           ServeOptions options, ShutdownTrigger shutdown,
                                           std::shared_ptr<ServeStats> stats);
// With default options, a trigger nobody pulls and stats nobody reads: runs
// until dropped.
[[nodiscard]] Task<void> serve_connections(net::TcpListener listener, ConnectionHandler handler);

// Bytes an echo connection reads at a time (its one buffer, reused).
inline constexpr size_t kEchoBufferBytes = 16 * 1024;

// Echoes back exactly the bytes read, in order, until end of stream, an
// error, the idle timeout (nothing read for idle_timeout) or the write
// timeout. A graceful shutdown does not interrupt it: the exchange goes on
// until the peer closes or the grace period ends. Steady state allocates
// nothing: the one buffer travels through every read and write and comes
// back each time.
[[nodiscard]] Task<void> echo_connection(net::TcpStream stream, ConnectionEnv env);

// serve_connections(listener, echo_connection).
[[nodiscard]] Task<void> serve_echo(net::TcpListener listener);
// serve_connections(listener, echo_connection, options, shutdown, stats).
[[nodiscard]] Task<void> serve_echo(net::TcpListener listener, ServeOptions options,
                                    ShutdownTrigger shutdown, std::shared_ptr<ServeStats> stats);

// Raises the soft RLIMIT_NOFILE to the hard limit (DESIGN.md section 6: every
// socket-heavy program does) and returns the soft limit now in force.
unsigned long long raise_open_file_limit();

// The main() of the example servers: parses the flags of server_flags.h (a
// bad value prints why to stderr and returns 2), builds the runtime they
// ask for, checks a NOP through every thread's backend, binds one listener
// per runtime thread (port 0 picks a free one; several share the port with
// SO_REUSEPORT, or --port_per_thread gives each its own), prints
// "backend: NAME (REASON)" (Runtime::backend()) and then exactly
// "listening on ADDR:PORT" to stdout per distinct port and flushes it
// (scripts parse that line), then serves with serve_connections(handler),
// listener i on worker (core) i. SIGINT or SIGTERM begins a graceful
// shutdown (--grace), a second one stops at once (install_shutdown_signals;
// the exit code is 0 either way); then it prints one line
//   "summary: N connections, M requests, I bytes in, O bytes out, up S s, shutdown T s"
// and returns 0. Other exit codes: 2 for bad flag values, 1 when the
// runtime or a bind fails or a listener breaks.
int run_server(int argc, char** argv, int default_port, ConnectionHandler handler);

// Makes SIGINT and SIGTERM (runtime/signal.h) pull `shutdown`: the first
// delivery begin()s it, the second calls now(); after that both have their
// default action again. Deliveries closer together than the watching task
// runs coalesce into one. Call it in a task (or block_on) of a runtime with
// I/O. Output: the watching task (abort it to unsubscribe), or subscribe()'s
// error.
absl::StatusOr<JoinHandle<void>> install_shutdown_signals(ShutdownTrigger shutdown);

// Makes SIGQUIT print `rt`'s task dump (Runtime::dump_tasks) to stderr, each
// time, instead of its default action (a core dump). Call it in a task of
// `rt`, which must outlive the returned watching task (abort it to
// unsubscribe), or subscribe()'s error.
absl::StatusOr<JoinHandle<void>> install_task_dump_on_sigquit(const Runtime& rt);

}  // namespace pollux::examples

#endif  // POLLUX_EXAMPLES_ECHO_SERVICE_H_
