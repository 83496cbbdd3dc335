#include "bench/fake_http.h"

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "bench/fake_tasks.h"
#include "executor/driver.h"
#include "future/assert.h"
#include "future/task.h"
#include "reactor/ops.h"

namespace pollux::bench {

namespace http = examples::http;

// ---- HttpPeers ----

HttpPeers::HttpPeers(FakeSockets& sockets, int connections, int64_t requests_per_connection,
                     std::string_view expected_response)
    : sockets_(sockets),
      requests_per_connection_(requests_per_connection),
      expected_(expected_response),
      peers_(static_cast<size_t>(connections)) {
  for (int fd = 0; fd < connections; ++fd) {
    Peer& p = peers_[static_cast<size_t>(fd)];
    if (requests_per_connection_ > 0) {
      send_request(fd, p);
    } else {
      p.state = State::kDone;
      ++finished_;
    }
  }
}

void HttpPeers::send_request(int fd, Peer& p) {
  const int32_t put = sockets_.send(fd, http::kHelloRequest.data(), http::kHelloRequest.size());
  POLLUX_CHECK(put == static_cast<int32_t>(http::kHelloRequest.size()),
               "HttpPeers: the socket's buffer is full (the server does not read)");
  ++p.sent;
  p.state = State::kRequestQueued;
}

bool HttpPeers::step() {
  bool moved = false;
  for (size_t i = 0; i < peers_.size(); ++i) {
    Peer& p = peers_[i];
    const int fd = static_cast<int>(i);
    if (p.state == State::kRequestQueued) {
      // FakeSockets cannot say how much a socket holds; a recv of 0 bytes
      // tells whether it is empty (-EAGAIN) without taking anything. Until
      // it is, the bytes there are our own request, not a response.
      if (sockets_.recv(fd, scratch_.get(), 0) != -EAGAIN) continue;
      p.state = State::kAwaitingResponse;
    }
    if (p.state != State::kAwaitingResponse) continue;
    const int32_t n = sockets_.recv(fd, scratch_.get(), FakeSockets::kPeerBuffer);
    if (n == -EAGAIN) continue;
    moved = true;
    take(fd, p, static_cast<size_t>(n));
  }
  return moved;
}

void HttpPeers::take(int fd, Peer& p, size_t n) {
  const size_t want = expected_.size() - p.got;
  const size_t used = n < want ? n : want;
  // Bytes past the response are bytes no request asked for (at depth 1 the
  // server owes one response at a time): the response counts as wrong.
  if (n > want || std::memcmp(scratch_.get(), expected_.data() + p.got, used) != 0) {
    p.wrong = true;
  }
  p.got += used;
  if (p.got < expected_.size()) return;  // the rest comes with a later send
  ++responses_;
  if (p.wrong) ++mismatches_;
  p.got = 0;
  p.wrong = false;
  if (p.sent < requests_per_connection_) {
    send_request(fd, p);
  } else {
    p.state = State::kDone;
    ++finished_;
  }
}

namespace {

// As examples/http_service.cc's: one read buffer per connection, reused.
constexpr size_t kReadBytes = 16 * 1024;
// As examples/echo_service.h's kMaxOutputBytes (not included: that header
// brings net/ and the server machinery the fake has no use for).
constexpr size_t kMaxOutputBytes = 64 * 1024;

// One connection, as examples/http_service.cc's http_connection serves it:
// the same carry-over of a partial head, the same answer_requests() call
// and AnswerOptions, one write of everything answered per arrival. What
// differs, because the fake has no socket and no clock, and none of it is
// the runtime's per-request cost under test:
//   - a reactor::recv into one reused buffer per arrival, where
//     http_connection reads through a TcpRecvStream (one multishot recv on
//     io_uring): FakeBackend has no multishot recv, and a RecvStream on a
//     backend without one is this same recv op per next();
//   - reactor::send on the fd (as bench/fake_echo.cc does) instead of
//     net::TcpStream's write_all(): a TcpStream can only come from a real
//     accept or connect, and dropping it would close its fd number (the
//     fake's 0 .. n-1 are this process's stdin, ...). write_all() is this
//     same send loop as a hand-written future (WriteAllFuture) instead of a
//     loop in the coroutine;
//   - no timeouts (timeout_on, the header/idle/write Sleeps), no shutdown
//     race (select with by_ref(stopping)), no set_nodelay, no ServeStats
//     counters, no /metrics, no close_gracefully;
//   - it ends after answering `requests` requests, where http_connection
//     ends at the client's end of stream (the fake has none);
//   - a failed recv or send is a check failure (the fake has no errors)
//     where http_connection would end the connection.
Task<void> http_connection(int fd, int64_t requests) {
  std::vector<char> in(kReadBytes);
  std::string partial;  // received bytes not answered yet (the start of a head)
  std::vector<char> out;
  int64_t answered_so_far = 0;
  while (answered_so_far < requests) {
    reactor::IoResult r = co_await reactor::recv(fd, std::move(in));
    in = std::move(r.buf);
    POLLUX_CHECK(r.n.ok() && *r.n > 0, "fake recv failed");
    const bool carried_over = !partial.empty();
    if (carried_over) partial.append(in.data(), *r.n);
    std::string_view input =
        carried_over ? std::string_view(partial) : std::string_view(in.data(), *r.n);
    const size_t input_size = input.size();
    for (;;) {
      http::AnswerOptions answer_options;
      answer_options.max_output_bytes = kMaxOutputBytes;
      const http::Answered answered = http::answer_requests(input, out, answer_options);
      input.remove_prefix(answered.consumed);
      answered_so_far += static_cast<int64_t>(answered.responses);
      if (!out.empty()) {
        const size_t len = out.size();
        size_t sent = 0;
        while (sent < len) {
          reactor::IoResult put = co_await reactor::send(fd, std::move(out), 0, sent, len);
          out = std::move(put.buf);
          POLLUX_CHECK(put.n.ok() && *put.n > 0, "fake send failed");
          sent += *put.n;
        }
        out.clear();  // keeps the capacity for the next batch
      }
      if (answered.close) co_return;
      if (!answered.output_full) break;
    }
    if (carried_over) {
      partial.erase(0, input_size - input.size());
    } else {
      partial.assign(input.data(), input.size());
    }
  }
}

// The executor's Park: the peers' turn, then FakeBackend's kernel entry, so
// every entry is preceded by one (see HttpPeers). Only the executor parks
// through it; the op futures reach FakeBackend directly (RuntimeContext's
// backend), as in pollux_echo, so per op nothing is added, and per entry one
// virtual call.
class PeersThenBackend final : public Park {
 public:
  PeersThenBackend(HttpPeers& peers, FakeBackend& backend) : peers_(peers), backend_(backend) {}

