// raw_echo_server: the hand-written liburing echo baseline that
// //examples:echo_server is measured against (bench/compare.sh). Same CLI
// and startup line as the pollux server:
//
//   raw_echo_server --port=0 --threads=1 --addr=127.0.0.1   (default port 7000)
//   -> prints "listening on 127.0.0.1:PORT", serves until SIGTERM/SIGINT.
//   raw_echo_server --threads=2 --port_per_thread --cpu_affinity ...
//   -> one ring and one listener per thread (bench/raw_server_flags.h).
//
// Each connection recv()s up to 16 KiB into its own buffer and sends exactly
// those bytes back (short sends continue where they stopped) before the next
// recv; the loop itself is in raw_server_common.h.
#include <cstddef>

#include "bench/raw_server_common.h"
#include "bench/raw_server_flags.h"

namespace {

// Echo: the reply is the received bytes themselves, sent from the recv buffer.
struct EchoProtocol {
  pollux::bench::Reply on_recv(pollux::bench::Connection& conn, size_t n) {
    return {conn.in.data(), n, false};
  }
};

}  // namespace

int main(int argc, char** argv) {
  pollux::bench::ServerPlan plan =
      pollux::bench::listen_from_flags(argc, argv, "raw_echo_server", 7000);
  pollux::bench::serve(plan, EchoProtocol{});
}
