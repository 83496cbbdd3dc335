// Tutorial step 8 (docs/tutorial.md): channels and graceful shutdown.
//
// The echo server of step 6, grown up: each connection also sends every
// message to a logger task over a sync::mpsc channel; connections live in a
// sync::JoinSet; a sync::CancellationToken asks everything to stop. Signals
// do not exist yet, so the client plays the operator: after kMessages
// messages it cancels the token. Then the server stops accepting, each
// connection notices the token and returns, the server joins them all and
// drops its channel sender, and the logger, its stream ended, returns what
// it logged. Every loop is bounded. Prints exactly step8_shutdown.out.
//
//   ./bazelw run //examples/tutorial:step8_shutdown
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "future/select.h"
#include "future/task.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"
#include "sync/cancellation_token.h"
#include "sync/join_set.h"
#include "sync/mpsc.h"

namespace {

using pollux::JoinHandle;
using pollux::Task;
namespace net = pollux::net;
namespace sync = pollux::sync;

constexpr int kMessages = 3;

// Collects every message until all senders are gone.
Task<std::vector<std::string>> logger(sync::mpsc::Receiver<std::string> rx) {
  std::vector<std::string> lines;
  for (int i = 0; i < 1000; ++i) {
    std::optional<std::string> line = co_await rx.recv();
    if (!line) break;  // every Sender dropped: end of stream
    lines.push_back(std::move(*line));
  }
  co_return lines;
}

// Echoes and logs each message until the client closes or `stop` is
// cancelled; returns how many messages it handled.
Task<int> connection(net::TcpStream stream, sync::CancellationToken stop,
                     sync::mpsc::Sender<std::string> log) {
  int handled = 0;
  std::vector<char> buf(1024);
  for (int round = 0; round < 1000; ++round) {
    // The token first: select is biased, so shutdown wins even when data is
    // ready too. A dropped read may lose data (step 7), which is fine here:
    // we are done with this stream.
    auto r = co_await pollux::select(stop.cancelled(), stream.read(std::move(buf)));
    if (r.index == 0) break;
    pollux::reactor::IoResult io = std::get<1>(std::move(r.value));
    buf = std::move(io.buf);
    if (!io.n.ok() || *io.n == 0) break;
    // The client waits for each echo before sending more, so one read is
    // one message here; a real protocol would frame its messages.
    std::string message(buf.data(), *io.n);
    // A bounded channel: send waits for room, which slows a fast producer
    // to the logger's pace. A value handed back means the logger is gone.
    if (std::optional<std::string> unsent = co_await log.send(message)) break;
    net::WriteAllResult w = co_await stream.write_all(std::move(buf), *io.n);
    buf = std::move(w.buf);
    if (!w.status.ok()) break;
    ++handled;
  }
  co_return handled;
}

Task<void> serve(net::TcpListener listener, sync::CancellationToken stop,
                 sync::mpsc::Sender<std::string> log) {
  net::Incoming incoming = listener.incoming();
  // Dropping a JoinSet aborts its tasks: no connection outlives its server.
  sync::JoinSet<int> connections;
  for (int i = 0; i < 64; ++i) {
    auto r = co_await pollux::select(stop.cancelled(), incoming.next());
    if (r.index == 0) break;  // shutdown: stop accepting
    absl::StatusOr<net::TcpStream> stream = std::get<1>(std::move(r.value));
    if (!stream.ok()) continue;
    // A child token: cancelled with `stop`, but could be cancelled alone.
    connections.spawn(connection(std::move(*stream), stop.child_token(), log));
  }
  std::printf("server: shutdown requested, waiting for %zu connection(s)\n", connections.size());
  while (std::optional<pollux::JoinResult<int>> done = co_await connections.join_next()) {
    if (done->ok()) std::printf("server: a connection finished after %d message(s)\n", done->value());
  }
  std::printf("server: all connections closed\n");
  // Drop our Sender explicitly, right here: the last Sender gone (the
  // connections' copies went with them) is what ends the logger's stream.
  { sync::mpsc::Sender<std::string> gone = std::move(log); }
}

Task<int> run() {
  absl::StatusOr<net::TcpListener> listener =
      net::TcpListener::bind(*net::SocketAddr::parse("127.0.0.1:0"));
  if (!listener.ok()) co_return 1;
  net::SocketAddr addr = listener->local_addr();
  sync::CancellationToken stop;
  auto [tx, rx] = sync::mpsc::channel<std::string>(16);
  JoinHandle<std::vector<std::string>> log = pollux::spawn(logger(std::move(rx)));
  // The server gets the only Sender; each connection gets a copy of it.
  JoinHandle<void> server = pollux::spawn(serve(std::move(*listener), stop, std::move(tx)));

  absl::StatusOr<net::TcpStream> client = co_await net::TcpStream::connect(addr);
  if (!client.ok()) co_return 1;
  for (int i = 1; i <= kMessages; ++i) {
    std::string message = absl::StrCat("message ", i);
    net::WriteAllResult w =
        co_await client->write_all(std::vector<char>(message.begin(), message.end()));
    absl::StatusOr<std::vector<char>> echo = co_await client->read_exact(message.size());
    if (!w.status.ok() || !echo.ok()) co_return 1;
    std::printf("client: \"%s\" echoed\n", std::string(echo->begin(), echo->end()).c_str());
  }
  // The client keeps its connection open: the server must stop it.
  std::printf("client: %d messages sent, cancelling the token\n", kMessages);
  stop.cancel();

  pollux::JoinResult<pollux::Unit> served = co_await std::move(server);
  pollux::reactor::IoResult eof = co_await client->read(std::vector<char>(16));
  std::printf("client: the server closed the connection (read returned %zu bytes)\n",
              eof.n.ok() ? *eof.n : 0);

  pollux::JoinResult<std::vector<std::string>> lines = co_await std::move(log);
  if (!served.ok() || !lines.ok()) co_return 1;
  std::printf("logger: %zu message(s) logged\n", lines.value().size());
  for (const std::string& line : lines.value()) std::printf("  %s\n", line.c_str());
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