  bool park(std::optional<absl::Duration> timeout) override {
    const bool peers_moved = peers_.step();
    const bool completed = backend_.park(timeout);
    // The executor parks only with no task to run: with neither side moving,
    // it would park again on the same state forever.
    POLLUX_CHECK(completed || peers_moved, "fake HTTP run stuck: no peer and no op can move");
    return true;
  }
  void poll_now() override {
    (void)peers_.step();  // a move shows up as a completion of this entry
    backend_.poll_now();
  }
  std::shared_ptr<Unparker> unparker() override { return backend_.unparker(); }

 private:
  HttpPeers& peers_;
  FakeBackend& backend_;
};

}  // namespace

HttpRun pollux_http(int connections, int64_t requests_per_connection,
                    std::string_view expected_response) {
  FakeSockets sockets(connections);
  HttpPeers peers(sockets, connections, requests_per_connection, expected_response);
  FakeBackend backend(sockets);
  {
    PeersThenBackend park(peers, backend);
    run_fake_connections(park, backend, connections, [&](int fd) {
      return http_connection(fd, requests_per_connection);
    });
  }
  // The last responses' sends completed at the last entry; the peers take
  // them now (the hand-written loop's last turn does the same).
  (void)peers.step();
  POLLUX_CHECK(peers.done(), "pollux_http: the server stopped before every response");
  return HttpRun{peers.responses(), peers.mismatches(), backend.stats().kernel_entries,
                 backend.live_ops()};
}

HttpRun hand_written_http(int connections, int64_t requests_per_connection,
                          std::string_view expected_response) {
  FakeSockets sockets(connections);
  HttpPeers peers(sockets, connections, requests_per_connection, expected_response);
  // Per connection, as bench/raw_server_common.h's Connection: recv fills
  // in[kept, size), in[0, kept) being a partial head carried over; out holds
  // the responses being sent.
  struct Connection {
    std::vector<char> in = std::vector<char>(kReadBytes);
    size_t kept = 0;
    std::vector<char> out;
    size_t sent = 0;
    bool sending = false;
    bool close_after_send = false;  // never for hello requests; as raw_http_server
    int64_t answered = 0;
  };
  std::vector<Connection> conns(static_cast<size_t>(connections));
  FakeSubmissions ring(conns.size());
  for (int fd = 0; fd < connections && requests_per_connection > 0; ++fd) ring.submit(fd);

  HttpRun run;
  for (;;) {
    // The peers' turn before each entry, as PeersThenBackend gives them.
    const bool peers_moved = peers.step();
    if (peers.done()) break;
    // The kernel entry: every submitted op that can complete does.
    ++run.kernel_entries;
    const auto& completed = ring.enter([&](int fd) {
      Connection& c = conns[static_cast<size_t>(fd)];
      return c.sending ? sockets.send(fd, c.out.data() + c.sent, c.out.size() - c.sent)
                       : sockets.recv(fd, c.in.data() + c.kept, c.in.size() - c.kept);
    });
    POLLUX_CHECK(!completed.empty() || peers_moved,
                 "fake HTTP run stuck: no peer and no op can move");
    // Reaping: each completion decides its connection's next op.
    for (const FakeSubmissions::Completion& done : completed) {
      Connection& c = conns[static_cast<size_t>(done.fd)];
      POLLUX_CHECK(done.res > 0, "fake op failed");
      if (!c.sending) {
        // raw_http_server's on_recv: answer every complete head, keep the rest.
        const std::string_view input(c.in.data(), c.kept + static_cast<size_t>(done.res));
        const http::Answered answered = http::answer_requests(input, c.out);
        c.kept = input.size() - answered.consumed;
        std::memmove(c.in.data(), input.data() + answered.consumed, c.kept);
        c.answered += static_cast<int64_t>(answered.responses);
        if (!c.out.empty()) {
          c.sent = 0;
          c.sending = true;
          c.close_after_send = answered.close;
          ring.submit(done.fd);
        } else if (!answered.close) {
          ring.submit(done.fd);  // an incomplete head: recv the rest
        }
        continue;
      }
      c.sent += static_cast<size_t>(done.res);
      if (c.sent < c.out.size()) {
        ring.submit(done.fd);  // short send: the rest, from where it stopped
        continue;
      }
      c.out.clear();
      c.sending = false;
      if (!c.close_after_send && c.answered < requests_per_connection) {
        ring.submit(done.fd);
      }
    }
  }
  run.requests = peers.responses();
  run.mismatches = peers.mismatches();
  return run;
}

}  // namespace pollux::bench
