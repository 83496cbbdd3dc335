// Fuzz target: the example server's HTTP/1.1 wire parser (examples/http_wire.h).
//
// The first input byte picks a split point; the rest is the byte stream a
// client sent. Properties:
// - answer_requests on the whole stream produces exactly what a model
//   produces: the model splits the stream at each "\r\n\r\n" and judges each
//   head by the grammar written out below (RFC 9112 request line, RFC 9110
//   field names are tokens, Connection's close / keep-alive options), with
//   the kMaxHeadBytes limit;
// - the stream delivered in two pieces (as a server reading twice sees it:
//   unconsumed bytes kept, the second piece appended) gets the same responses
//   byte for byte as the stream in one piece;
// - consumed never exceeds the input, and without close what is left holds
//   no complete head and fits the limit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "examples/http_wire.h"

namespace {

namespace http = pollux::examples::http;

[[noreturn]] void fail(std::string_view input, const char* what) {
  std::fprintf(stderr, "http_wire_fuzz: %s\ninput: \"%s\"\n", what,
               absl::CHexEscape(absl::string_view(input.data(), input.size())).c_str());
  std::abort();
}

bool is_tchar(char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// absl::StripAsciiWhitespace's set: space, \t, \n, \v, \f, \r.
bool is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

std::string_view strip(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// The model's verdict on one head (ending in "\r\n\r\n").
http::RequestVerdict model_verdict(std::string_view head) {
  using V = http::RequestVerdict;
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (true) {
    const size_t end = head.find("\r\n", start);
    if (end == std::string_view::npos) break;
    lines.push_back(head.substr(start, end - start));
    start = end + 2;
  }
  // lines: the request line, the field lines, "" (the blank line).
  if (lines.size() < 2 || !lines.back().empty()) return V::kBad;
  const std::string_view line = lines[0];
  // method SP request-target SP HTTP-version: exactly two spaces.
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return V::kBad;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return V::kBad;
  }
  if (!is_token(line.substr(0, sp1))) return V::kBad;
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.empty()) return V::kBad;
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f) return V::kBad;
  }
  const std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' ||
      version[7] > '9') {
    return V::kBad;
  }
  bool keep_alive = version[7] != '0';
  bool close = false;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    const std::string_view field = lines[i];
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) return V::kBad;
    if (!iequals(field.substr(0, colon), "connection")) continue;
    std::string_view value = field.substr(colon + 1);
    while (true) {
      const size_t comma = value.find(',');
      const std::string_view option = strip(value.substr(0, comma));
      if (iequals(option, "close")) close = true;
      if (iequals(option, "keep-alive")) keep_alive = true;
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  if (close || !keep_alive) return V::kClose;
  // A 1.0 client that asked for keep-alive must be told it was granted.
  return version[7] == '0' ? V::kKeepAliveAsked : V::kKeepAlive;
}

void append(std::string& out, std::string_view bytes) { out.append(bytes); }

// The model of a server's whole reply to `input`, and whether it closes.
std::string model_answer(std::string_view input, bool* closes) {
  std::string out;
  *closes = false;
  while (!input.empty()) {
    const size_t end = input.find("\r\n\r\n");
    const size_t length = end == std::string_view::npos ? 0 : end + 4;
    if ((length == 0 && input.size() > http::kMaxHeadBytes) || length > http::kMaxHeadBytes) {
      append(out, http::kHeaderTooLargeResponse);
      *closes = true;
      return out;
    }
    if (length == 0) return out;
    switch (model_verdict(input.substr(0, length))) {
      case http::RequestVerdict::kKeepAlive:
        append(out, http::kHelloResponse);
        break;
      case http::RequestVerdict::kKeepAliveAsked:
        append(out, http::kHelloKeepAliveResponse);
        break;
      case http::RequestVerdict::kClose:
        append(out, http::kHelloCloseResponse);
        *closes = true;
        return out;
      case http::RequestVerdict::kBad:
        append(out, http::kBadRequestResponse);
        *closes = true;
        return out;
    }
    input.remove_prefix(length);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split_seed = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  // One piece.
  std::vector<char> out;
  const http::Answered whole = http::answer_requests(input, out);
  if (whole.consumed > input.size()) fail(input, "consumed more than the input");
  if (!whole.close) {
    const std::string_view rest = input.substr(whole.consumed);
    if (http::request_head_length(rest.data(), rest.size()) != 0) {
      fail(input, "left a complete head unanswered");
    }
    if (rest.size() > http::kMaxHeadBytes) fail(input, "kept more than kMaxHeadBytes waiting");
  }
  bool model_closes;
  const std::string expected = model_answer(input, &model_closes);
  if (std::string(out.begin(), out.end()) != expected) fail(input, "responses differ from the model");
  if (whole.close != model_closes) fail(input, "close differs from the model");

  // Two pieces: the first split_seed * size / 256 bytes, then the rest.
  const size_t cut = split_seed * input.size() / 256;
  std::string buffered(input.substr(0, cut));
  std::vector<char> out2;
  http::Answered first = http::answer_requests(buffered, out2);
  if (first.consumed > buffered.size()) fail(input, "consumed more than the first piece");
  if (!first.close) {
    buffered.erase(0, first.consumed);
    buffered.append(input.substr(cut));
    (void)http::answer_requests(buffered, out2);
  }
  if (out2 != out) fail(input, "two pieces got other responses than one");
  return 0;
}
