// The command line every server binary here shares (pollux's echo_server
// and http_hello, and bench/'s raw liburing baselines), on absl flags:
//
//   --port=N            TCP port; 0 picks a free one (default: the server's own)
//   --addr=IP           numeric address to listen on (default 127.0.0.1; ::1 works)
//   --threads=N         runtime threads (default 1)
//   --flavour=NAME      current_thread (the default for one thread),
//                       multi_thread (the default for more) or thread_per_core
//   --port_per_thread   thread i listens on --port + i (--port=0: a free port
//                       each) and one "listening on" line is printed per
//                       thread; default: every thread's listener shares
//                       --port with SO_REUSEPORT and one line is printed
//   --cpu_affinity      pin thread i to the i-th CPU of the process's
//                       affinity mask (it must hold --threads CPUs)
//   --header_timeout=D  a request head must arrive within D (default 10s)
//   --idle_timeout=D    an idle keep-alive connection closes after D (75s)
//   --write_timeout=D   a batch of output must be sent within D (30s)
//   --grace=D           after SIGINT/SIGTERM, connections get D to finish (5s)
//                       (durations as absl: 250ms, 10s, 1m; 0 disables a timeout)
//
// Keeping one definition keeps the pollux-vs-raw comparison's two sides
// started the same way by bench/compare.sh.
//
// Thread-safety: parse once, in main(), before any thread starts.
#ifndef POLLUX_EXAMPLES_SERVER_FLAGS_H_
#define POLLUX_EXAMPLES_SERVER_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace pollux::examples {

struct ServerFlags {
  enum class Flavour { kCurrentThread, kMultiThread, kThreadPerCore };
  std::string addr;
  int port = 0;
  int threads = 1;
  Flavour flavour = Flavour::kCurrentThread;
  bool port_per_thread = false;
  bool cpu_affinity = false;
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(75);
  absl::Duration write_timeout = absl::Seconds(30);
  absl::Duration grace = absl::Seconds(5);
};

// Parses argv with absl::ParseCommandLine (an unknown flag or a malformed
// value prints why and exits 1; --help prints the usage and exits), then
// checks the values. Error: InvalidArgument saying what is wrong: a negative
// duration, a port
// outside 0..65535, --threads outside 1..1024, an unknown --flavour,
// current_thread with more than one thread, or --port_per_thread ports past
// 65535. `default_port` is used when --port is not given.
absl::StatusOr<ServerFlags> parse_server_flags(int argc, char** argv, int default_port);
// The same checks on flags a program parsed itself (the demo, which has a
// usage message of its own).
absl::StatusOr<ServerFlags> server_flags_from_command_line(int default_port);

// "ADDR:PORT", with brackets around an IPv6 address ("[::1]:80"), as
// net::SocketAddr::parse and getaddrinfo-free tools expect.
std::string host_port(const ServerFlags& flags);

}  // namespace pollux::examples

#endif  // POLLUX_EXAMPLES_SERVER_FLAGS_H_
