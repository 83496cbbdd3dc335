// http_hello: an HTTP/1.1 server answering every request with
// "Hello, World!" (keep-alive, pipelining; examples/http_service.h).
//
//   ./bazelw run -c opt //examples:http_hello -- --port=8080
//   curl -s http://127.0.0.1:8080/
//   wrk -c 50 -d 5 http://127.0.0.1:8080/
//
// Flags: --port=N (default 8080; 0 picks a free port), --addr=IP (default
// 127.0.0.1), --threads=N with
// --flavour=current_thread|multi_thread|thread_per_core, --port_per_thread,
// --cpu_affinity, and the limits --header_timeout, --idle_timeout,
// --write_timeout, --grace (examples/server_flags.h). Prints "listening on
// ADDR:PORT" once it accepts connections. SIGINT or SIGTERM: stops
// accepting, lets open connections finish for --grace (default 5 s), prints
// a "summary: ..." line and exits 0; a second signal stops at once (exit 0).
#include "examples/echo_service.h"
#include "examples/http_service.h"

int main(int argc, char** argv) {
  return pollux::examples::run_server(argc, argv, /*default_port=*/8080,
                                      pollux::examples::http::http_connection);
}
