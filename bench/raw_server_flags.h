// The raw baselines' main() up to serving, on the same flags as pollux's
// example servers (examples/server_flags.h: --port, --addr, --threads) plus
// the two that the multi-thread comparison (bench/compare.sh --threads N)
// passes to every server:
//
//   --port_per_thread  thread i listens on a port of its own: --port + i, or
//                      with --port=0 a free port each; one "listening on"
//                      line per thread, in thread order. Without it every
//                      thread's listener binds --port with SO_REUSEPORT (the
//                      kernel spreads connections by hash) and the server
//                      prints one line.
//   --cpu_affinity     pin thread i to the i-th CPU (ascending) of the
//                      affinity mask the process started with, so under
//                      `taskset -c 0,1` thread i runs on CPU i; the mask
//                      must hold at least --threads CPUs.
//
// Separate from raw_server_common.h so that bench/loadgen, which shares the
// ring set-up but has flags of its own, does not get these.
#ifndef POLLUX_BENCH_RAW_SERVER_FLAGS_H_
#define POLLUX_BENCH_RAW_SERVER_FLAGS_H_

#include "bench/raw_server_common.h"

namespace pollux::bench {

// Parses the flags (`default_port` as the pollux server's; a bad value
// prints why, prefixed by `program`, and exits 2), opens one listener per
// thread, prints the "listening on" line(s) and returns what serve() runs.
ServerPlan listen_from_flags(int argc, char** argv, const char* program, int default_port);

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_RAW_SERVER_FLAGS_H_
