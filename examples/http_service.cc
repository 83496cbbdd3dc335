#include "examples/http_service.h"

#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/echo_service.h"
#include "examples/http_wire.h"
#include "future/by_ref.h"
#include "future/select.h"
#include "reactor/recv_buf.h"
#include "timer/instant.h"
#include "timer/sleep.h"
#include "timer/timer_queue.h"
#include "timer/timeout.h"

namespace pollux::examples::http {
namespace {

// Bytes the client side (HttpClient) reads at a time (one buffer, reused).
constexpr size_t kReadBytes = 16 * 1024;
// After the last response of a closing connection, how long and how much of
// the client's input to drain before closing (see close_gracefully).
constexpr absl::Duration kLingerTime = absl::Seconds(1);
constexpr size_t kMaxLingerBytes = 256 * 1024;

// The Content-Length of a response head.
absl::StatusOr<size_t> content_length(absl::string_view head) {
  bool found = false;
  bool valid = true;
  size_t length = 0;
  const bool well_formed =
      for_each_header(head, [&](absl::string_view name, absl::string_view value) {
        if (!absl::EqualsIgnoreCase(name, "content-length")) return true;
        found = true;
        valid = absl::SimpleAtoi(value, &length);
        return false;
      });
  if (!well_formed || !found || !valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "response head without a valid Content-Length: \"", absl::CEscape(head), "\""));
  }
  return length;
}

// After the last response on a connection: send FIN, then read and discard
// what the client still sends (bounded in time and bytes) before the socket
// closes. Closing a socket with unread input makes the kernel send RST,
// which can make the client drop the response it has not read yet.
Task<void> close_gracefully(net::TcpStream& stream, net::TcpRecvStream& in) {
  if (!stream.shutdown_write().ok()) co_return;
  const Instant deadline = Instant::now() + kLingerTime;
  for (size_t drained = 0; drained < kMaxLingerBytes;) {
    absl::StatusOr<absl::StatusOr<reactor::RecvBuf>> r =
        co_await pollux::timeout_at(in.next(), deadline);
    if (!r.ok() || !r->ok() || (*r)->empty()) co_return;
    drained += (*r)->size();
  }
}

}  // namespace

Task<void> http_connection(net::TcpStream stream, ConnectionEnv env) {
  // Responses go out in one write per read; Nagle would hold a second
  // batch back until the client's delayed ACK.
  stream.set_nodelay(true).IgnoreError();
  const ServeOptions& limits = env.options;
  ServeStats& stats = *env.stats;
  // One multishot recv for the whole connection on io_uring (a plain recv
  // per next() on epoll), as echo_connection reads.
  net::TcpRecvStream in = stream.recv_stream();
  std::string partial;  // received bytes not answered yet (the start of a head)
  std::vector<char> out;
  // The first request's head must arrive within header_timeout of the
  // connection opening; later ones within header_timeout of their first
  // byte, and between requests the idle timeout applies.
  const Limit header_timeout(limits.header_timeout);
  const Limit idle_timeout(limits.idle_timeout);
  const Limit write_timeout(limits.write_timeout);
  Instant head_deadline = header_timeout.deadline();
  bool first_request = true;
  // One timer each for reading and writing, kept for the whole connection:
  // pushing a deadline back (the idle timeout, every request) is a store,
  // not a wheel insert and cancel per request (timeout_on, timer/timeout.h).
  Sleep read_limit = pollux::sleep_until(Instant::max());
  Sleep write_limit = pollux::sleep_until(Instant::max());
  // Likewise one wait for shutdown, raced against every idle read by
  // reference: a cancelled() per request registered with the token and
  // unlinked under its lock each time (by_ref, future/by_ref.h).
  auto stopping = env.stop.cancelled();
  for (;;) {
    // 1. Wait for input. With nothing buffered the connection is idle: a
    // shutdown ends it here (racing the next(); a dropped next() loses
    // nothing, and what had arrived is dropped with the connection, as with
    // any server closing an idle keep-alive connection). A request in
    // progress is read to its end instead, and answered with
    // Connection: close below.
    const bool idle = partial.empty();
    read_limit.reset(idle && !first_request ? idle_timeout.deadline() : head_deadline);
    absl::StatusOr<reactor::RecvBuf> lease;
    if (idle && !env.stop.is_cancelled()) {
      // The read first: bytes that have arrived are a request in flight,
      // answered (with Connection: close) rather than dropped.
      auto raced = co_await pollux::select(pollux::timeout_on(read_limit, in.next()),
                                           pollux::by_ref(stopping));
      if (raced.index == 1) co_return;  // shutting down, nothing in flight
      absl::StatusOr<absl::StatusOr<reactor::RecvBuf>> got = std::get<0>(std::move(raced.value));
      if (!got.ok()) co_return;  // header or idle timeout
      lease = std::move(*got);
    } else {
      if (idle) co_return;  // shutting down, nothing in flight
      absl::StatusOr<absl::StatusOr<reactor::RecvBuf>> got =
          co_await pollux::timeout_on(read_limit, in.next());
      if (!got.ok()) co_return;  // header timeout: the head never completed
      lease = std::move(*got);
    }
    // An error, or the client's end of stream.
    if (!lease.ok() || lease->empty()) co_return;
    stats.counts.add(ServeStats::kBytesIn, lease->size());
    // 2. Answer every complete head. The common case (nothing carried over)
    // parses straight from the lease; `partial` is bounded by kMaxHeadBytes
    // plus one arrival. What the first answer leaves of a lease moves to
    // `partial` and the lease goes back before anything is written: a
    // buffer of the worker's shared ring must not wait on a slow client.
    const bool carried_over = !partial.empty();
    if (carried_over) {
      partial.append(lease->data(), lease->size());
      lease->reset();
    }
    std::string_view input = carried_over ? std::string_view(partial)
                                          : std::string_view(lease->data(), lease->size());
    const size_t input_size = input.size();
    for (;;) {
      AnswerOptions answer_options;
      answer_options.closing = env.stop.is_cancelled();
      // Backpressure: at most kMaxOutputBytes of responses are built before
      // they are sent, and nothing more is handed out until the client has
      // taken them, so a client pipelining without reading is held back by
      // its own full socket buffers (and, on io_uring, the stream's queue
      // limit, IoUringOptions::recv_queued_max), not by our memory.
      answer_options.max_output_bytes = kMaxOutputBytes;
      answer_options.metrics_text = &limits.metrics_text;
      const Answered answered = answer_requests(input, out, answer_options);
      input.remove_prefix(answered.consumed);
      stats.counts.add(ServeStats::kRequests, answered.responses);
      if (answered.consumed > 0) first_request = false;
      if (!lease->empty()) {  // `input` still views the lease (reset once it does not)
        partial.assign(input.data(), input.size());
        lease->reset();
        input = partial;
      }
      if (!out.empty()) {
        const size_t bytes = out.size();
        write_limit.reset(write_timeout.deadline());
        absl::StatusOr<net::WriteAllResult> w =
            co_await pollux::timeout_on(write_limit, stream.write_all(std::move(out)));
        if (!w.ok()) co_return;  // the client does not take its responses
        out = std::move(w->buf);
        out.clear();  // keeps the capacity for the next batch
        if (!w->status.ok()) co_return;
        stats.counts.add(ServeStats::kBytesOut, bytes);
      }
      if (answered.close) {
        co_await close_gracefully(stream, in);
        co_return;
      }
      if (!answered.output_full) break;
    }
    // A new head has started (its first bytes just arrived, or are left
    // after the heads answered): its deadline counts from now.
    if (!input.empty() && (!carried_over || input.size() != input_size)) {
      head_deadline = header_timeout.deadline();
    }
    // `input` is the unanswered end of `partial` now.
    partial.erase(0, partial.size() - input.size());
  }
}

