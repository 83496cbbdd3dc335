#include "examples/http_wire.h"

#include <cstring>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace pollux::examples::http {
namespace {

void append(std::vector<char>& out, std::string_view bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

// A request target: visible characters, no space, no DEL.
bool is_target_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > ' ' && u != 0x7f;
}

}  // namespace

RequestVerdict inspect_request_head(std::string_view request_head, std::string_view* target) {
  const absl::string_view head(request_head.data(), request_head.size());
  const size_t line_end = detail::find_crlf(head);
  if (line_end == absl::string_view::npos) return RequestVerdict::kBad;
  const absl::string_view line = head.substr(0, line_end);
  // METHOD SP target SP HTTP/1.x
  size_t i = 0;
  while (i < line.size() && detail::is_token_char(line[i])) ++i;
  if (i == 0 || i == line.size() || line[i] != ' ') return RequestVerdict::kBad;
  const size_t target_start = ++i;
  while (i < line.size() && is_target_char(line[i])) ++i;
  if (i == target_start || i == line.size() || line[i] != ' ') return RequestVerdict::kBad;
  const absl::string_view version = line.substr(i + 1);
  if (version.size() != 8 || !absl::StartsWith(version, "HTTP/1.") ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
    return RequestVerdict::kBad;
  }
  // HTTP/1.1 connections persist unless asked not to; HTTP/1.0 ones only
  // when asked to.
  bool keep_alive = version[7] != '0';
  bool close = false;
  const bool well_formed = detail::for_each_header_line(
      head.substr(line_end + 2), [&](absl::string_view name, absl::string_view value) {
        if (absl::EqualsIgnoreCase(name, "connection")) {
          for (absl::string_view token : absl::StrSplit(value, ',')) {
            token = absl::StripAsciiWhitespace(token);
            if (absl::EqualsIgnoreCase(token, "close")) close = true;
            if (absl::EqualsIgnoreCase(token, "keep-alive")) keep_alive = true;
          }
        }
        return true;
      });
  if (!well_formed) return RequestVerdict::kBad;
  if (target != nullptr) *target = request_head.substr(target_start, i - target_start);
  if (close || !keep_alive) return RequestVerdict::kClose;
  return version[7] == '0' ? RequestVerdict::kKeepAliveAsked : RequestVerdict::kKeepAlive;
}

std::string metrics_response(std::string_view body, bool close, bool say_keep_alive) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n",
                      "Content-Length: ", body.size(), "\r\n",
                      close            ? "Connection: close\r\n"
                      : say_keep_alive ? "Connection: keep-alive\r\n"
                                       : "",
                      "\r\n", absl::string_view(body.data(), body.size()));
}

Answered answer_requests(std::string_view input, std::vector<char>& out,
                         const AnswerOptions& options) {
  Answered answered;
  while (answered.consumed < input.size()) {
    if (out.size() >= options.max_output_bytes) {
      answered.output_full = true;
      return answered;
    }
    const std::string_view rest = input.substr(answered.consumed);
    const size_t head_length = request_head_length(rest.data(), rest.size());
    const bool too_long =
        head_length == 0 ? rest.size() > kMaxHeadBytes : head_length > kMaxHeadBytes;
    if (too_long) {
      append(out, kHeaderTooLargeResponse);
      ++answered.responses;
      answered.consumed = input.size();
      answered.close = true;
      return answered;
    }
    if (head_length == 0) break;  // incomplete: wait for more bytes
    answered.consumed += head_length;
    ++answered.responses;
    std::string_view target;
    RequestVerdict verdict = inspect_request_head(rest.substr(0, head_length), &target);
    if (options.closing && verdict != RequestVerdict::kBad) verdict = RequestVerdict::kClose;
    if (options.metrics_text != nullptr && *options.metrics_text &&
        verdict != RequestVerdict::kBad && target == "/metrics") {
      const bool close = verdict == RequestVerdict::kClose;
      append(out, metrics_response((*options.metrics_text)(), close,
                                   verdict == RequestVerdict::kKeepAliveAsked));
      if (close) {
        answered.close = true;
        return answered;
      }
      continue;
    }
    switch (verdict) {
      case RequestVerdict::kKeepAlive:
        append(out, kHelloResponse);
        break;
      case RequestVerdict::kKeepAliveAsked:
        append(out, kHelloKeepAliveResponse);
        break;
      case RequestVerdict::kClose:
        append(out, kHelloCloseResponse);
        answered.close = true;
        return answered;
      case RequestVerdict::kBad:
        append(out, kBadRequestResponse);
        answered.close = true;
        return answered;
    }
  }
  return answered;
}

}  // namespace pollux::examples::http
