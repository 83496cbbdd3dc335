// Tests for SocketAddr (socket_addr.h): parse/format round trips for IPv4 and
// IPv6, bad strings rejected with InvalidArgument naming them, sockaddr
// conversions and equality.
#include "net/socket_addr.h"

#include <arpa/inet.h>

#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pollux::net {
namespace {

TEST(SocketAddrTest, ParsesAndFormatsIpv4) {
  absl::StatusOr<SocketAddr> a = SocketAddr::parse("127.0.0.1:8080");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_ipv4());
  EXPECT_FALSE(a->is_ipv6());
  EXPECT_EQ(a->port(), 8080);
  EXPECT_EQ(a->to_string(), "127.0.0.1:8080");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in));
  const auto* sin = reinterpret_cast<const sockaddr_in*>(a->as_sockaddr());
  EXPECT_EQ(sin->sin_family, AF_INET);
  EXPECT_EQ(sin->sin_port, htons(8080));
  EXPECT_EQ(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  EXPECT_EQ(*a, SocketAddr::ipv4_loopback(8080));
}

TEST(SocketAddrTest, ParsesAndFormatsIpv6) {
  absl::StatusOr<SocketAddr> a = SocketAddr::parse("[::1]:80");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_ipv6());
  EXPECT_EQ(a->port(), 80);
  EXPECT_EQ(a->to_string(), "[::1]:80");
  EXPECT_EQ(a->len(), sizeof(sockaddr_in6));
  EXPECT_EQ(*a, SocketAddr::ipv6_loopback(80));
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->as_sockaddr());
  EXPECT_EQ(sin6->sin6_family, AF_INET6);
  EXPECT_EQ(sin6->sin6_port, htons(80));
}

TEST(SocketAddrTest, RoundTrips) {
  for (const char* s : {"0.0.0.0:0", "255.255.255.255:65535", "10.1.2.3:1", "[::]:0",
                        "[2001:db8::1]:443", "[fe80::1%2]:22", "[::ffff:1.2.3.4]:9"}) {
    absl::StatusOr<SocketAddr> a = SocketAddr::parse(s);
    ASSERT_TRUE(a.ok()) << s << ": " << a.status();
    EXPECT_EQ(a->to_string(), s);
    absl::StatusOr<SocketAddr> b = SocketAddr::parse(a->to_string());
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(*a, *b);
    absl::StatusOr<SocketAddr> c = SocketAddr::from_sockaddr(a->as_sockaddr(), a->len());
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, *a);
    std::ostringstream os;
    os << *a;
    EXPECT_EQ(os.str(), s);
  }
  // Non-canonical IPv6 text is normalised.
  absl::StatusOr<SocketAddr> a = SocketAddr::parse("[0:0:0:0:0:0:0:1]:5");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->to_string(), "[::1]:5");
}

TEST(SocketAddrTest, BadStringsAreInvalidArgumentNamingThem) {
  for (const char* s :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
        "127.0.0.1: 80", "127.0.0.1:80x", "256.0.0.1:80", "1.2.3:80", "localhost:80", ":80",
        "::1:80", "[::1]", "[::1]80", "[::1:80", "[::g]:80", "[::1]:", "[]:80",
        "[::1%]:80", "[::1%eth0]:80", "127.0.0.1:123456", "[1.2.3.4]:80"}) {
    absl::StatusOr<SocketAddr> a = SocketAddr::parse(s);
    ASSERT_FALSE(a.ok()) << "accepted \"" << s << "\" as " << *a;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << a.status();
    EXPECT_NE(a.status().message().find(absl::StrCat("\"", s, "\"")), absl::string_view::npos)
        << a.status();
  }
}

