// The two echo loops bench/fake_echo_bench.cc compares over FakeSockets
// (bench/fake_sockets.h): pollux's (a task per connection awaiting recv and
// send futures on a LocalExecutor over FakeBackend) and the same loop
// written by hand (a submission list, one "kernel entry" per loop, a
// completion per op, a switch per connection), so their difference is what
// the runtime costs per message.
#ifndef POLLUX_BENCH_FAKE_ECHO_H_
#define POLLUX_BENCH_FAKE_ECHO_H_

#include <cstddef>
#include <cstdint>

#include "bench/fake_sockets.h"

namespace pollux::bench {

struct EchoRun {
  int64_t messages = 0;       // echoed (received and sent back whole)
  int64_t bytes = 0;          // echoed
  uint64_t kernel_entries = 0;
  size_t live_ops_after = 0;  // pollux only: the backend's slots still held
};

// `connections` sockets, each starting with one `message_size`-byte message
// from its peer, each echoed `messages_per_connection` times.
EchoRun pollux_echo(int connections, int64_t messages_per_connection, size_t message_size);
EchoRun hand_written_echo(int connections, int64_t messages_per_connection, size_t message_size);

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_FAKE_ECHO_H_
