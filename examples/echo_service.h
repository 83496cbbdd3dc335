// The echo server, and the pieces every example server shares: the accept
// loop that runs one task per connection (serve_connections) and the main()
// body of the server binaries (run_server).
//
//   absl::StatusOr<net::TcpListener> l = net::TcpListener::bind(addr);
//   rt->block_on(pollux::examples::serve_echo(std::move(*l)));   // runs until dropped
//
// Stopping: a serve_* task never finishes on its own (only when its listener
// fails for good, e.g. it was moved from). Stop it by dropping it: its
// multishot accept (TcpListener::incoming) is cancelled, the listener closes, and every connection
// task it spawned is aborted (its socket closes when the executor drops the
// task, at its next scheduling point or at runtime shutdown). So
// `select(stop_signal, serve_echo(l))`, `timeout(serve_echo(l), d)`,
// `JoinHandle::abort()` on a spawned server, and destroying the runtime all
// close everything the server opened.
//
// Errors on one connection (reset, broken pipe) end that connection's task
// only. Accept errors that mean "out of fds/memory" back off 10 ms and
// retry, so a full fd table slows the server down instead of spinning or
// stopping it.
//
// Thread-safety: a serve_* task accepts on the thread that polls it; the
// connection tasks it spawns (pollux::spawn) start on that worker and, on a
// multi_thread runtime, may be stolen before their first I/O pins them.
#ifndef POLLUX_EXAMPLES_ECHO_SERVICE_H_
#define POLLUX_EXAMPLES_ECHO_SERVICE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "future/task.h"
#include "net/tcp.h"

namespace pollux::examples {

// Serves one accepted connection until the peer or an error ends it.
using ConnectionHandler = Task<void> (*)(net::TcpStream stream);

// Accepts on `listener` forever, running handler(stream) as one spawned task
// per connection. Needs a runtime with I/O and time. Dropping the returned
// task stops the server and aborts every connection task (see the header
// comment).
[[nodiscard]] Task<void> serve_connections(net::TcpListener listener, ConnectionHandler handler);

// Bytes an echo connection reads at a time (its one buffer, reused).
inline constexpr size_t kEchoBufferBytes = 16 * 1024;

// Echoes back exactly the bytes read, in order, until end of stream or an
// error. Steady state allocates nothing: the one buffer travels through
// every read and write and comes back each time.
[[nodiscard]] Task<void> echo_connection(net::TcpStream stream);

// serve_connections(listener, echo_connection).
[[nodiscard]] Task<void> serve_echo(net::TcpListener listener);

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
// (scripts parse that line), then serves with `serve`, listener i on
// worker (core) i, until the process is killed. Returns the exit code: 2
// for bad flag values, 1 when the runtime or a bind fails.
int run_server(int argc, char** argv, int default_port, Task<void> (*serve)(net::TcpListener));

}  // namespace pollux::examples

#endif  // POLLUX_EXAMPLES_ECHO_SERVICE_H_