// Bytes the parse would otherwise have ignored: what follows an embedded NUL
// (inet_pton reads a C string) and a scope id's trailing blank (SimpleAtoi
// skips it). The message quotes the input C-escaped, so the NUL shows.
TEST(SocketAddrTest, RejectsBytesItWouldIgnore) {
  using namespace std::string_literals;
  const struct {
    std::string text;
    std::string quoted;
  } kCases[] = {
      {"127.0.0.1\0x:80"s, "\"127.0.0.1\\x00x:80\""},
      {"127.0.0.1\0:80"s, "\"127.0.0.1\\x00:80\""},
      {"127.0.0.1:80\0"s, "\"127.0.0.1:80\\x00\""},
      {"[::1\0junk]:80"s, "\"[::1\\x00junk]:80\""},
      {"[::1%1\0]:80"s, "\"[::1%1\\x00]:80\""},
      {"[::1%1 ]:80", "\"[::1%1 ]:80\""},
      {"[::1%1\t]:80", "\"[::1%1\\t]:80\""},
      {"[::1%1\n]:80", "\"[::1%1\\n]:80\""},
      {"[::1% 1]:80", "\"[::1% 1]:80\""},
      {"[::1%+1]:80", "\"[::1%+1]:80\""},
      {"[::1%4294967296]:80", "\"[::1%4294967296]:80\""},
      {"[::1%1x]:80", "\"[::1%1x]:80\""},
  };
  for (const auto& c : kCases) {
    absl::StatusOr<SocketAddr> a = SocketAddr::parse(c.text);
    ASSERT_FALSE(a.ok()) << "accepted \"" << absl::CHexEscape(c.text) << "\" as " << *a;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << a.status();
    EXPECT_NE(a.status().message().find(c.quoted), absl::string_view::npos) << a.status();
  }
  // The largest scope id still parses, and the NUL check did not cost the
  // ordinary forms.
  absl::StatusOr<SocketAddr> a = SocketAddr::parse("[fe80::1%4294967295]:80");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->to_string(), "[fe80::1%4294967295]:80");
  ASSERT_TRUE(SocketAddr::parse("[fe80::1%07]:80").ok());
  EXPECT_EQ(SocketAddr::parse("[fe80::1%07]:80")->to_string(), "[fe80::1%7]:80");
}

TEST(SocketAddrTest, EqualityComparesFamilyAddressAndPort) {
  EXPECT_EQ(*SocketAddr::parse("1.2.3.4:5"), *SocketAddr::parse("1.2.3.4:5"));
  EXPECT_NE(*SocketAddr::parse("1.2.3.4:5"), *SocketAddr::parse("1.2.3.4:6"));
  EXPECT_NE(*SocketAddr::parse("1.2.3.4:5"), *SocketAddr::parse("1.2.3.5:5"));
  EXPECT_NE(*SocketAddr::parse("[::]:5"), *SocketAddr::parse("0.0.0.0:5"));
  EXPECT_NE(*SocketAddr::parse("[::1]:5"), *SocketAddr::parse("[::2]:5"));
  EXPECT_NE(*SocketAddr::parse("[fe80::1%1]:5"), *SocketAddr::parse("[fe80::1%2]:5"));
  SocketAddr d;
  EXPECT_EQ(d.to_string(), "0.0.0.0:0");
  EXPECT_EQ(d, SocketAddr::ipv4_any(0));
  d.set_port(99);
  EXPECT_EQ(d.port(), 99);
  SocketAddr six = SocketAddr::ipv6_any(7);
  six.set_port(8);
  EXPECT_EQ(six.to_string(), "[::]:8");
}

TEST(SocketAddrTest, FromSockaddrRejectsOtherFamiliesAndShortLengths) {
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  EXPECT_EQ(SocketAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(ss)).status().code(),
            absl::StatusCode::kInvalidArgument);
  ss.ss_family = AF_INET6;
  EXPECT_FALSE(
      SocketAddr::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in)).ok());
  EXPECT_FALSE(SocketAddr::from_sockaddr(nullptr, 0).ok());
}

}  // namespace
}  // namespace pollux::net
