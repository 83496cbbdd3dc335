#include "net/socket_addr.h"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace pollux::net {

namespace {

// The input is quoted C-escaped: a NUL or a newline in it is shown as \000 or
// \n, not cut off or spread over the log.
absl::Status bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid socket address \"", absl::CHexEscape(text), "\": ", why));
}

// Decimal digits only, at most `max` (SimpleAtoi would take "+80", " 80" and
// "80 ", and a scope id's trailing blank is bytes the parse ignored).
bool parse_decimal(absl::string_view s, size_t max_digits, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > max_digits) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

// Decimal 0..65535.
bool parse_port(absl::string_view s, uint16_t* out) {
  uint64_t v;
  if (!parse_decimal(s, 5, 65535, &v)) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

SocketAddr::SocketAddr() noexcept {
  std::memset(&storage_, 0, sizeof(storage_));
  storage_.ss_family = AF_INET;
}

absl::StatusOr<SocketAddr> SocketAddr::parse(absl::string_view text) {
  SocketAddr out;
  std::memset(&out.storage_, 0, sizeof(out.storage_));
  if (text.empty()) return bad(text, "empty string");
  // inet_pton reads a C string: an embedded NUL would end the host early and
  // the bytes after it would be ignored.
  if (text.find('\0') != absl::string_view::npos) return bad(text, "contains a NUL byte");
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) return bad(text, "missing ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return bad(text, "expected \":port\" after ']'");
    }
    uint16_t port;
    if (!parse_port(text.substr(close + 2), &port)) return bad(text, "bad port");
    absl::string_view host = text.substr(1, close - 1);
    uint32_t scope = 0;
    const size_t pct = host.find('%');
    if (pct != absl::string_view::npos) {
      uint64_t sc;
      // 10 digits hold every uint32_t (4294967295).
      if (!parse_decimal(host.substr(pct + 1), 10, UINT32_MAX, &sc)) {
        return bad(text, "bad IPv6 scope id (must be decimal digits, at most 4294967295)");
      }
      scope = static_cast<uint32_t>(sc);
      host = host.substr(0, pct);
    }
    if (host.size() >= INET6_ADDRSTRLEN) return bad(text, "bad IPv6 address");
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
    if (::inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1) return bad(text, "bad IPv6 address");
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_scope_id = scope;
    return out;
  }
  const size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) return bad(text, "missing \":port\"");
  absl::string_view host = text.substr(0, colon);
  if (host.find(':') != absl::string_view::npos) {
    return bad(text, "IPv6 addresses must be written as [addr]:port");
  }
  uint16_t port;
  if (!parse_port(text.substr(colon + 1), &port)) return bad(text, "bad port");
  if (host.empty() || host.size() >= INET_ADDRSTRLEN) return bad(text, "bad IPv4 address");
  char buf[INET_ADDRSTRLEN];
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage_);
  // inet_pton(AF_INET) takes only dotted-quad decimal (no "1.2", no octal).
  if (::inet_pton(AF_INET, buf, &sin->sin_addr) != 1) return bad(text, "bad IPv4 address");
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  return out;
}

absl::StatusOr<SocketAddr> SocketAddr::from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) {
    return absl::InvalidArgumentError("from_sockaddr: no address");
  }
  SocketAddr out;
  std::memset(&out.storage_, 0, sizeof(out.storage_));
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in));
    return out;
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    std::memcpy(&out.storage_, sa, sizeof(sockaddr_in6));
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("from_sockaddr: unsupported family ",
                                                 sa->sa_family, " or length ", len));
}

SocketAddr SocketAddr::ipv4_loopback(uint16_t port) noexcept {
  SocketAddr a = ipv4_any(port);
  // SAFETY: storage_ holds a sockaddr_in (ipv4_any).
  reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

SocketAddr SocketAddr::ipv6_loopback(uint16_t port) noexcept {
  SocketAddr a = ipv6_any(port);
  // SAFETY: storage_ holds a sockaddr_in6 (ipv6_any).
  reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_addr = in6addr_loopback;
  return a;
}

SocketAddr SocketAddr::ipv4_any(uint16_t port) noexcept {
  SocketAddr a;
  // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
  auto* sin = reinterpret_cast<sockaddr_in*>(&a.storage_);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = htonl(INADDR_ANY);
  return a;
}

SocketAddr SocketAddr::ipv6_any(uint16_t port) noexcept {
  SocketAddr a;
  std::memset(&a.storage_, 0, sizeof(a.storage_));
  // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = in6addr_any;
  return a;
}

uint16_t SocketAddr::port() const noexcept {
  // SAFETY: the family says which struct storage_ holds (class invariant).
  if (is_ipv6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
}

void SocketAddr::set_port(uint16_t port) noexcept {
  // SAFETY: the family says which struct storage_ holds (class invariant).
  if (is_ipv6()) {
    reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
  }
}

std::string SocketAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_ipv6()) {
    // SAFETY: the family says storage_ holds a sockaddr_in6.
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    if (sin6->sin6_scope_id != 0) {
      return absl::StrCat("[", buf, "%", sin6->sin6_scope_id, "]:", port());
    }
    return absl::StrCat("[", buf, "]:", port());
  }
  // SAFETY: the family says storage_ holds a sockaddr_in.
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
  ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
  return absl::StrCat(buf, ":", port());
}

bool operator==(const SocketAddr& a, const SocketAddr& b) noexcept {
  if (a.family() != b.family()) return false;
  if (a.is_ipv6()) {
    // SAFETY: both hold a sockaddr_in6 (same family, class invariant).
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
    return x->sin6_port == y->sin6_port && x->sin6_flowinfo == y->sin6_flowinfo &&
           x->sin6_scope_id == y->sin6_scope_id &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
  }
  // SAFETY: both hold a sockaddr_in.
  const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
  const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
  return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

}  // namespace pollux::net
