// The bytes of the HTTP/1.1 "hello" exchange that //examples:http_hello, the
// raw-liburing baseline in bench/ and the load generator all agree on, and
// the one parsing step every server does: finding where a request head ends.
//
// Keeping them in one header makes the pollux-vs-raw comparison fair (both
// servers do the same parsing work and send the same bytes) and lets the
// load generator verify every response byte for byte.
//
// Thread-safety: constants and pure functions.
#ifndef POLLUX_EXAMPLES_HTTP_WIRE_H_
#define POLLUX_EXAMPLES_HTTP_WIRE_H_

#include <cstddef>
#include <cstring>
#include <string_view>

namespace pollux::examples::http {

// The response to every well-formed request. No Date header, so every
// response is the same bytes and a client can compare them exactly.
inline constexpr std::string_view kHelloResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, World!";

// What the load generator and the tests send (keep-alive is HTTP/1.1's default).
inline constexpr std::string_view kHelloRequest =
    "GET / HTTP/1.1\r\n"
    "Host: 127.0.0.1\r\n"
    "\r\n";

// A request head longer than this without its blank line is refused
// (431 and close), so a client cannot make a server buffer without bound.
inline constexpr size_t kMaxHeadBytes = 8192;

// Length of the first complete request head in [p, p + n), counting its
// terminating "\r\n\r\n"; 0 when the head is not complete yet. Requests are
// assumed to have no body (GET/HEAD), as in the hello benchmark.
inline size_t request_head_length(const char* p, size_t n) {
  const void* end = ::memmem(p, n, "\r\n\r\n", 4);
  return end == nullptr ? 0 : static_cast<size_t>(static_cast<const char*>(end) - p) + 4;
}

}  // namespace pollux::examples::http

#endif  // POLLUX_EXAMPLES_HTTP_WIRE_H_
