// echo_server: a TCP echo server on the io_uring runtime. Every byte a
// client sends comes back, in order; one task per connection.
//
//   ./bazelw run -c opt //examples:echo_server -- --port=7000
//
// Flags: --port=N (default 7000; 0 picks a free port), --addr=IP (default
// 127.0.0.1), --threads=N with
// --flavour=current_thread|multi_thread|thread_per_core, --port_per_thread,
// --cpu_affinity, and the limits --header_timeout, --idle_timeout,
// --write_timeout, --grace (examples/server_flags.h). Prints "listening on
// ADDR:PORT" once it accepts connections. SIGINT or SIGTERM: stops
// accepting, lets open connections finish for --grace (default 5 s), prints
// a "summary: ..." line and exits 0; a second signal stops at once (exit 0).
#include "examples/echo_service.h"

int main(int argc, char** argv) {
  return pollux::examples::run_server(argc, argv, /*default_port=*/7000,
                                      pollux::examples::echo_connection);
}
