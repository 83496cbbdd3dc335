// demo: an echo server and 64 clients in one process for about 3 seconds,
// every echoed byte checked.
//
//   ./bazelw run //examples:demo
//
// A second thread runs the echo server (examples/echo_service.h: one task per
// connection) on its own runtime, listening on 127.0.0.1:0: current_thread by
// default, or --threads=N --flavour=multi_thread|thread_per_core (one
// listener per runtime thread, sharing the port with SO_REUSEPORT).
// The main thread runs another runtime with 64 client tasks. Each client is
// a closed loop: it sends a message of 1..4096 bytes whose every byte is a
// function of (connection, sequence number, offset), reads back exactly as
// many bytes, checks each one as it arrives, and records the round trip's
// latency. A progress line updates 4 times a second on a terminal (once a
// second, one line each, when stdout is not a terminal); a summary table
// follows. It says which I/O backend runs (io_uring, or epoll where io_uring
// is refused; POLLUX_BACKEND=epoll picks it). Then the server is told to
// stop: its task is dropped, which closes
// the listener and every connection, its runtime shuts down, and its thread
// is joined. Before that, a metrics table (Runtime::metrics(), read while
// the server runs) shows what each runtime did per message: task polls,
// kernel entries (io_uring_enter / epoll_wait), I/O ops, parks, steals.
//
// Exit status: 0 only when no client saw an error and every byte sent came
// back verified.
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/echo_service.h"
#include "examples/server_flags.h"
#include "executor/join_handle.h"
#include "future/future.h"
#include "future/select.h"
#include "future/task.h"
#include "net/socket_addr.h"
#include "net/tcp.h"
#include "runtime/runtime.h"
#include "timer/instant.h"
#include "timer/interval.h"
#include "timer/timeout.h"

namespace {

using pollux::Instant;
using pollux::Task;
using pollux::net::SocketAddr;
using pollux::net::TcpStream;

constexpr int kConnections = 64;
constexpr absl::Duration kRunTime = absl::Seconds(3);
constexpr size_t kMaxMessageBytes = 4096;
// If the clients have not finished by then, something is stuck: say so
// instead of hanging.
constexpr absl::Duration kGiveUpAfter = absl::Seconds(20);

// A one-shot stop flag set from one thread and awaited on another: the
// hand-written future of README.md, woken across threads.
class StopSignal {
 public:
  // Sets the flag and wakes the waiting task, if any. Any thread.
  void trigger() {
    pollux::Waker waker;
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      waker = std::move(waker_);
    }
    std::move(waker).wake();  // outside the lock: waking may run the executor's unpark
  }

  // A future that is Ready once trigger() was called.
  struct Wait {
    using Output = void;
    StopSignal* signal;
    pollux::Poll<void> poll(pollux::Context& cx) {
      std::lock_guard lock(signal->mu_);
      if (signal->stopped_) return pollux::Ready{};
      if (!signal->waker_.will_wake(cx.waker())) signal->waker_ = cx.waker();
      return pollux::Pending{};
    }
  };
  [[nodiscard]] Wait wait() { return Wait{this}; }

 private:
  std::mutex mu_;
  bool stopped_ = false;
  pollux::Waker waker_;
};

// What the clients measured. Used only on the client runtime's thread.
struct Stats {
  uint64_t messages = 0;
  uint64_t bytes = 0;           // echoed: sent, received back and compared
  uint64_t verified_bytes = 0;  // of those, the ones equal to what was sent
  uint64_t errors = 0;
  std::string first_error;
  std::vector<uint32_t> latencies_ns;  // one per message

  void fail(const std::string& what) {
    if (errors++ == 0) first_error = what;
  }
};

// The byte at `offset` of message `seq` on connection `conn`: a hash, so a
// byte from another message, connection or offset would not match.
char pattern_byte(uint32_t conn, uint32_t seq, size_t offset) {
  uint32_t x = conn * 0x9E3779B1u + seq * 0x85EBCA77u + static_cast<uint32_t>(offset) * 0xC2B2AE3Du;
  x ^= x >> 15;
  x *= 0x2C1B3C6Du;
  x ^= x >> 12;
  return static_cast<char>(x);
}

// 1..kMaxMessageBytes, different from message to message.
size_t message_size(uint32_t conn, uint32_t seq) {
  uint32_t x = (conn + 1) * 0x27D4EB2Fu ^ seq * 0x165667B1u;
  x ^= x >> 13;
  return 1 + x % kMaxMessageBytes;
}

