// raw_echo_server: the hand-written liburing echo baseline that
// //examples:echo_server is measured against (bench/compare.sh). Same CLI
// and startup line as the pollux server:
//
//   raw_echo_server --port=0 --threads=1 --addr=127.0.0.1   (default port 7000)
//   -> prints "listening on 127.0.0.1:PORT", serves until SIGTERM/SIGINT.
//   raw_echo_server --threads=2 --port_per_thread --cpu_affinity ...
//   -> one ring and one listener per thread (bench/raw_server_flags.h).
//   raw_echo_server --multishot [--multishot_buffers=N --multishot_buffer_bytes=B]
//   -> the multishot-recv loop over provided buffers
//      (bench/raw_multishot_echo_loop.h; compare.sh's "raw_ms").
//
// By default each connection recv()s up to 16 KiB into its own buffer and
// sends exactly those bytes back (short sends continue where they stopped)
// before the next recv; the loop itself is in raw_server_common.h.
#include <cstddef>
#include <string>

#include "absl/flags/flag.h"
#include "bench/raw_multishot_echo_loop.h"
#include "bench/raw_server_common.h"
#include "bench/raw_server_flags.h"

ABSL_FLAG(bool, multishot, false,
          "one multishot recv per connection into a provided-buffer ring, replies sent from "
          "the provided buffers (bench/raw_multishot_echo_loop.h)");
// 1024 x 4 KiB (4 MiB per ring): a connection holds a buffer only from its
// recv to the end of the send echoing it, so 50 connections at depth 1 hold
// at most 50; 1024 leaves room for deeper pipelines and more connections
// before -ENOBUFS, while a 4 KiB buffer is one page, as large as a 64 B
// message needs (bigger messages take more CQEs, in order).
ABSL_FLAG(int, multishot_buffers, 1024,
          "--multishot: buffers in the ring (a power of two, 1..32768)");
ABSL_FLAG(int, multishot_buffer_bytes, 4096,
          "--multishot: bytes per buffer (1..1048576)");

namespace {

// Echo: the reply is the received bytes themselves, sent from the recv buffer.
struct EchoProtocol {
  pollux::bench::Reply on_recv(pollux::bench::Connection& conn, size_t n) {
    return {conn.in.data(), n, false};
  }
};

[[noreturn]] void usage_error(const std::string& why) {
  std::fprintf(stderr, "raw_echo_server: %s\n", why.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  pollux::bench::ServerPlan plan =
      pollux::bench::listen_from_flags(argc, argv, "raw_echo_server", 7000);
  if (!absl::GetFlag(FLAGS_multishot)) pollux::bench::serve(plan, EchoProtocol{});

  const int buffers = absl::GetFlag(FLAGS_multishot_buffers);
  const int buffer_bytes = absl::GetFlag(FLAGS_multishot_buffer_bytes);
  if (buffers < 1 || buffers > 32768 || (buffers & (buffers - 1)) != 0) {
    usage_error("--multishot_buffers=" + std::to_string(buffers) +
                ": must be a power of two in 1..32768 (a buffer ring's size)");
  }
  if (buffer_bytes < 1 || buffer_bytes > (1 << 20)) {
    usage_error("--multishot_buffer_bytes=" + std::to_string(buffer_bytes) +
                ": must be in 1..1048576");
  }
  pollux::bench::MultishotConfig config{static_cast<unsigned>(buffers),
                                        static_cast<unsigned>(buffer_bytes)};
  pollux::bench::serve_loops(plan, [config](io_uring* ring, int listen_fd) {
    pollux::bench::run_multishot_echo_loop(ring, listen_fd, config);
  });
}
