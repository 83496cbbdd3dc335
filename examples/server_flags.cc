#include "examples/server_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

ABSL_FLAG(int, port, -1, "TCP port to listen on; 0 picks a free one (default: the server's own)");
ABSL_FLAG(std::string, addr, "127.0.0.1", "numeric address to listen on");
ABSL_FLAG(int, threads, 1, "runtime threads");
ABSL_FLAG(std::string, flavour, "",
          "runtime flavour: current_thread (default for --threads=1), multi_thread (default "
          "for more) or thread_per_core");
ABSL_FLAG(bool, port_per_thread, false,
          "thread i listens on --port + i (with --port=0: a free port each) and the server "
          "prints one 'listening on' line per thread; default: all threads share --port "
          "(SO_REUSEPORT)");
ABSL_FLAG(bool, cpu_affinity, false,
          "pin thread i to the i-th CPU of the affinity mask the process started with");

ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(10),
          "close a connection whose request head is not complete this long after the "
          "connection opened or the head's first byte arrived (0: no limit)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(75),
          "close a keep-alive connection idle this long (0: no limit)");
ABSL_FLAG(absl::Duration, write_timeout, absl::Seconds(30),
          "close a connection whose peer does not take a batch of output within this long "
          "(0: no limit)");
ABSL_FLAG(absl::Duration, grace, absl::Seconds(5),
          "after SIGINT/SIGTERM, how long open connections get to finish before they are "
          "closed");

namespace pollux::examples {

absl::StatusOr<ServerFlags> parse_server_flags(int argc, char** argv, int default_port) {
  absl::SetProgramUsageMessage("serves on --addr:--port until SIGINT/SIGTERM (graceful for --grace; a second signal stops at once)");
  absl::ParseCommandLine(argc, argv);
  return server_flags_from_command_line(default_port);
}

absl::StatusOr<ServerFlags> server_flags_from_command_line(int default_port) {
  ServerFlags flags;
  flags.addr = absl::GetFlag(FLAGS_addr);
  flags.port = absl::GetFlag(FLAGS_port);
  flags.threads = absl::GetFlag(FLAGS_threads);
  if (flags.port == -1) flags.port = default_port;
  if (flags.port < 0 || flags.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port=", flags.port, ": the port must be in 0..65535 (0 picks a free one)"));
  }
  if (flags.threads < 1 || flags.threads > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads=", flags.threads, ": must be in 1..1024"));
  }
  const std::string flavour = absl::GetFlag(FLAGS_flavour);
  if (flavour.empty()) {
    flags.flavour = flags.threads == 1 ? ServerFlags::Flavour::kCurrentThread
                                       : ServerFlags::Flavour::kMultiThread;
  } else if (flavour == "current_thread") {
    flags.flavour = ServerFlags::Flavour::kCurrentThread;
  } else if (flavour == "multi_thread") {
    flags.flavour = ServerFlags::Flavour::kMultiThread;
  } else if (flavour == "thread_per_core") {
    flags.flavour = ServerFlags::Flavour::kThreadPerCore;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--flavour=", flavour, ": must be current_thread, multi_thread or thread_per_core"));
  }
  if (flags.flavour == ServerFlags::Flavour::kCurrentThread && flags.threads != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--flavour=current_thread runs on one thread; --threads=", flags.threads,
        " needs --flavour=multi_thread or thread_per_core"));
  }
  flags.port_per_thread = absl::GetFlag(FLAGS_port_per_thread);
  flags.cpu_affinity = absl::GetFlag(FLAGS_cpu_affinity);
  if (flags.port_per_thread && flags.port != 0 && flags.port + flags.threads - 1 > 65535) {
    return absl::InvalidArgumentError("--port_per_thread: --port + --threads - 1 is above 65535");
  }
  struct NamedDuration {
    const char* name;
    absl::Duration value;
    absl::Duration* field;
  };
  for (NamedDuration d : {NamedDuration{"header_timeout", absl::GetFlag(FLAGS_header_timeout),
                                        &flags.header_timeout},
                          NamedDuration{"idle_timeout", absl::GetFlag(FLAGS_idle_timeout),
                                        &flags.idle_timeout},
                          NamedDuration{"write_timeout", absl::GetFlag(FLAGS_write_timeout),
                                        &flags.write_timeout},
                          NamedDuration{"grace", absl::GetFlag(FLAGS_grace), &flags.grace}}) {
    if (d.value < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat("--", d.name, "=",
                                                     absl::FormatDuration(d.value),
                                                     ": must not be negative"));
    }
    *d.field = d.value;
  }
  return flags;
}

std::string host_port(const ServerFlags& flags) {
  const bool ipv6 = flags.addr.find(':') != std::string::npos;
  return ipv6 ? absl::StrCat("[", flags.addr, "]:", flags.port)
              : absl::StrCat(flags.addr, ":", flags.port);
}

}  // namespace pollux::examples
