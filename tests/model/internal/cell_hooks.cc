// The RaceCell entry point of hooks.h: vector-clock race detection in the
// manner of FastTrack. A cell remembers its last write and, since then,
// each thread's last read. A read races with a write that it does not
// happen after; a write races with the last write and with every read it
// does not happen after. After a write the reads are forgotten: any later
// access ordered after the write is ordered after them too, and one that
// is not races with the write itself.
#include <cstdio>
#include <string>

#include "tests/model/internal/execution.h"
#include "tests/model/internal/hooks.h"
#include "tests/model/internal/report.h"

namespace pollux::model::internal {

namespace {

const char* access_name(CellAccess a) noexcept {
  switch (a) {
    case CellAccess::kRead:
      return "read";
    case CellAccess::kWrite:
      return "write";
    case CellAccess::kConstruct:
      return "construction";
    case CellAccess::kDestroy:
      return "destruction";
  }
  return "?";
}

std::string where(const CellAccessRecord& r) {
  if (r.file == nullptr) return "(constructor or destructor)";
  return std::string(short_file(r.file)) + ":" + std::to_string(r.line);
}

[[noreturn]] void report_race(const CellLink& link, const void* cell, CellAccess access,
                              SourceLoc loc, int me, const char* other_kind, int other,
                              const CellAccessRecord& other_access) {
  char address[32];
  std::snprintf(address, sizeof address, "%p", cell);
  CellAccessRecord mine{0, loc.file, loc.line};
  report_failure(FailureKind::kDataRace,
                 "cell#" + std::to_string(link.id) + " at " + address + ": " +
                     access_name(access) + " by T" + std::to_string(me) + " at " + where(mine) +
                     " and " + other_kind + " by T" + std::to_string(other) + " at " +
                     where(other_access) +
                     ": neither happens before the other (a release/acquire edge, or a lock, "
                     "is missing between them)");
}

}  // namespace

void cell_access(CellLink& link, const void* cell, CellAccess access, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = *current_execution();
  const int me = e.running_id();
  ThreadMemory& m = e.running().memory;
  // A clock value of its own, so that what happens after an earlier
  // operation of this thread is not taken to happen after this access.
  m.clock.tick(me);
  if (access == CellAccess::kConstruct || link.execution != e.number()) {
    // A new object, or one this execution has not seen: no earlier access counts.
    link = CellLink();
    link.execution = e.number();
    link.id = e.trace().add_object(ObjectKind::kCell, cell, loc);
  }
  e.record(TraceEvent{.op = access_name(access),
                      .object_kind = ObjectKind::kCell,
                      .object = link.id,
                      .loc = loc});
  if (link.writer >= 0 && link.writer != me && !m.clock.has_seen(link.writer, link.write.clock)) {
    report_race(link, cell, access, loc, me, "write", link.writer, link.write);
  }
  const CellAccessRecord now{m.clock[me], loc.file, loc.line};
  if (access == CellAccess::kRead) {
    link.reads[me] = now;
    return;
  }
  for (int u = 0; u < kMaxThreads; ++u) {
    const CellAccessRecord& r = link.reads[u];
    if (u != me && r.clock != 0 && !m.clock.has_seen(u, r.clock)) {
      report_race(link, cell, access, loc, me, "read", u, r);
    }
  }
  link.writer = static_cast<int8_t>(me);
  link.write = now;
  for (CellAccessRecord& r : link.reads) r = CellAccessRecord();
}

}  // namespace pollux::model::internal
