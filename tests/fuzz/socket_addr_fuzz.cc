// Fuzz target: SocketAddr::parse (net/socket_addr.h).
//
// Properties, for any input:
// - a rejection is InvalidArgument and quotes the input C-escaped;
// - an accepted input formats to a string that parses back to an equal
//   address and formats to itself (to_string is canonical);
// - an accepted input used every byte: it holds only the characters an
//   address is written with, and a NUL, a blank or a newline inserted at any
//   position makes it rejected (so nothing after a NUL or around a number was
//   skipped).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "net/socket_addr.h"

namespace {

using pollux::net::SocketAddr;

[[noreturn]] void fail(const std::string& input, const std::string& what) {
  std::fprintf(stderr, "socket_addr_fuzz: \"%s\": %s\n", absl::CHexEscape(input).c_str(),
               what.c_str());
  std::abort();
}

bool allowed(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
         c == '.' || c == ':' || c == '%' || c == '[' || c == ']';
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Addresses are short; longer inputs only slow the insertion check down.
  if (size > 80) return 0;
  const std::string input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<SocketAddr> a = SocketAddr::parse(input);
  if (!a.ok()) {
    if (a.status().code() != absl::StatusCode::kInvalidArgument) {
      fail(input, "rejected with " + a.status().ToString());
    }
    const std::string quoted = absl::StrCat("\"", absl::CHexEscape(input), "\"");
    if (a.status().message().find(quoted) == absl::string_view::npos) {
      fail(input, "the message does not quote the input: " + a.status().ToString());
    }
    return 0;
  }
  for (char c : input) {
    if (!allowed(c)) fail(input, "accepted with a character no address is written with");
  }
  const std::string text = a->to_string();
  absl::StatusOr<SocketAddr> b = SocketAddr::parse(text);
  if (!b.ok()) fail(input, "its format \"" + text + "\" is rejected: " + b.status().ToString());
  if (!(*b == *a)) fail(input, "its format \"" + text + "\" parses to " + b->to_string());
  if (b->to_string() != text) fail(input, "formatting is not canonical: " + b->to_string());
  if (b->port() != a->port() || b->is_ipv6() != a->is_ipv6()) fail(input, "port or family moved");
  for (size_t i = 0; i <= input.size(); ++i) {
    for (char junk : {'\0', ' ', '\n'}) {
      std::string bent = input;
      bent.insert(i, 1, junk);
      if (SocketAddr::parse(bent).ok()) {
        fail(input, absl::StrCat("still accepted with byte ", static_cast<int>(junk),
                                 " inserted at ", i, ": the parse ignores bytes"));
      }
    }
  }
  return 0;
}