Task<void> serve_http(net::TcpListener listener) {
  return serve_connections(std::move(listener), http_connection);
}

Task<void> serve_http(net::TcpListener listener, ServeOptions options, ShutdownTrigger shutdown,
                      std::shared_ptr<ServeStats> stats) {
  return serve_connections(std::move(listener), http_connection, options, std::move(shutdown),
                           std::move(stats));
}

HttpResponseReader::HttpResponseReader(net::TcpStream& stream)
    : stream_(&stream), read_buf_(kReadBytes) {}

Task<absl::Status> HttpResponseReader::read_more() {
  reactor::IoResult r = co_await stream_->read(std::move(read_buf_));
  read_buf_ = std::move(r.buf);
  if (!r.n.ok()) co_return r.n.status();
  if (*r.n == 0) {
    co_return absl::OutOfRangeError(absl::StrCat("end of stream from ",
                                                 stream_->peer_addr().to_string(), " with ",
                                                 buffered_.size(), " bytes of a response read"));
  }
  buffered_.append(read_buf_.data(), *r.n);
  co_return absl::OkStatus();
}

Task<absl::StatusOr<std::string>> HttpResponseReader::next_response() {
  size_t head_length = 0;
  // A response head ends like a request head, in CRLF CRLF.
  while ((head_length = request_head_length(buffered_.data(), buffered_.size())) == 0) {
    absl::Status s = co_await read_more();
    if (!s.ok()) co_return s;
  }
  absl::StatusOr<size_t> body_length =
      content_length(absl::string_view(buffered_).substr(0, head_length));
  if (!body_length.ok()) co_return body_length.status();
  const size_t total = head_length + *body_length;
  while (buffered_.size() < total) {
    absl::Status s = co_await read_more();
    if (!s.ok()) co_return s;
  }
  std::string response = buffered_.substr(0, total);
  buffered_.erase(0, total);
  co_return response;
}

Task<absl::Status> HttpResponseReader::expect_end_of_stream() {
  for (;;) {
    if (!buffered_.empty()) {
      co_return absl::FailedPreconditionError(
          absl::StrCat("expected end of stream, got ", buffered_.size(), " more bytes: \"",
                       absl::CEscape(buffered_.substr(0, 80)), "\""));
    }
    reactor::IoResult r = co_await stream_->read(std::move(read_buf_));
    read_buf_ = std::move(r.buf);
    if (!r.n.ok()) co_return r.n.status();
    if (*r.n == 0) co_return absl::OkStatus();
    buffered_.append(read_buf_.data(), *r.n);
  }
}

Task<absl::StatusOr<std::string>> http_get(net::TcpStream& stream, int pipelined_count) {
  if (pipelined_count < 1) {
    co_return absl::InvalidArgumentError(
        absl::StrCat("http_get needs pipelined_count >= 1, got ", pipelined_count));
  }
  std::vector<char> requests;
  requests.reserve(kHelloRequest.size() * static_cast<size_t>(pipelined_count));
  for (int i = 0; i < pipelined_count; ++i) {
    requests.insert(requests.end(), kHelloRequest.begin(), kHelloRequest.end());
  }
  net::WriteAllResult w = co_await stream.write_all(std::move(requests));
  if (!w.status.ok()) co_return w.status;
  HttpResponseReader reader(stream);
  std::string responses;
  for (int i = 0; i < pipelined_count; ++i) {
    absl::StatusOr<std::string> r = co_await reader.next_response();
    if (!r.ok()) co_return r.status();
    responses += *r;
  }
  co_return responses;
}

}  // namespace pollux::examples::http
