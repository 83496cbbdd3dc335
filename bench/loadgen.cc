// loadgen: closed-loop TCP load generator for the macro benchmarks
// (bench/compare.sh). Written on raw liburing, not on pollux, so the
// client's cost does not depend on the runtime being measured.
//
//   loadgen --port=PORT [--addr=127.0.0.1] [--mode=echo|http] [--conns=50]
//           [--size=64] [--depth=1] [--warmup=1] [--duration=5] [--cpu=-1]
//   loadgen --ports=P0,P1 --threads=2 --cpu=0,1 ...
//
// --ports spreads the connections round robin over several ports of
// --addr: connection i goes to the (i mod K)-th of the K ports, so with
// --conns a multiple of K every port gets exactly --conns / K (a server run
// with --port_per_thread thus gets the same number of connections on every
// thread, which SO_REUSEPORT's hash does not promise).
// --threads=T runs T client threads, each with a ring of its own, thread t
// driving the t-th contiguous block of connections (connections
// [t*conns/T, (t+1)*conns/T)); --cpu pins thread t to the t-th CPU of its
// comma-separated list (one entry per thread; -1: no pinning). All threads
// share one timeline, starting once every thread has connected.
//
// Each connection keeps --depth requests in flight: echo sends --size bytes
// derived from (connection id, sequence number), http sends kHelloRequest.
// Every response byte is compared with what is expected (the same bytes for
// echo, kHelloResponse for http); a mismatch, an early close or a socket
// error counts one error and stops that connection. Latency is measured per
// request, from when it is queued to when its last byte is verified.
//
// Timeline: --warmup seconds not counted, then --duration seconds measured
// (msgs, msgs_per_sec and latencies count responses completed inside that
// window), then no new requests and up to 2 s for the ones in flight; a
// connection still waiting after that counts one error. So a server that
// stops answering makes loadgen exit after warmup + duration + 2 s.
//
// Output: a human summary, then one machine-readable line
//   RESULT mode=echo conns=50 size=64 msgs=N secs=S msgs_per_sec=X p50_us=A
//          p99_us=B errors=E total_msgs=T total_secs=W client_cpu_secs=C
//          threads=1 port_msgs=N0,N1
// where total_msgs counts every verified response (warmup and drain too),
// total_secs is the whole run after connecting, for per-message costs
// measured across the process (compare.sh divides server CPU by it), and
// client_cpu_secs is loadgen's own CPU time, all threads' (near
// threads * total_secs: the client, not the server, is the bottleneck);
// port_msgs splits msgs by port, in --ports order.
// Exit status: 0, or 1 when errors > 0 or msgs == 0 (2 for bad flags).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/raw_server_common.h"
#include "examples/http_wire.h"

ABSL_FLAG(int, port, 0, "server port (this or --ports is required)");
ABSL_FLAG(std::string, ports, "",
          "comma-separated server ports, instead of --port: connection i goes to the "
          "(i mod K)-th of the K ports");
ABSL_FLAG(std::string, addr, "127.0.0.1", "server address (numeric)");
ABSL_FLAG(std::string, mode, "echo", "echo or http");
ABSL_FLAG(int, conns, 50, "connections");
ABSL_FLAG(int, size, 64, "echo message bytes (http sends kHelloRequest)");
ABSL_FLAG(int, depth, 1, "requests in flight per connection");
ABSL_FLAG(double, warmup, 1, "seconds run before the measured window, not counted");
ABSL_FLAG(double, duration, 5, "measured seconds");
ABSL_FLAG(int, threads, 1,
          "client threads, each with its own ring; thread t drives the t-th contiguous block "
          "of connections");
ABSL_FLAG(std::string, cpu, "-1",
          "pin client thread t to the t-th CPU of this comma-separated list (one per "
          "thread); -1: no pinning");

namespace {

namespace http = pollux::examples::http;
using Clock = std::chrono::steady_clock;
using pollux::bench::die;

// Parses a comma-separated list of integers in [lo, hi]; false when malformed.
bool parse_int_list(const std::string& text, long lo, long hi, std::vector<int>* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
    out->push_back(static_cast<int>(v));
    pos = comma + 1;
  }
  return !out->empty();
}

