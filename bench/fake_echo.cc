#include "bench/fake_echo.h"

#include <utility>
#include <vector>

#include "bench/fake_tasks.h"
#include "future/assert.h"
#include "future/task.h"
#include "reactor/ops.h"

namespace pollux::bench {

namespace {

constexpr size_t kBufferSize = 4096;  // as examples/echo_service's

struct Tally {
  int64_t messages = 0;
  int64_t bytes = 0;
};

// One connection, as examples/echo_service serves it: recv, then send it all
// back (looping on a short send), until `messages` have been echoed.
Task<void> echo_connection(int fd, int64_t messages, Tally* tally) {
  std::vector<char> buf(kBufferSize);
  for (int64_t i = 0; i < messages; ++i) {
    reactor::IoResult got = co_await reactor::recv(fd, std::move(buf));
    buf = std::move(got.buf);
    POLLUX_CHECK(got.n.ok() && *got.n > 0, "fake recv failed");
    const size_t n = *got.n;
    size_t sent = 0;
    while (sent < n) {
      reactor::IoResult put = co_await reactor::send(fd, std::move(buf), 0, sent, n);
      buf = std::move(put.buf);
      POLLUX_CHECK(put.n.ok(), "fake send failed");
      sent += *put.n;
    }
    ++tally->messages;
    tally->bytes += static_cast<int64_t>(n);
  }
}

}  // namespace

EchoRun pollux_echo(int connections, int64_t messages_per_connection, size_t message_size) {
  FakeSockets sockets(connections);
  for (int fd = 0; fd < connections; ++fd) sockets.peer_sends(fd, message_size);
  FakeBackend backend(sockets);
  Tally tally;
  run_fake_connections(backend, backend, connections, [&](int fd) {
    return echo_connection(fd, messages_per_connection, &tally);
  });
  return EchoRun{tally.messages, tally.bytes, backend.stats().kernel_entries,
                 backend.live_ops()};
}

EchoRun hand_written_echo(int connections, int64_t messages_per_connection,
                          size_t message_size) {
  FakeSockets sockets(connections);
  for (int fd = 0; fd < connections; ++fd) sockets.peer_sends(fd, message_size);
  // Per connection: its buffer, what its one op in flight is, and progress.
  struct Connection {
    std::vector<char> buf = std::vector<char>(kBufferSize);
    bool sending = false;
    size_t got = 0;
    size_t sent = 0;
    int64_t echoed = 0;
  };
  std::vector<Connection> conns(static_cast<size_t>(connections));
  FakeSubmissions ring(conns.size());
  for (int fd = 0; fd < connections; ++fd) ring.submit(fd);

  EchoRun run;
  int64_t remaining = static_cast<int64_t>(connections) * messages_per_connection;
  while (remaining > 0) {
    // The kernel entry: every submitted op that can complete does.
    ++run.kernel_entries;
    const auto& completed = ring.enter([&](int fd) {
      Connection& c = conns[static_cast<size_t>(fd)];
      return c.sending ? sockets.send(fd, c.buf.data() + c.sent, c.got - c.sent)
                       : sockets.recv(fd, c.buf.data(), c.buf.size());
    });
    // Reaping: each completion decides its connection's next op.
    for (const FakeSubmissions::Completion& done : completed) {
      Connection& c = conns[static_cast<size_t>(done.fd)];
      POLLUX_CHECK(done.res > 0, "fake op failed");
      if (!c.sending) {
        c.got = static_cast<size_t>(done.res);
        c.sent = 0;
        c.sending = true;
        ring.submit(done.fd);
        continue;
      }
      c.sent += static_cast<size_t>(done.res);
      if (c.sent < c.got) {
        ring.submit(done.fd);
        continue;
      }
      ++run.messages;
      run.bytes += static_cast<int64_t>(c.got);
      --remaining;
      c.sending = false;
      if (++c.echoed < messages_per_connection) ring.submit(done.fd);
    }
  }
  return run;
}

}  // namespace pollux::bench