// One client: send, read back, verify, until `deadline`.
Task<void> run_client(SocketAddr server, uint32_t conn, Instant deadline, Stats* stats) {
  absl::StatusOr<TcpStream> stream = co_await TcpStream::connect(server);
  if (!stream.ok()) {
    stats->fail(stream.status().ToString());
    co_return;
  }
  // Small messages, each waited for: Nagle would only add delay.
  stream->set_nodelay(true).IgnoreError();
  std::vector<char> out(kMaxMessageBytes);
  std::vector<char> in(kMaxMessageBytes);
  for (uint32_t seq = 0; Instant::now() < deadline; ++seq) {
    const size_t size = message_size(conn, seq);
    out.resize(size);  // within capacity: no allocation
    for (size_t i = 0; i < size; ++i) out[i] = pattern_byte(conn, seq, i);
    const Instant sent_at = Instant::now();
    pollux::net::WriteAllResult w = co_await stream->write_all(std::move(out));
    out = std::move(w.buf);
    if (!w.status.ok()) {
      stats->fail(w.status.ToString());
      co_return;
    }
    for (size_t received = 0; received < size;) {
      pollux::reactor::IoResult r = co_await stream->read(std::move(in));
      in = std::move(r.buf);
      if (!r.n.ok() || *r.n == 0) {
        stats->fail(r.n.ok() ? absl::StrCat("connection ", conn, ": end of stream after ", received,
                                            " of ", size, " bytes")
                             : r.n.status().ToString());
        co_return;
      }
      if (received + *r.n > size) {
        stats->fail(absl::StrCat("connection ", conn, ": ", received + *r.n,
                                 " bytes came back for a ", size, "-byte message"));
        co_return;
      }
      for (size_t i = 0; i < *r.n; ++i) {
        if (in[i] != pattern_byte(conn, seq, received + i)) {
          stats->fail(absl::StrCat("connection ", conn, " message ", seq, ": byte ", received + i,
                                   " differs from what was sent"));
          co_return;
        }
      }
      received += *r.n;
      stats->verified_bytes += *r.n;
    }
    stats->latencies_ns.push_back(static_cast<uint32_t>(
        std::min<int64_t>(absl::ToInt64Nanoseconds(Instant::now() - sent_at), UINT32_MAX)));
    ++stats->messages;
    stats->bytes += size;
  }
}

// Prints the progress line until aborted.
Task<void> report_progress(Instant start, const Stats* stats, bool tty) {
  pollux::Interval ticks = pollux::interval(tty ? absl::Milliseconds(250) : absl::Seconds(1));
  co_await ticks.tick();  // the first tick is immediate
  for (;;) {
    co_await ticks.tick();
    const double secs = absl::ToDoubleSeconds(Instant::now() - start);
    std::printf("%s%5.2f s  %10" PRIu64 " msgs  %9.0f msg/s  %7.1f MB/s  errors %" PRIu64 "%s",
                tty ? "\r" : "", secs, stats->messages, stats->messages / secs,
                stats->bytes / secs / 1e6, stats->errors, tty ? "" : "\n");
    std::fflush(stdout);
  }
}

// Runs the clients to their deadline, with the progress line beside them.
Task<void> drive_clients(SocketAddr server, Stats* stats, bool tty) {
  const Instant start = Instant::now();
  const Instant deadline = start + kRunTime;
  std::vector<pollux::JoinHandle<void>> clients;
  for (uint32_t conn = 0; conn < kConnections; ++conn) {
    clients.push_back(pollux::spawn(run_client(server, conn, deadline, stats)));
  }
  pollux::JoinHandle<void> progress = pollux::spawn(report_progress(start, stats, tty));
  for (pollux::JoinHandle<void>& client : clients) {
    auto done = co_await std::move(client);
    if (!done.ok()) stats->fail(done.status().ToString());
  }
  progress.abort();
  if (tty) std::printf("\n");
}

// Serves `listeners[i]` on runtime thread i until dropped; dropping it
// aborts every server (and so every connection).
Task<void> serve_on_every_thread(pollux::Handle rt, std::vector<pollux::net::TcpListener> listeners) {
  std::vector<pollux::JoinHandle<void>> servers;
  struct AbortAll {
    std::vector<pollux::JoinHandle<void>>* servers;
    ~AbortAll() {
      for (pollux::JoinHandle<void>& s : *servers) s.abort();
    }
  } abort_all{&servers};
  for (size_t i = 0; i < listeners.size(); ++i) {
    servers.push_back(rt.spawn_on(i, [l = std::move(listeners[i])]() mutable {
      return pollux::examples::serve_echo(std::move(l));
    }));
  }
  for (pollux::JoinHandle<void>& s : servers) (void)co_await s;
}

