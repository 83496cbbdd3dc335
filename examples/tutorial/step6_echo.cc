// Tutorial step 6 (docs/tutorial.md): a TCP echo server and its client.
//
// The server accepts on 127.0.0.1, port 0 (the kernel picks a free one), and
// spawns one echo task per connection; the client connects, writes a
// message and reads it back. Both run on one current_thread runtime. Every
// loop is bounded. Prints exactly step6_echo.out.
//
//   ./bazelw run //examples/tutorial:step6_echo
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "executor/join_handle.h"
#include "executor/spawn.h"
#include "future/task.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"

namespace {

using pollux::JoinHandle;
using pollux::Task;
namespace net = pollux::net;

// Echoes one connection until the client closes its side; returns the
// number of bytes echoed.
Task<size_t> echo(net::TcpStream stream) {
  // A read takes the buffer by value and hands it back in its result: the
  // kernel may write into it until the read completes.
  std::vector<char> buf(4096);
  size_t echoed = 0;
  for (int round = 0; round < 1000; ++round) {
    pollux::reactor::IoResult r = co_await stream.read(std::move(buf));
    buf = std::move(r.buf);
    if (!r.n.ok() || *r.n == 0) break;  // an error, or 0: end of stream
    // Write back just the n bytes read (a write may be short; write_all loops).
    net::WriteAllResult w = co_await stream.write_all(std::move(buf), *r.n);
    buf = std::move(w.buf);
    if (!w.status.ok()) break;
    echoed += *r.n;
  }
  co_return echoed;
}

// Accepts `clients` connections, an echo task each; returns the bytes echoed.
Task<size_t> serve(net::TcpListener listener, int clients) {
  // One multishot accept for the whole loop (listener.accept() also works).
  net::Incoming incoming = listener.incoming();
  std::vector<JoinHandle<size_t>> connections;
  for (int attempt = 0; attempt < 100 && static_cast<int>(connections.size()) < clients;
       ++attempt) {
    absl::StatusOr<net::TcpStream> stream = co_await incoming.next();
    if (!stream.ok()) continue;  // that one connection failed, not the listener
    // A coroutine's parameters are copied into its frame: spawning the
    // Task that echo(...) returns is safe (unlike a capturing lambda called
    // on the spot, step 4).
    connections.push_back(pollux::spawn(echo(std::move(*stream))));
  }
  size_t total = 0;
  for (JoinHandle<size_t>& c : connections) {
    pollux::JoinResult<size_t> r = co_await std::move(c);
    if (r.ok()) total += r.value();
  }
  co_return total;
}

// Connects, sends `message`, reads the same number of bytes back.
Task<void> client(net::SocketAddr server, std::string message) {
  absl::StatusOr<net::TcpStream> stream = co_await net::TcpStream::connect(server);
  if (!stream.ok()) {
    std::printf("connect failed: %s\n", stream.status().ToString().c_str());
    co_return;
  }
  net::WriteAllResult w =
      co_await stream->write_all(std::vector<char>(message.begin(), message.end()));
  if (!w.status.ok()) co_return;
  // The echo may come back in pieces: read_exact loops until it has them all.
  absl::StatusOr<std::vector<char>> back = co_await stream->read_exact(message.size());
  if (!back.ok()) co_return;
  std::printf("client: sent \"%s\", got back \"%s\"\n", message.c_str(),
              std::string(back->begin(), back->end()).c_str());
  // Dropping the stream closes it: the server's read sees end of stream.
}

Task<int> run() {
  absl::StatusOr<net::TcpListener> listener =
      net::TcpListener::bind(*net::SocketAddr::parse("127.0.0.1:0"));
  if (!listener.ok()) {
    std::printf("bind failed: %s\n", listener.status().ToString().c_str());
    co_return 1;
  }
  net::SocketAddr addr = listener->local_addr();  // with the port the kernel picked
  std::printf("server: listening on 127.0.0.1 (port picked by the kernel)\n");
  JoinHandle<size_t> server = pollux::spawn(serve(std::move(*listener), 2));

  co_await client(addr, "hello");
  co_await client(addr, "echo, echo");

  pollux::JoinResult<size_t> echoed = co_await std::move(server);
  std::printf("server: echoed %zu bytes over 2 connections\n", echoed.ok() ? echoed.value() : 0);
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
