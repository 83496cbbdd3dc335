// The two HTTP "hello" loops bench/fake_http_bench.cc compares over
// FakeSockets (bench/fake_sockets.h), the HTTP counterpart of
// bench/fake_echo.h (issue 17, "for echo and for HTTP"): pollux's (a task
// per connection awaiting recv and send futures on a LocalExecutor over
// FakeBackend, with http_hello's per-request loop) and the same work written
// by hand (a submission list, one "kernel entry" per turn, a switch per
// connection, raw_http_server's per-recv logic). Both parse with the same
// answer_requests() (examples/http_wire.h) and send the same bytes, so their
// difference is what the runtime costs per request.
//
// The clients are HttpPeers, one per socket, driving bench/loadgen's
// --mode=http load at depth 1: kHelloRequest, then the next one once the
// whole response has come back, every response byte compared with the one
// expected (kHelloResponse). FakeSockets' peers echo; HttpPeers sit on top
// of that without changing it (see the class comment).
//
// Run: ./bazelw test //bench:fake_http_test, ./bazelw run -c opt
// //bench:fake_http_bench (ns per request); instructions per request with
// callgrind, see bench/fake_http_bench.cc.
//
// Thread-safety: none; one thread, as FakeSockets.
#ifndef POLLUX_BENCH_FAKE_HTTP_H_
#define POLLUX_BENCH_FAKE_HTTP_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "bench/fake_sockets.h"
#include "examples/http_wire.h"

namespace pollux::bench {

// HTTP clients on FakeSockets' fds 0 .. connections-1, each sending
// `requests_per_connection` kHelloRequests one at a time and checking each
// response against `expected_response` byte for byte.
//
// How they sit on FakeSockets unchanged: a socket there has one buffer,
// what the server will receive next, and a server's send lands in it (the
// echo). So a peer, at its turn, takes the server's response out of that
// buffer with recv() (verifying it) and puts its next request in with
// send(). Its turn comes before every kernel entry (FakeBackend's enter, or
// the hand-written loop's), so a response is taken before the server's next
// recv could see it: a server sends only after its recv of the request
// completed, at an earlier entry.
class HttpPeers {
 public:
  // Every peer sends its first request at once.
  HttpPeers(FakeSockets& sockets, int connections, int64_t requests_per_connection,
            std::string_view expected_response);

  // The peers' turn. True when a peer took response bytes or sent a request:
  // false with nothing completing in the backend either means the run is
  // stuck (the server waits for bytes no peer will send).
  [[nodiscard]] bool step();

  // Every peer has had all its responses.
  [[nodiscard]] bool done() const noexcept { return finished_ == peers_.size(); }
  // Responses received whole.
  [[nodiscard]] int64_t responses() const noexcept { return responses_; }
  // Responses that differed from the expected bytes or came with bytes no
  // request asked for.
  [[nodiscard]] int64_t mismatches() const noexcept { return mismatches_; }

 private:
  enum class State : uint8_t {
    kRequestQueued,     // the server has not taken all of the request yet
    kAwaitingResponse,  // the request is taken: what comes is response
    kDone,
  };
  struct Peer {
    State state = State::kRequestQueued;
    size_t got = 0;      // bytes of the current response received
    bool wrong = false;  // the current response has differed somewhere
    int64_t sent = 0;    // requests sent
  };

  void send_request(int fd, Peer& p);
  void take(int fd, Peer& p, size_t n);

  FakeSockets& sockets_;
  const int64_t requests_per_connection_;
  const std::string_view expected_;
  std::vector<Peer> peers_;
  // One recv takes all a socket holds (never more than kPeerBuffer). Not
  // zeroed, as FakeSockets' buffers: zeroing it would be counted per run.
  std::unique_ptr<char[]> scratch_{new char[FakeSockets::kPeerBuffer]};
  size_t finished_ = 0;
  int64_t responses_ = 0;
  int64_t mismatches_ = 0;
};

struct HttpRun {
  int64_t requests = 0;    // responses the peers received whole
  int64_t mismatches = 0;  // of those, not byte for byte the expected one
  uint64_t kernel_entries = 0;
  size_t live_ops_after = 0;  // pollux only: the backend's slots still held
};

// `connections` HttpPeers, each getting `requests_per_connection` responses
// (kHelloResponse from a correct server) checked against `expected_response`
// (the benchmark passes kHelloResponse; a test passes a wrong one to see the
// mismatches counted).
[[nodiscard]] HttpRun pollux_http(int connections, int64_t requests_per_connection,
                                  std::string_view expected_response);
[[nodiscard]] HttpRun hand_written_http(int connections, int64_t requests_per_connection,
                                        std::string_view expected_response);

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_FAKE_HTTP_H_
