// The mutex, condition variable and thread entry points of hooks.h.
//
// Happens-before: unlock -> the next lock (the mutex keeps the unlocker's
// clock), spawn -> the child's first operation, the child's last ->
// join. A notify adds no edge of its own: the waiter re-acquires the
// mutex, which orders it after the notifier's unlock.
#include <string>

#include "tests/model/internal/execution.h"
#include "tests/model/internal/hooks.h"
#include "tests/model/internal/report.h"

namespace pollux::model::internal {

namespace {

void resolve(Execution& e, MutexLink& link, const void* mutex, SourceLoc loc) {
  if (link.execution == e.number()) return;
  link.execution = e.number();
  link.owner = -1;
  link.released.clear();
  link.id = e.trace().add_object(ObjectKind::kMutex, mutex, loc);
}

void resolve(Execution& e, CondVarLink& link, const void* cv, SourceLoc loc) {
  if (link.execution == e.number()) return;
  link.execution = e.number();
  link.id = e.trace().add_object(ObjectKind::kCondVar, cv, loc);
}

TraceEvent mutex_event(const char* op, const MutexLink& link, SourceLoc loc,
                       const char* note = nullptr) {
  return TraceEvent{
      .op = op, .object_kind = ObjectKind::kMutex, .object = link.id, .note = note, .loc = loc};
}

// Takes a free mutex; blocks while another thread holds it.
void acquire(Execution& e, MutexLink& link, const void* mutex, SourceLoc loc) {
  const int me = e.running_id();
  ModelThread& t = e.running();
  while (link.owner >= 0) {
    t.status = ThreadStatus::kBlockedOnMutex;
    t.waiting_for = mutex;
    t.waiting_for_object = link.id;
    t.mutex_owner = link.owner;
    t.blocked_at = loc;
    e.record(mutex_event("lock", link, loc, "blocked: held by another thread"));
    e.block();
  }
  link.owner = static_cast<int8_t>(me);
  t.memory.clock.join(link.released);
}

void release(Execution& e, MutexLink& link, const void* mutex) {
  link.owner = -1;
  link.released = e.running().memory.clock;
  for (int i = 0; i < e.thread_count(); ++i) {
    ModelThread& t = e.thread(i);
    if (t.status == ThreadStatus::kBlockedOnMutex && t.waiting_for == mutex) e.make_runnable(i);
  }
}

}  // namespace

void mutex_lock(MutexLink& link, const void* mutex, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  resolve(e, link, mutex, loc);
  if (link.owner == e.running_id()) {
    e.record(mutex_event("lock", link, loc));
    report_failure(FailureKind::kDeadlock,
                   "T" + std::to_string(e.running_id()) + " locks mutex#" +
                       std::to_string(link.id) + ", which it already holds (not re-entrant)");
  }
  acquire(e, link, mutex, loc);
  e.record(mutex_event("lock", link, loc));
}

bool mutex_try_lock(MutexLink& link, const void* mutex, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  resolve(e, link, mutex, loc);
  if (link.owner >= 0) {
    e.record(mutex_event("try_lock", link, loc, "failed"));
    return false;
  }
  acquire(e, link, mutex, loc);
  e.record(mutex_event("try_lock", link, loc, "succeeded"));
  return true;
}

void mutex_unlock(MutexLink& link, const void* mutex, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  resolve(e, link, mutex, loc);
  e.record(mutex_event("unlock", link, loc));
  if (link.owner != e.running_id()) {
    report_failure(FailureKind::kMisuse, "T" + std::to_string(e.running_id()) +
                                             " unlocks mutex#" + std::to_string(link.id) +
                                             ", which it does not hold");
  }
  release(e, link, mutex);
}

bool condvar_wait(CondVarLink& cv_link, const void* cv, MutexLink& mutex_link, const void* mutex,
                  bool timed, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  resolve(e, cv_link, cv, loc);
  resolve(e, mutex_link, mutex, loc);
  const int me = e.running_id();
  if (mutex_link.owner != me) {
    report_failure(FailureKind::kMisuse, "T" + std::to_string(me) + " waits on condvar#" +
                                             std::to_string(cv_link.id) +
                                             " without holding its mutex");
  }
  release(e, mutex_link, mutex);
  ModelThread& t = e.running();
  t.status = ThreadStatus::kWaitingOnCondVar;
  t.waiting_for = cv;
  t.waiting_for_object = cv_link.id;
  t.timed = timed;
  t.timed_out = false;
  t.wait_ticket = e.next_wait_ticket();
  t.blocked_at = loc;
  e.record(TraceEvent{.op = timed ? "wait_for" : "wait",
                      .object_kind = ObjectKind::kCondVar,
                      .object = cv_link.id,
                      .loc = loc});
  e.block();  // until a notify makes it runnable, or the checker picks its timeout
  const bool timed_out = t.timed_out;
  t.timed = false;
  t.timed_out = false;
  acquire(e, mutex_link, mutex, loc);
  e.record(TraceEvent{.op = "wait returned",
                      .object_kind = ObjectKind::kCondVar,
                      .object = cv_link.id,
                      .note = timed_out ? "timed out" : "notified",
                      .loc = loc});
  return timed_out;
}

void condvar_notify(CondVarLink& link, const void* cv, bool all, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  resolve(e, link, cv, loc);
  // Its waiters, longest-waiting first.
  int waiters[kMaxThreads];
  int n = 0;
  for (int i = 0; i < e.thread_count(); ++i) {
    const ModelThread& t = e.thread(i);
    if (t.status != ThreadStatus::kWaitingOnCondVar || t.waiting_for != cv) continue;
    int at = n++;
    for (; at > 0 && e.thread(waiters[at - 1]).wait_ticket > t.wait_ticket; --at) {
      waiters[at] = waiters[at - 1];
    }
    waiters[at] = i;
  }
  TraceEvent ev{.op = all ? "notify_all" : "notify_one",
                .object_kind = ObjectKind::kCondVar,
                .object = link.id,
                .note = n == 0 ? "no waiter" : nullptr,
                .loc = loc};
  if (all) {
    for (int i = 0; i < n; ++i) e.make_runnable(waiters[i]);
  } else if (n > 0) {
    // Which waiter a notify_one wakes is not specified: explore each,
    // the longest-waiting first.
    const uint32_t pick = n == 1 ? 0 : e.choose(ChoiceKind::kNotify, static_cast<uint32_t>(n));
    e.make_runnable(waiters[pick]);
    ev.other_thread = static_cast<int8_t>(waiters[pick]);
  }
  e.record(ev);
}

int thread_spawn(ThreadBody body, SourceLoc loc) {
  CheckerScope scope;
  return current_execution()->spawn(body, loc);
}

void thread_join(int id, SourceLoc loc) {
  CheckerScope scope;
  Execution& e = Execution::begin_operation();
  ModelThread& t = e.running();
  while (e.thread(id).status != ThreadStatus::kFinished) {
    t.status = ThreadStatus::kJoining;
    t.joining = id;
    t.blocked_at = loc;
    e.record(TraceEvent{.op = "join", .object_kind = ObjectKind::kThread,
                        .other_thread = static_cast<int8_t>(id), .note = "blocked", .loc = loc});
    e.block();
  }
  t.joining = -1;
  // Everything the child did happens before what follows the join.
  t.memory.clock.join(e.thread(id).memory.clock);
  e.record(TraceEvent{.op = "join", .object_kind = ObjectKind::kThread,
                      .other_thread = static_cast<int8_t>(id), .loc = loc});
}

void thread_yield(SourceLoc loc) {
  CheckerScope scope;
  current_execution()->yield_point(loc);
}

void thread_not_joined(int id) {
  report_failure(FailureKind::kMisuse, "the detail::Thread of model thread T" +
                                           std::to_string(id) +
                                           " was destroyed without join() (std::thread would "
                                           "call std::terminate)");
}

}  // namespace pollux::model::internal
