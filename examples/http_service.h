// The "hello" HTTP/1.1 server behind //examples:http_hello, and the small
// client its tests and the benchmarks use.
//
//   rt->block_on(pollux::examples::serve_http(std::move(*listener)));
//
// Server: every well-formed request gets http::kHelloResponse. The parsing
// and the responses are in http_wire.h (answer_requests); this file is the
// I/O around them. A connection reads through a TcpRecvStream (one
// multishot recv on io_uring, buffer leases from the worker's ring; a recv
// per arrival on epoll). Connections are persistent (keep-alive) and
// pipelined: each arrival may complete several request heads; their
// responses are appended to one output buffer and sent with one write_all
// per arrival, not one write per request. Bytes of an incomplete head wait
// for the next arrival (copied out of the lease, which goes back to the ring
// before anything is written). Requests are assumed to have no
// body (GET/HEAD), as http_wire.h says. Closing cases, each answered and then
// closed gracefully (FIN first, then up to 1 s of draining the client's
// input, so unread input does not turn the close into an RST that could
// destroy the last response in flight):
//   - a head longer than http::kMaxHeadBytes -> kHeaderTooLargeResponse (431);
//   - a request line that is not `METHOD SP target SP HTTP/1.x` or a header
//     line without a colon -> kBadRequestResponse (400);
//   - `Connection: close` (any case, as one token of the value), or an
//     HTTP/1.0 request without `Connection: keep-alive` ->
//     kHelloCloseResponse, the hello response with `Connection: close`;
//   - during a graceful shutdown, the request in flight (if any) ->
//     kHelloCloseResponse; an idle connection closes without a response.
// An HTTP/1.0 request with `Connection: keep-alive` gets
// kHelloKeepAliveResponse (saying keep-alive, which a 1.0 client needs to
// keep the connection) and the connection stays open.
// Closing without a response (the limits of ServeOptions): no complete
// head within header_timeout (slowloris), nothing for idle_timeout between
// requests, a batch of responses not taken within write_timeout. Output is
// bounded: at most kMaxOutputBytes of responses are built before they are
// written, and the connection reads nothing while it writes.
// Stopping, errors and threads: as serve_connections (echo_service.h):
// dropping the server task closes the listener and aborts every connection.
//
// Client: HttpResponseReader reads responses framed by Content-Length;
// http_get sends pipelined hello requests and returns the responses' bytes.
//
// Thread-safety: tasks run on the thread that polls them; a reader is used
// by one task at a time.
#ifndef POLLUX_EXAMPLES_HTTP_SERVICE_H_
#define POLLUX_EXAMPLES_HTTP_SERVICE_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "examples/echo_service.h"
#include "examples/http_wire.h"
#include "future/task.h"
#include "net/tcp.h"

namespace pollux::examples::http {

// Serves one connection (see the header comment), within env.options'
// limits; env.stop cancelled means the server is shutting down.
[[nodiscard]] Task<void> http_connection(net::TcpStream stream, ConnectionEnv env);

// serve_connections(listener, http_connection).
[[nodiscard]] Task<void> serve_http(net::TcpListener listener);
// serve_connections(listener, http_connection, options, shutdown, stats).
[[nodiscard]] Task<void> serve_http(net::TcpListener listener, ServeOptions options,
                                    ShutdownTrigger shutdown, std::shared_ptr<ServeStats> stats);

// Reads HTTP responses off a stream one by one, keeping bytes that arrive
// after a response for the next call. Borrows the stream, which must outlive
// it and its tasks.
class HttpResponseReader {
 public:
  explicit HttpResponseReader(net::TcpStream& stream);

  // Output: the next response's bytes exactly as received (head, then the
  // body of its Content-Length). Errors: end of stream first -> OutOfRange;
  // a head with no Content-Length -> InvalidArgument; read errors as is.
  // Cancellation: dropping it loses what it read (the reader is then unusable).
  [[nodiscard]] Task<absl::StatusOr<std::string>> next_response();

  // Output: OK when the peer closes with no byte left unread;
  // FailedPrecondition quoting the extra bytes otherwise; read errors as is.
  [[nodiscard]] Task<absl::Status> expect_end_of_stream();

 private:
  // Appends one read's bytes to buffered_. OutOfRange at end of stream.
  Task<absl::Status> read_more();

  net::TcpStream* stream_;
  std::string buffered_;
  std::vector<char> read_buf_;
};

// Sends `pipelined_count` copies of kHelloRequest in one write, then reads
// that many responses. Output: the responses concatenated, exactly as
// received; bytes the server sent after them are not read. Errors: as
// write_all and HttpResponseReader::next_response.
[[nodiscard]] Task<absl::StatusOr<std::string>> http_get(net::TcpStream& stream,
                                                         int pipelined_count);

}  // namespace pollux::examples::http

namespace pollux::examples {
// Next to serve_echo, for callers that write examples::serve_http.
using http::serve_http;
}  // namespace pollux::examples

#endif  // POLLUX_EXAMPLES_HTTP_SERVICE_H_
