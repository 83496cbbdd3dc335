#include "runtime/metrics.h"

#include <string_view>

#include "absl/strings/str_cat.h"

namespace pollux {

WorkerMetrics RuntimeMetrics::total() const {
  WorkerMetrics t;
  for (const WorkerMetrics& w : per_worker) {
    t.polls += w.polls;
    t.spawns += w.spawns;
    t.steals += w.steals;
    t.steal_operations += w.steal_operations;
    t.parks += w.parks;
    t.lifo_slot_hits += w.lifo_slot_hits;
    t.budget_forced_yields += w.budget_forced_yields;
    t.local_queue_depth += w.local_queue_depth;
    t.inject_queue_depth += w.inject_queue_depth;
    t.ops_submitted += w.ops_submitted;
    t.ops_completed += w.ops_completed;
    t.ops_cancelled += w.ops_cancelled;
    t.kernel_entries += w.kernel_entries;
    t.eagain_retries += w.eagain_retries;
    t.leaked_ops += w.leaked_ops;
  }
  return t;
}

namespace {

// A label value with \, " and newline escaped, as the format requires.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void family(std::string& out, const char* name, const char* type,
            const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// One per-worker family: a sample for each worker.
template <class Get>
void worker_family(std::string& out, const RuntimeMetrics& m, const char* name,
                const char* type, const char* help, bool with_backend, Get get) {
  family(out, name, type, help);
  const std::string backend = label_value(m.backend);
  for (size_t i = 0; i < m.per_worker.size(); ++i) {
    absl::StrAppend(&out, name, "{worker=\"", i, "\"");
    if (with_backend) absl::StrAppend(&out, ",backend=\"", backend, "\"");
    absl::StrAppend(&out, "} ", get(m.per_worker[i]), "\n");
  }
}

}  // namespace

std::string RuntimeMetrics::to_prometheus() const {
  std::string out;
  family(out, "pollux_runtime_info", "gauge", "The runtime's flavour and I/O backend (always 1).");
  absl::StrAppend(&out, "pollux_runtime_info{flavour=\"", label_value(flavour), "\",backend=\"",
                  label_value(backend), "\"} 1\n");
  auto single = [&](const char* name, const char* type, const char* help,
                    uint64_t v) {
    family(out, name, type, help);
    absl::StrAppend(&out, name, " ", v, "\n");
  };
  single("pollux_workers", "gauge", "Worker (core) threads.", workers);
  single("pollux_alive_tasks", "gauge", "Tasks spawned and not yet complete.", alive_tasks);
  single("pollux_spawns_total", "counter", "Tasks spawned onto the runtime.", spawns_total);
  single("pollux_inject_queue_depth", "gauge",
         "Tasks in the inject queue (thread_per_core, current_thread: summed over workers).",
         inject_queue_depth);
  single("pollux_blocking_threads", "gauge", "Threads of the blocking pool.", blocking_threads);
  single("pollux_blocking_idle_threads", "gauge", "Blocking-pool threads waiting for work.",
         blocking_idle_threads);
  single("pollux_blocking_queue_depth", "gauge", "Blocking jobs waiting for a thread.",
         blocking_queue_depth);

  using W = WorkerMetrics;
  worker_family(out, *this, "pollux_worker_polls_total", "counter", "Task polls.", false,
                [](const W& w) { return w.polls; });
  worker_family(out, *this, "pollux_worker_spawns_total", "counter",
                "Tasks spawned by (or adopted on) the worker.", false,
                [](const W& w) { return w.spawns; });
  worker_family(out, *this, "pollux_worker_steals_total", "counter",
                "Tasks stolen from other workers.", false, [](const W& w) { return w.steals; });
  worker_family(out, *this, "pollux_worker_steal_operations_total", "counter",
                "Steals that took at least one task.", false,
                [](const W& w) { return w.steal_operations; });
  worker_family(out, *this, "pollux_worker_parks_total", "counter",
                "Times the worker parked with nothing to run.", false,
                [](const W& w) { return w.parks; });
  worker_family(out, *this, "pollux_worker_lifo_slot_hits_total", "counter",
                "Polls of the task in the LIFO slot.", false,
                [](const W& w) { return w.lifo_slot_hits; });
  worker_family(out, *this, "pollux_worker_budget_forced_yields_total", "counter",
                "Task polls that yielded because the coop budget was spent.", false,
                [](const W& w) { return w.budget_forced_yields; });
  worker_family(out, *this, "pollux_worker_local_queue_depth", "gauge",
                "Tasks in the worker's run queues.", false,
                [](const W& w) { return w.local_queue_depth; });
  worker_family(out, *this, "pollux_worker_inject_queue_depth", "gauge",
                "Tasks other threads queued for the worker, not yet taken.", false,
                [](const W& w) { return w.inject_queue_depth; });
  worker_family(out, *this, "pollux_worker_ops_submitted_total", "counter",
                "I/O operations started.", true, [](const W& w) { return w.ops_submitted; });
  worker_family(out, *this, "pollux_worker_ops_completed_total", "counter",
                "I/O operations that delivered their result.", true,
                [](const W& w) { return w.ops_completed; });
  worker_family(out, *this, "pollux_worker_ops_cancelled_total", "counter",
                "I/O operations cancelled before their result was taken.", true,
                [](const W& w) { return w.ops_cancelled; });
  worker_family(out, *this, "pollux_worker_kernel_entries_total", "counter",
                "Kernel entries (io_uring_enter or epoll_wait calls).", true,
                [](const W& w) { return w.kernel_entries; });
  worker_family(out, *this, "pollux_worker_eagain_retries_total", "counter",
                "EAGAIN results retried after readiness.", true,
                [](const W& w) { return w.eagain_retries; });
  worker_family(out, *this, "pollux_worker_leaked_ops_total", "counter",
                "Operations left in the kernel at shutdown (memory kept).", true,
                [](const W& w) { return w.leaked_ops; });
  return out;
}

}  // namespace pollux
