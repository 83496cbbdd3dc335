// The command line every server binary here shares (pollux's echo_server
// and http_hello, and bench/'s raw liburing baselines), on absl flags:
//
//   --port=N     TCP port; 0 picks a free one (default: the server's own)
//   --addr=IP    numeric address to listen on (default 127.0.0.1; ::1 works)
//   --threads=N  runtime threads; only 1 exists so far
//
// Keeping one definition keeps the pollux-vs-raw comparison's two sides
// started the same way by bench/compare.sh.
//
// Thread-safety: parse once, in main(), before any thread starts.
#ifndef POLLUX_EXAMPLES_SERVER_FLAGS_H_
#define POLLUX_EXAMPLES_SERVER_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"

namespace pollux::examples {

struct ServerFlags {
  std::string addr;
  int port = 0;
  int threads = 1;
};

// Parses argv with absl::ParseCommandLine (an unknown flag or a malformed
// value prints why and exits 1; --help prints the usage and exits), then
// checks the values. Error: InvalidArgument saying what is wrong: a port
// outside 0..65535, or --threads other than 1 (the multi-thread runtime is
// not built yet). `default_port` is used when --port is not given.
absl::StatusOr<ServerFlags> parse_server_flags(int argc, char** argv, int default_port);

// "ADDR:PORT", with brackets around an IPv6 address ("[::1]:80"), as
// net::SocketAddr::parse and getaddrinfo-free tools expect.
std::string host_port(const ServerFlags& flags);

}  // namespace pollux::examples

#endif  // POLLUX_EXAMPLES_SERVER_FLAGS_H_
