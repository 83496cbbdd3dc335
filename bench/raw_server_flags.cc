#include "bench/raw_server_flags.h"

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/raw_server_common.h"

// Defined by //examples:server_flags, shared with pollux's servers.
ABSL_DECLARE_FLAG(int, port);
ABSL_DECLARE_FLAG(std::string, addr);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(bool, port_per_thread);
ABSL_DECLARE_FLAG(bool, cpu_affinity);

namespace pollux::bench {
namespace {

constexpr int kMaxThreads = 1024;

[[noreturn]] void usage_error(const char* program, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", program, why.c_str());
  std::exit(2);
}

// The CPUs of the calling thread's affinity mask, ascending.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) die("sched_getaffinity", errno);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

}  // namespace

ServerPlan listen_from_flags(int argc, char** argv, const char* program, int default_port) {
  absl::SetProgramUsageMessage("serves on --addr:--port until killed (SIGINT/SIGTERM)");
  absl::ParseCommandLine(argc, argv);
  const std::string addr = absl::GetFlag(FLAGS_addr);
  int port = absl::GetFlag(FLAGS_port);
  const int threads = absl::GetFlag(FLAGS_threads);
  const bool port_per_thread = absl::GetFlag(FLAGS_port_per_thread);
  if (port == -1) port = default_port;
  if (port < 0 || port > 65535) {
    usage_error(program, "--port=" + std::to_string(port) +
                             ": the port must be in 0..65535 (0 picks a free one)");
  }
  if (threads < 1 || threads > kMaxThreads) {
    usage_error(program, "--threads=" + std::to_string(threads) + ": must be in 1.." +
                             std::to_string(kMaxThreads));
  }
  if (port_per_thread && port != 0 && port + threads - 1 > 65535) {
    usage_error(program, "--port_per_thread: --port + --threads - 1 is above 65535");
  }

  ServerPlan plan;
  if (absl::GetFlag(FLAGS_cpu_affinity)) {
    std::vector<int> cpus = allowed_cpus();
    if (cpus.size() < static_cast<size_t>(threads)) {
      usage_error(program, "--cpu_affinity: the affinity mask has " + std::to_string(cpus.size()) +
                               " CPUs, fewer than --threads=" + std::to_string(threads));
    }
    cpus.resize(static_cast<size_t>(threads));
    plan.cpus = std::move(cpus);
  }
  if (port_per_thread) {
    for (int i = 0; i < threads; ++i) {
      Listener l = open_listener(addr, port == 0 ? 0 : port + i, false);
      announce(addr, l.port);
      plan.listen_fds.push_back(l.fd);
    }
  } else {
    // One thread: exactly the one-listener server (no SO_REUSEPORT). More:
    // the first listener picks the port (when 0), the others join it.
    const bool reuse_port = threads > 1;
    Listener first = open_listener(addr, port, reuse_port);
    plan.listen_fds.push_back(first.fd);
    for (int i = 1; i < threads; ++i) {
      plan.listen_fds.push_back(open_listener(addr, first.port, true).fd);
    }
    announce(addr, first.port);
  }
  return plan;
}

}  // namespace pollux::bench
