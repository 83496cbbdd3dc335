// raw_http_server: the hand-written liburing HTTP "hello" baseline that
// //examples:http_hello is measured against (bench/compare.sh). Same CLI and
// startup line as the pollux server:
//
//   raw_http_server --port=0 --threads=1 --addr=127.0.0.1   (default port 8080)
//   -> prints "listening on 127.0.0.1:PORT", serves until SIGTERM/SIGINT.
//   raw_http_server --threads=2 --port_per_thread --cpu_affinity ...
//   -> one ring and one listener per thread (bench/raw_server_flags.h).
//
// Same HTTP work per read as the pollux server: it calls the same pure
// answer_requests() (examples/http_wire.h, which has no runtime in it),
// which finds each complete
// request head in what has arrived, checks it, and appends one response per
// request (kHelloResponse for keep-alive ones; 400/431 or a closing response
// end the connection). Everything answered goes out with one send (short
// sends continue where they stopped); a partial request stays at the front
// of the connection's buffer for the next recv.
#include <cstddef>
#include <cstring>
#include <string_view>

#include "bench/raw_server_common.h"
#include "bench/raw_server_flags.h"
#include "examples/http_wire.h"

namespace {

struct HttpProtocol {
  pollux::bench::Reply on_recv(pollux::bench::Connection& conn, size_t n) {
    const std::string_view input(conn.in.data(), conn.kept + n);
    const pollux::examples::http::Answered answered =
        pollux::examples::http::answer_requests(input, conn.out);
    conn.kept = input.size() - answered.consumed;
    std::memmove(conn.in.data(), input.data() + answered.consumed, conn.kept);
    return {conn.out.data(), conn.out.size(), answered.close};
  }
};

}  // namespace

int main(int argc, char** argv) {
  pollux::bench::ServerPlan plan =
      pollux::bench::listen_from_flags(argc, argv, "raw_http_server", 8080);
  pollux::bench::serve(plan, HttpProtocol{});
}