// The server's runtime, as --threads and --flavour ask.
absl::StatusOr<pollux::Runtime> build_server_runtime(const pollux::examples::ServerFlags& flags) {
  pollux::Runtime::Builder b;
  switch (flags.flavour) {
    case pollux::examples::ServerFlags::Flavour::kCurrentThread:
      b.current_thread();
      break;
    case pollux::examples::ServerFlags::Flavour::kMultiThread:
      b.multi_thread(static_cast<size_t>(flags.threads));
      break;
    case pollux::examples::ServerFlags::Flavour::kThreadPerCore:
      b.thread_per_core(static_cast<size_t>(flags.threads));
      break;
  }
  return b.enable_all().build();
}

const char* flavour_name(pollux::examples::ServerFlags::Flavour f) {
  switch (f) {
    case pollux::examples::ServerFlags::Flavour::kCurrentThread:
      return "current_thread";
    case pollux::examples::ServerFlags::Flavour::kMultiThread:
      return "multi_thread";
    case pollux::examples::ServerFlags::Flavour::kThreadPerCore:
      return "thread_per_core";
  }
  return "?";
}

uint32_t percentile_us(std::vector<uint32_t>& ns, double p) {
  if (ns.empty()) return 0;
  const size_t k = std::min(ns.size() - 1, static_cast<size_t>(p * ns.size()));
  std::nth_element(ns.begin(), ns.begin() + k, ns.end());
  return ns[k] / 1000;
}

void print_summary(Stats& stats, double secs) {
  const uint32_t p50 = percentile_us(stats.latencies_ns, 0.50);
  const uint32_t p99 = percentile_us(stats.latencies_ns, 0.99);
  const uint32_t max =
      stats.latencies_ns.empty()
          ? 0
          : *std::max_element(stats.latencies_ns.begin(), stats.latencies_ns.end()) / 1000;
  std::printf("\n");
  std::printf("  %-16s %14d\n", "connections", kConnections);
  std::printf("  %-16s %14.2f s\n", "duration", secs);
  std::printf("  %-16s %14" PRIu64 "\n", "messages", stats.messages);
  std::printf("  %-16s %14" PRIu64 "   (each sent, echoed and compared)\n", "bytes", stats.bytes);
  std::printf("  %-16s %14.0f\n", "messages/s", stats.messages / secs);
  std::printf("  %-16s %14.1f\n", "MB/s", stats.bytes / secs / 1e6);
  std::printf("  %-16s %14u µs\n", "latency p50", p50);
  std::printf("  %-16s %14u µs\n", "latency p99", p99);
  std::printf("  %-16s %14u µs\n", "latency max", max);
  std::printf("  %-16s %14" PRIu64 "%s%s\n", "errors", stats.errors,
              stats.errors ? "   first: " : "", stats.first_error.c_str());
  std::printf("  %-16s %14" PRIu64 "   (%s)\n", "verified bytes", stats.verified_bytes,
              stats.verified_bytes == stats.bytes ? "all of them" : "NOT all of them");
}

