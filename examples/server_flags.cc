#include "examples/server_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(int, port, -1, "TCP port to listen on; 0 picks a free one (default: the server's own)");
ABSL_FLAG(std::string, addr, "127.0.0.1", "numeric address to listen on");
ABSL_FLAG(int, threads, 1,
          "runtime threads; only 1 (the current_thread runtime) exists so far");

namespace pollux::examples {

absl::StatusOr<ServerFlags> parse_server_flags(int argc, char** argv, int default_port) {
  absl::SetProgramUsageMessage("serves on --addr:--port until killed (SIGINT/SIGTERM)");
  absl::ParseCommandLine(argc, argv);
  ServerFlags flags;
  flags.addr = absl::GetFlag(FLAGS_addr);
  flags.port = absl::GetFlag(FLAGS_port);
  flags.threads = absl::GetFlag(FLAGS_threads);
  if (flags.port == -1) flags.port = default_port;
  if (flags.port < 0 || flags.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port=", flags.port, ": the port must be in 0..65535 (0 picks a free one)"));
  }
  if (flags.threads != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--threads=", flags.threads,
        " is not supported: the multi-thread runtime is not built yet; only --threads=1 works"));
  }
  return flags;
}

std::string host_port(const ServerFlags& flags) {
  const bool ipv6 = flags.addr.find(':') != std::string::npos;
  return ipv6 ? absl::StrCat("[", flags.addr, "]:", flags.port)
              : absl::StrCat(flags.addr, ":", flags.port);
}

}  // namespace pollux::examples
