// The raw baselines' main() up to serving, on the same flags as pollux's
// example servers (examples/server_flags.h): --port, --addr, --threads.
// Separate from raw_server_common.h so that bench/loadgen, which shares the
// ring set-up but has flags of its own, does not get these.
#ifndef POLLUX_BENCH_RAW_SERVER_FLAGS_H_
#define POLLUX_BENCH_RAW_SERVER_FLAGS_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "bench/raw_server_common.h"
#include "examples/server_flags.h"

namespace pollux::bench {

// Parses the flags (`default_port` as the pollux server's), exits 2 on a bad
// value (--threads other than 1 among them: the baseline is one thread),
// then listen_and_announce(). Returns the listening socket.
inline int listen_from_flags(int argc, char** argv, const char* program, int default_port) {
  absl::StatusOr<examples::ServerFlags> flags =
      examples::parse_server_flags(argc, argv, default_port);
  if (!flags.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, std::string(flags.status().message()).c_str());
    std::exit(2);
  }
  return listen_and_announce(flags->addr, flags->port);
}

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_RAW_SERVER_FLAGS_H_