// The two runtimes' counters side by side, totals and per message.
void print_metrics(const pollux::RuntimeMetrics& client, const pollux::RuntimeMetrics& server,
                   uint64_t messages) {
  const pollux::WorkerMetrics c = client.total();
  const pollux::WorkerMetrics s = server.total();
  const double per = messages > 0 ? 1.0 / static_cast<double>(messages) : 0;
  std::printf("\n  %-24s %14s %14s\n", "metrics", "clients", "server");
  auto row = [](const char* name, uint64_t a, uint64_t b) {
    std::printf("  %-24s %14" PRIu64 " %14" PRIu64 "\n", name, a, b);
  };
  auto ratio = [](const char* name, double a, double b) {
    std::printf("  %-24s %14.2f %14.2f\n", name, a, b);
  };
  std::printf("  %-24s %14s %14s\n", "runtime", client.flavour.c_str(), server.flavour.c_str());
  row("workers", client.workers, server.workers);
  row("tasks spawned", client.spawns_total, server.spawns_total);
  row("task polls", c.polls, s.polls);
  ratio("  per message", c.polls * per, s.polls * per);
  row("kernel entries", c.kernel_entries, s.kernel_entries);
  ratio("  per message", c.kernel_entries * per, s.kernel_entries * per);
  row("I/O ops submitted", c.ops_submitted, s.ops_submitted);
  ratio("  per message", c.ops_submitted * per, s.ops_submitted * per);
  row("I/O ops completed", c.ops_completed, s.ops_completed);
  row("I/O ops cancelled", c.ops_cancelled, s.ops_cancelled);
  row("parks", c.parks, s.parks);
  row("steals (tasks)", c.steals, s.steals);
  row("LIFO-slot polls", c.lifo_slot_hits, s.lifo_slot_hits);
  row("budget-forced yields", c.budget_forced_yields, s.budget_forced_yields);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "an echo server and 64 checking clients in one process for 3 s; "
      "--threads=N --flavour=multi_thread|thread_per_core run the server on N threads");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<pollux::examples::ServerFlags> flags =
      pollux::examples::server_flags_from_command_line(0);
  if (!flags.ok()) {
    std::fprintf(stderr, "demo: %s\n", std::string(flags.status().message()).c_str());
    return 2;
  }
  pollux::examples::raise_open_file_limit();
  const bool tty = ::isatty(STDOUT_FILENO) == 1;

  // The server thread: its own runtime, serving until `stop` fires.
  StopSignal stop;
  std::promise<absl::StatusOr<SocketAddr>> bound;
  std::string server_backend;  // written before `bound` is set, read after
  // Likewise; valid until `stop` fires (metrics() is read from this thread
  // while the server runs).
  pollux::Runtime* server_rt = nullptr;
  std::thread server_thread([&stop, &bound, &flags, &server_backend, &server_rt] {
    absl::StatusOr<pollux::Runtime> rt = build_server_runtime(*flags);
    if (!rt.ok()) {
      bound.set_value(rt.status());
      return;
    }
    server_backend = absl::StrCat(rt->backend().name(), " (", rt->backend().reason, ")");
    server_rt = &*rt;
    std::vector<pollux::net::TcpListener> listeners;
    pollux::net::TcpListener::Options options;
    options.reuse_port = rt->worker_count() > 1;
    SocketAddr addr = SocketAddr::ipv4_loopback(0);
    for (size_t i = 0; i < rt->worker_count(); ++i) {
      absl::StatusOr<pollux::net::TcpListener> listener =
          pollux::net::TcpListener::bind(addr, options);
      if (!listener.ok()) {
        bound.set_value(listener.status());
        return;
      }
      addr = listener->local_addr();  // the others join the first one's port
      listeners.push_back(std::move(*listener));
    }
    bound.set_value(addr);
    // The stop branch comes first: select is biased. When it wins, the
    // servers are dropped, closing the listeners and every connection.
    (void)rt->block_on(
        pollux::select(stop.wait(), serve_on_every_thread(rt->handle(), std::move(listeners))));
  });  // ~Runtime: drops what is left on its threads, waits for the kernel, closes the rings

  absl::StatusOr<SocketAddr> server = bound.get_future().get();
  if (!server.ok()) {
    std::fprintf(stderr, "demo: could not start the echo server: %s\n",
                 server.status().ToString().c_str());
    server_thread.join();
    return 1;
  }
  std::printf("echo server on %s (its own %s runtime, %d thread%s); %d clients for %s on this "
              "thread\n",
              server->to_string().c_str(), flavour_name(flags->flavour), flags->threads,
              flags->threads == 1 ? "" : "s", kConnections,
              absl::FormatDuration(kRunTime).c_str());
  std::printf("I/O backend: %s\n", server_backend.c_str());
  std::fflush(stdout);

  Stats stats;
  stats.latencies_ns.reserve(1 << 20);
  pollux::RuntimeMetrics client_metrics;
  const Instant start = Instant::now();
  {
    absl::StatusOr<pollux::Runtime> rt =
        pollux::Runtime::Builder().current_thread().enable_all().build();
    if (!rt.ok()) {
      std::fprintf(stderr, "demo: could not start the client runtime: %s\n",
                   rt.status().ToString().c_str());
      stop.trigger();
      server_thread.join();
      return 1;
    }
    absl::Status finished =
        rt->block_on(pollux::timeout(drive_clients(*server, &stats, tty), kGiveUpAfter));
    if (!finished.ok()) stats.fail(absl::StrCat("clients stuck: ", finished.ToString()));
    client_metrics = rt->metrics();
  }
  const double secs = absl::ToDoubleSeconds(Instant::now() - start);
  print_summary(stats, secs);
  print_metrics(client_metrics, server_rt->metrics(), stats.messages);

  const Instant stop_at = Instant::now();
  stop.trigger();
  server_thread.join();
  std::printf(
      "\nserver stopped: listener and connections closed, runtime shut down, thread "
      "joined in %.1f ms\n",
      absl::ToDoubleMilliseconds(Instant::now() - stop_at));
  const bool ok = stats.errors == 0 && stats.messages > 0 && stats.verified_bytes == stats.bytes;
  std::printf("%s\n", ok ? "OK: every byte verified" : "FAILED");
  return ok ? 0 : 1;
}