constexpr auto kDrainTimeout = std::chrono::seconds(2);
constexpr size_t kRecvBytes = 16 * 1024;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

// Appends echo message `seq` of connection `conn`: `size` pseudo-random bytes
// seeded by both, so a reordered, duplicated or foreign message mismatches.
void append_echo_message(uint32_t conn, uint64_t seq, size_t size, std::string* out) {
  uint64_t x = (uint64_t{conn} << 40) ^ seq;
  size_t start = out->size();
  out->resize(start + size);
  for (size_t i = 0; i < size; i += 8) {
    x = splitmix64(x);
    std::memcpy(out->data() + start + i, &x, std::min<size_t>(8, size - i));
  }
}

struct Conn {
  int fd = -1;
  uint32_t id = 0;    // across every thread: seeds echo messages, names it in errors
  uint32_t slot = 0;  // index in its LoadGenerator's conns_, in user_data
  uint32_t port_index = 0;
  uint64_t next_seq = 0;
  bool alive = true;

  std::string queued;   // requests not yet handed to a send
  std::string sending;  // the in-flight send's bytes; [sent, size) remain
  size_t sent = 0;
  bool send_in_flight = false;

  std::string expected;  // response bytes still due; [verified, size) remain
  size_t verified = 0;
  struct Outstanding {
    size_t end;  // offset in `expected` of the response's last byte + 1
    Clock::time_point queued_at;
  };
  std::deque<Outstanding> outstanding;
  std::vector<char> in = std::vector<char>(kRecvBytes);
};

struct Stats {
  uint64_t msgs = 0;        // completed inside the measured window
  uint64_t total_msgs = 0;  // every verified response
  uint64_t errors = 0;
  std::vector<uint32_t> latencies_ns;  // of `msgs`
  std::vector<uint64_t> port_msgs;     // `msgs` by port index

  void add(const Stats& other) {
    msgs += other.msgs;
    total_msgs += other.total_msgs;
    errors += other.errors;
    latencies_ns.insert(latencies_ns.end(), other.latencies_ns.begin(), other.latencies_ns.end());
    port_msgs.resize(std::max(port_msgs.size(), other.port_msgs.size()));
    for (size_t i = 0; i < other.port_msgs.size(); ++i) port_msgs[i] += other.port_msgs[i];
  }
};

