// echo_server: a TCP echo server on the io_uring runtime. Every byte a
// client sends comes back, in order; one task per connection.
//
//   ./bazelw run -c opt //examples:echo_server -- --port=7000
//
// Flags: --port=N (default 7000; 0 picks a free port), --addr=IP (default
// 127.0.0.1), --threads=1 (the only runtime so far). Prints "listening on
// ADDR:PORT" once it accepts connections, then runs until killed
// (SIGINT/SIGTERM end it the default way).
#include "examples/echo_service.h"

int main(int argc, char** argv) {
  return pollux::examples::run_server(argc, argv, /*default_port=*/7000,
                                      pollux::examples::serve_echo);
}
