// The bytes of the HTTP/1.1 "hello" exchange that //examples:http_hello, the
// raw-liburing baseline in bench/ and the load generator all agree on, and
// the parsing every server does (answer_requests): no runtime, no I/O.
//
// Keeping them in one header makes the pollux-vs-raw comparison fair (both
// servers do the same parsing work and send the same bytes) and lets the
// load generator verify every response byte for byte.
//
// Thread-safety: constants and pure functions.
#ifndef POLLUX_EXAMPLES_HTTP_WIRE_H_
#define POLLUX_EXAMPLES_HTTP_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

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
  // Each line's '\n' (memchr, one call per line) checked for the three bytes
  // before it: for a head of a few lines a fraction of what glibc's memmem
  // spends setting up its search on every call (issue 17's profile).
  size_t from = 0;
  while (from < n) {
    const void* lf = std::memchr(p + from, '\n', n - from);
    if (lf == nullptr) return 0;
    const size_t at = static_cast<size_t>(static_cast<const char*>(lf) - p);
    if (at >= 3 && p[at - 1] == '\r' && p[at - 2] == '\n' && p[at - 3] == '\r') return at + 1;
    from = at + 1;
  }
  return 0;
}

// kHelloResponse with `Connection: close`: the answer to a request that asked
// for the connection to end.
inline constexpr std::string_view kHelloCloseResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "Connection: close\r\n"
    "\r\n"
    "Hello, World!";

// kHelloResponse with `Connection: keep-alive`: the answer to an HTTP/1.0
// request that asked to keep the connection. A 1.0 client (ab -k) closes
// after any response that does not say keep-alive, so the default 1.1
// response (which persists without saying so) is not enough for it.
inline constexpr std::string_view kHelloKeepAliveResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    "Hello, World!";

// The answer to a malformed request line or header line.
inline constexpr std::string_view kBadRequestResponse =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Length: 0\r\n"
    "Connection: close\r\n"
    "\r\n";

// The answer to a request head longer than kMaxHeadBytes.
inline constexpr std::string_view kHeaderTooLargeResponse =
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "Content-Length: 0\r\n"
    "Connection: close\r\n"
    "\r\n";

// What the server does with one complete request head.
enum class RequestVerdict {
  kKeepAlive,        // HTTP/1.1 persisting: answer kHelloResponse, keep reading
  kKeepAliveAsked,   // HTTP/1.0 with `Connection: keep-alive`: answer
                     // kHelloKeepAliveResponse, keep reading
  kClose,            // answer kHelloCloseResponse, then close
  kBad,              // answer kBadRequestResponse, then close
};

// Judges one complete request head (request line, header lines, the blank
// line), as the header comment describes. Pure; allocates nothing. When the
// verdict is not kBad and `target` is set, *target is the request line's
// target (the bytes between its two spaces).
RequestVerdict inspect_request_head(std::string_view head, std::string_view* target = nullptr);

// How answer_requests answers.
struct AnswerOptions {
  // The server is shutting down: the next request is answered with
  // `Connection: close` (kHelloCloseResponse) and ends the connection.
  bool closing = false;
  // Stop consuming requests once `out` holds at least this many bytes (the
  // caller writes them, then calls again for the rest): a client that
  // pipelines without reading cannot grow a server's output without bound.
  size_t max_output_bytes = SIZE_MAX;
  // When set, `GET /metrics` (or HEAD) is answered with 200 and what this
  // returns as the body, as Prometheus text (`text/plain; version=0.0.4`);
  // every other target still gets the hello response. http_hello sets it
  // to Runtime::metrics().to_prometheus(). A pointer: the options are built
  // per request, and a copy of the function would be too.
  const std::function<std::string()>* metrics_text = nullptr;
};

// A 200 response carrying `body` as Prometheus text, with `Connection:
// close` or `Connection: keep-alive` when asked (neither by default).
std::string metrics_response(std::string_view body, bool close, bool say_keep_alive);

// The outcome of answer_requests.
struct Answered {
  size_t consumed = 0;   // bytes of `input` fully handled (complete heads)
  size_t responses = 0;  // responses appended to `out`
  bool close = false;    // the last response appended ends the connection
  bool output_full = false;  // stopped at max_output_bytes: complete heads may remain
};

// Appends to `out` the response to every complete request head at the start
// of `input`, stopping after one that ends the connection (or once `out`
// reaches options.max_output_bytes). Bytes after the last complete head are
// not consumed (unless they already exceed kMaxHeadBytes: then 431 and
// close). Pure apart from `out`.
Answered answer_requests(std::string_view input, std::vector<char>& out,
                         const AnswerOptions& options = {});

namespace detail {
// The offset of the first "\r\n" in `s` at or after `from`, or npos. A
// memchr for the '\r' (absl's find of a two-byte string goes through a
// generic substring search, several times the cost on a short line).
// (View: std::string_view or absl::string_view, which are distinct here.)
template <class View>
size_t find_crlf(View s, size_t from = 0) {
  while (from < s.size()) {
    const void* cr = std::memchr(s.data() + from, '\r', s.size() - from);
    if (cr == nullptr) break;
    const size_t at = static_cast<size_t>(static_cast<const char*>(cr) - s.data());
    if (at + 1 < s.size() && s[at + 1] == '\n') return at;
    from = at + 1;
  }
  return View::npos;
}

// RFC 9110 token characters (what a method or a field name is made of).
inline bool is_token_char(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

// for_each_header over `rest`, the head after its first line (for a caller
// that has found that line's end already).
template <class Fn>
bool for_each_header_line(absl::string_view rest, Fn fn) {
  while (!rest.empty()) {
    const size_t end = find_crlf(rest);
    if (end == absl::string_view::npos) return false;  // a head always ends in CRLF CRLF
    absl::string_view line = rest.substr(0, end);
    rest.remove_prefix(end + 2);
    if (line.empty()) return true;  // the blank line ending the head
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) return false;
    for (size_t i = 0; i < colon; ++i) {
      if (!is_token_char(line[i])) return false;
    }
    if (!fn(line.substr(0, colon), absl::StripAsciiWhitespace(line.substr(colon + 1)))) {
      return true;
    }
  }
  return true;
}
}  // namespace detail

// Each "name: value" line of `head` after its first line, up to the blank
// line. Calls fn(name, value) and stops when it returns false. Returns false
// when a line has no colon or its name is not a token (empty, or with a
// blank before the colon, which RFC 9112 says to answer with 400).
template <class Fn>
bool for_each_header(absl::string_view head, Fn fn) {
  const size_t first_line_end = detail::find_crlf(head);
  if (first_line_end == absl::string_view::npos) return false;
  return detail::for_each_header_line(head.substr(first_line_end + 2), fn);
}

}  // namespace pollux::examples::http

#endif  // POLLUX_EXAMPLES_HTTP_WIRE_H_