class LoadGenerator {
 public:
  LoadGenerator(bool echo, size_t size, int depth) : echo_(echo), size_(size), depth_(depth) {
    pollux::bench::init_ring(&ring_, 1024);
  }
  // Cancels whatever is still in flight (the sockets are closed by run()).
  ~LoadGenerator() { io_uring_queue_exit(&ring_); }
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Connects connections first_id .. first_id + count - 1, connection i to
  // addr:ports[i % ports.size()], with blocking connect() (setup is not
  // measured); a failure is fatal.
  void connect_all(const std::string& addr, const std::vector<int>& ports, int first_id,
                   int count) {
    std::vector<sockaddr_storage> storage(ports.size());
    socklen_t len = 0;
    for (size_t p = 0; p < ports.size(); ++p) {
      len = pollux::bench::parse_address(addr, ports[p], &storage[p]);
      if (len == 0) {
        std::fprintf(stderr, "--addr=%s is not a numeric IPv4/IPv6 address\n", addr.c_str());
        std::exit(2);
      }
    }
    stats_.port_msgs.assign(ports.size(), 0);
    conns_.resize(static_cast<size_t>(count));
    alive_ = count;
    for (int i = 0; i < count; ++i) {
      Conn& c = conns_[static_cast<size_t>(i)];
      c.id = static_cast<uint32_t>(first_id + i);
      c.slot = static_cast<uint32_t>(i);
      c.port_index = c.id % static_cast<uint32_t>(ports.size());
      const sockaddr_storage& to = storage[c.port_index];
      c.fd = ::socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c.fd < 0) die("socket", errno);
      if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&to), len) != 0) {
        die("connect", errno);
      }
      int one = 1;  // requests go out when queued, not when Nagle allows
      ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
  }

  // Runs warmup, the measured window and the drain, on the timeline that
  // starts at `start`; returns the counts.
  Stats run(Clock::time_point start, Clock::duration warmup, Clock::duration duration) {
    start_ = start;
    window_start_ = start_ + warmup;
    window_end_ = window_start_ + duration;
    const Clock::time_point drain_deadline = window_end_ + kDrainTimeout;
    for (Conn& c : conns_) {
      for (int i = 0; i < depth_; ++i) queue_request(c, start_);
      flush(c);
      arm_recv(c);
    }
    for (;;) {
      Clock::time_point now = Clock::now();
      if (now >= drain_deadline || alive_ == 0) break;
      if (now >= window_end_ && !anything_outstanding()) break;
      auto wait = (now < window_end_ ? window_end_ : drain_deadline) - now;
      auto wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
      __kernel_timespec ts;
      ts.tv_sec = wait_ns / 1000000000;
      ts.tv_nsec = wait_ns % 1000000000;
      io_uring_cqe* first;
      int ret = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &ts, nullptr);
      if (ret < 0 && ret != -ETIME && ret != -EINTR) die("io_uring_submit_and_wait_timeout", -ret);
      now = Clock::now();  // one timestamp per batch of completions
      unsigned head;
      unsigned reaped = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++reaped;
        Conn& c = conns_[cqe->user_data >> 1];
        if (cqe->user_data & 1) {
          on_send(c, cqe->res);
        } else {
          on_recv(c, cqe->res, now);
        }
      }
      io_uring_cq_advance(&ring_, reaped);
    }
    end_ = Clock::now();
    for (Conn& c : conns_) {
      if (c.alive && !c.outstanding.empty()) {
        fail(c, "no response within 2 s after the run ended");
      }
    }
    for (Conn& c : conns_) ::close(c.fd);
    return std::move(stats_);
  }

  Clock::time_point end() const { return end_; }

 private:
  bool anything_outstanding() const {
    for (const Conn& c : conns_) {
      if (c.alive && (!c.outstanding.empty() || c.send_in_flight)) return true;
    }
    return false;
  }

  void queue_request(Conn& c, Clock::time_point now) {
    if (echo_) {
      size_t start = c.queued.size();
      append_echo_message(c.id, c.next_seq, size_, &c.queued);
      c.expected.append(c.queued, start, size_);
    } else {
      c.queued.append(http::kHelloRequest.data(), http::kHelloRequest.size());
      c.expected.append(http::kHelloResponse.data(), http::kHelloResponse.size());
    }
    ++c.next_seq;
    c.outstanding.push_back({c.expected.size(), now});
  }

  // Starts a send of everything queued unless one is already in flight.
  void flush(Conn& c) {
    if (c.send_in_flight || c.queued.empty()) return;
    c.sending.swap(c.queued);
    c.queued.clear();
    c.sent = 0;
    arm_send(c);
  }

  void arm_send(Conn& c) {
    io_uring_sqe* sqe = pollux::bench::get_sqe(&ring_);
    io_uring_prep_send(sqe, c.fd, c.sending.data() + c.sent, c.sending.size() - c.sent,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, uint64_t{c.slot} << 1 | 1);
    c.send_in_flight = true;
  }

  void arm_recv(Conn& c) {
    io_uring_sqe* sqe = pollux::bench::get_sqe(&ring_);
    io_uring_prep_recv(sqe, c.fd, c.in.data(), c.in.size(), 0);
    io_uring_sqe_set_data64(sqe, uint64_t{c.slot} << 1);
  }

  void fail(Conn& c, const char* why) {
    if (!c.alive) return;
    c.alive = false;
    --alive_;
    ++stats_.errors;
    std::fprintf(stderr, "loadgen: connection %u: %s (after %llu requests)\n", c.id, why,
                 static_cast<unsigned long long>(c.next_seq));
    ::shutdown(c.fd, SHUT_RDWR);  // ends its operations in flight
  }

  void on_send(Conn& c, int res) {
    c.send_in_flight = false;
    if (!c.alive) return;
    if (res < 0) return fail(c, std::strerror(-res));
    c.sent += static_cast<size_t>(res);
    if (c.sent < c.sending.size()) return arm_send(c);
    flush(c);
  }

  void on_recv(Conn& c, int res, Clock::time_point now) {
    if (!c.alive) return;
    if (res == 0) return fail(c, "server closed the connection");
    if (res < 0) return fail(c, std::strerror(-res));
    const auto n = static_cast<size_t>(res);
    if (n > c.expected.size() - c.verified) return fail(c, "more bytes than requested");
    if (std::memcmp(c.in.data(), c.expected.data() + c.verified, n) != 0) {
      return fail(c, "response bytes differ from the expected ones");
    }
    c.verified += n;
    int completed = 0;
    while (!c.outstanding.empty() && c.outstanding.front().end <= c.verified) {
      complete(c, c.outstanding.front().queued_at, now);
      c.outstanding.pop_front();
      ++completed;
    }
    // Forget the verified bytes so `expected` holds only what is still due.
    c.expected.erase(0, c.verified);
    for (Conn::Outstanding& o : c.outstanding) o.end -= c.verified;
    c.verified = 0;
    if (now < window_end_) {  // closed loop: one response in, one request out
      for (int i = 0; i < completed; ++i) queue_request(c, now);
    }
    flush(c);
    arm_recv(c);
  }

  void complete(const Conn& c, Clock::time_point queued_at, Clock::time_point now) {
    ++stats_.total_msgs;
    if (now < window_start_ || now >= window_end_) return;
    ++stats_.msgs;
    ++stats_.port_msgs[c.port_index];
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - queued_at).count();
    stats_.latencies_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(ns, UINT32_MAX)));
  }

  const bool echo_;
  const size_t size_;
  const int depth_;
  io_uring ring_;
  std::vector<Conn> conns_;
  int alive_ = 0;  // connections not failed
  Stats stats_;
  Clock::time_point start_, window_start_, window_end_, end_;
};

