// SocketAddr: an IPv4 or IPv6 socket address (address + port), as in Rust's
// std::net::SocketAddr.
//
//   absl::StatusOr<SocketAddr> a = SocketAddr::parse("127.0.0.1:8080");
//   absl::StatusOr<SocketAddr> b = SocketAddr::parse("[::1]:80");
//   a->to_string();  // "127.0.0.1:8080"
//
// Text forms: "a.b.c.d:port" and "[ipv6]:port" (an IPv6 scope is accepted as
// "[fe80::1%2]:80" with a numeric scope id). No host names: resolving is
// blocking work and does not belong here. A malformed string is
// InvalidArgument whose message quotes it.
//
// Invariant: a SocketAddr always holds a valid AF_INET or AF_INET6 sockaddr
// (a default-constructed one is 0.0.0.0:0), so as_sockaddr()/len() can be
// passed to bind/connect/sendto as they are.
//
// Thread-safety: a plain value type.
#ifndef POLLUX_NET_SOCKET_ADDR_H_
#define POLLUX_NET_SOCKET_ADDR_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pollux::net {

// An IPv4 or IPv6 address and port; always a valid sockaddr. A plain value
// type.
class SocketAddr {
 public:
  // 0.0.0.0:0.
  SocketAddr() noexcept;

  // Parses "a.b.c.d:port" or "[ipv6]:port" (port 0..65535, decimal).
  static absl::StatusOr<SocketAddr> parse(absl::string_view text);
  // From a kernel sockaddr (accept, getsockname, recvmsg). InvalidArgument
  // for another family or a too-short length.
  static absl::StatusOr<SocketAddr> from_sockaddr(const sockaddr* sa, socklen_t len);
  // 127.0.0.1:port and [::1]:port.
  static SocketAddr ipv4_loopback(uint16_t port) noexcept;
  static SocketAddr ipv6_loopback(uint16_t port) noexcept;
  // 0.0.0.0:port and [::]:port.
  static SocketAddr ipv4_any(uint16_t port) noexcept;
  static SocketAddr ipv6_any(uint16_t port) noexcept;

  bool is_ipv4() const noexcept { return storage_.ss_family == AF_INET; }
  bool is_ipv6() const noexcept { return storage_.ss_family == AF_INET6; }
  int family() const noexcept { return storage_.ss_family; }
  uint16_t port() const noexcept;
  void set_port(uint16_t port) noexcept;
  // "127.0.0.1:8080", "[::1]:80", "[fe80::1%2]:80".
  std::string to_string() const;

  // For bind/connect/sendto. Valid as long as this object is.
  const sockaddr* as_sockaddr() const noexcept {
    // SAFETY: sockaddr_storage is designed to be viewed as any sockaddr.
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  socklen_t len() const noexcept {
    return is_ipv6() ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  }

  // Same family, address, port (and for IPv6 flow info and scope id).
  friend bool operator==(const SocketAddr& a, const SocketAddr& b) noexcept;
  friend bool operator!=(const SocketAddr& a, const SocketAddr& b) noexcept { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const SocketAddr& a) {
    return os << a.to_string();
  }

 private:
  sockaddr_storage storage_;
};

}  // namespace pollux::net

#endif  // POLLUX_NET_SOCKET_ADDR_H_