// The q-quantile (0..1) of `v` in microseconds; reorders v. 0 when empty.
double quantile_us(std::vector<uint32_t>& v, double q) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "closed-loop load on --addr:--port (echo or http), every reply verified; "
      "the last line is a machine-readable RESULT");
  absl::ParseCommandLine(argc, argv);
  const long port = absl::GetFlag(FLAGS_port);
  const std::string ports_flag = absl::GetFlag(FLAGS_ports);
  const std::string addr = absl::GetFlag(FLAGS_addr);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const long conns = absl::GetFlag(FLAGS_conns);
  const long size = absl::GetFlag(FLAGS_size);
  const long depth = absl::GetFlag(FLAGS_depth);
  const double duration = absl::GetFlag(FLAGS_duration);
  const double warmup = absl::GetFlag(FLAGS_warmup);
  const long threads = absl::GetFlag(FLAGS_threads);
  const std::string cpu_flag = absl::GetFlag(FLAGS_cpu);
  std::vector<int> ports;
  const bool ports_ok = ports_flag.empty() ? (port > 0 && port <= 65535)
                                           : parse_int_list(ports_flag, 1, 65535, &ports);
  if (ports_flag.empty()) ports.push_back(static_cast<int>(port));
  std::vector<int> cpus;
  const bool cpus_ok = cpu_flag == "-1" || (parse_int_list(cpu_flag, 0, CPU_SETSIZE - 1, &cpus) &&
                                            static_cast<long>(cpus.size()) == threads);
  if (!ports_ok || (mode != "echo" && mode != "http") || conns <= 0 || conns > 100000 ||
      size <= 0 || depth <= 0 || depth > 1000 || duration <= 0 || warmup < 0 || threads <= 0 ||
      threads > conns || threads > 256 || !cpus_ok) {
    std::fprintf(stderr,
                 "loadgen: need --port in 1..65535 or --ports=P0,P1,..., --mode=echo|http, "
                 "--conns, --size and --depth > 0, --duration > 0, --warmup >= 0, --threads in "
                 "1..min(256, --conns), --cpu=-1 or one CPU per thread\n");
    return 2;
  }

  const bool echo = mode == "echo";
  const size_t msg_size = echo ? static_cast<size_t>(size) : http::kHelloRequest.size();
  auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  // Every thread connects its block, then all start one timeline together.
  const auto n_threads = static_cast<size_t>(threads);
  std::vector<Stats> thread_stats(n_threads);
  std::vector<Clock::time_point> thread_ends(n_threads);
  Clock::time_point start;
  std::barrier connected(threads, [&start]() noexcept { start = Clock::now(); });
  auto client_thread = [&](size_t t) {
    if (!cpus.empty()) pollux::bench::pin_to_cpu(cpus[t]);
    LoadGenerator gen(echo, msg_size, static_cast<int>(depth));
    const long first = conns * static_cast<long>(t) / threads;
    const long last = conns * static_cast<long>(t + 1) / threads;
    gen.connect_all(addr, ports, static_cast<int>(first), static_cast<int>(last - first));
    connected.arrive_and_wait();
    thread_stats[t] = gen.run(start, seconds(warmup), seconds(duration));
    thread_ends[t] = gen.end();
  };
  std::vector<std::thread> others;
  for (size_t t = 1; t < n_threads; ++t) others.emplace_back(client_thread, t);
  client_thread(0);
  for (std::thread& t : others) t.join();
  Stats stats;
  for (const Stats& s : thread_stats) stats.add(s);
  const Clock::time_point end = *std::max_element(thread_ends.begin(), thread_ends.end());
  const double total_secs = std::chrono::duration<double>(end - start).count();

  const double secs = std::chrono::duration<double>(seconds(duration)).count();
  const double rate = static_cast<double>(stats.msgs) / secs;
  const double p50 = quantile_us(stats.latencies_ns, 0.50);
  const double p90 = quantile_us(stats.latencies_ns, 0.90);
  const double p99 = quantile_us(stats.latencies_ns, 0.99);
  const double max = quantile_us(stats.latencies_ns, 1.0);
  std::printf("%s: %ld conns x depth %ld, %zu B requests, %.1f s measured after %.1f s warmup",
              mode.c_str(), conns, depth, msg_size, secs, warmup);
  if (threads > 1) std::printf(", %ld client threads", threads);
  std::printf("\n");
  std::printf("  %llu responses verified in the window, %.0f msgs/s\n",
              static_cast<unsigned long long>(stats.msgs), rate);
  std::string port_msgs;
  for (size_t p = 0; p < ports.size(); ++p) {
    if (ports.size() > 1) {
      std::printf("  port %d: %ld conns, %llu responses in the window\n", ports[p],
                  (conns - static_cast<long>(p) + static_cast<long>(ports.size()) - 1) /
                      static_cast<long>(ports.size()),
                  static_cast<unsigned long long>(stats.port_msgs[p]));
    }
    port_msgs += (p == 0 ? "" : ",") + std::to_string(stats.port_msgs[p]);
  }
  std::printf("  latency us: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f\n", p50, p90, p99, max);
  rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  auto to_secs = [](timeval tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  const double client_cpu = to_secs(usage.ru_utime) + to_secs(usage.ru_stime);
  std::printf("  loadgen CPU: %.2f s over %.2f s\n", client_cpu, total_secs);
  std::printf("  errors: %llu\n", static_cast<unsigned long long>(stats.errors));
  std::printf(
      "RESULT mode=%s conns=%ld size=%ld msgs=%llu secs=%.3f msgs_per_sec=%.0f p50_us=%.1f "
      "p99_us=%.1f errors=%llu total_msgs=%llu total_secs=%.3f client_cpu_secs=%.3f "
      "threads=%ld port_msgs=%s\n",
      mode.c_str(), conns, echo ? size : static_cast<long>(msg_size),
      static_cast<unsigned long long>(stats.msgs), secs, rate, p50, p99,
      static_cast<unsigned long long>(stats.errors),
      static_cast<unsigned long long>(stats.total_msgs), total_secs, client_cpu, threads,
      port_msgs.c_str());
  std::fflush(stdout);
  return stats.errors > 0 || stats.msgs == 0 ? 1 : 0;
}
