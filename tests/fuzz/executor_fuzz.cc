// Fuzz target: LocalExecutor's spawn / wake / abort / join / detach
// sequence (executor/local_executor.h) against a model.
//
// Eight task slots run a Probe future the harness steers: complete it, make
// its next poll throw, make it wake itself once (a yield), wake it
// spuriously. Handles are polled from outside with their own waker, aborted
// or dropped (detached). The model knows which tasks are notified and in
// which order. Properties, after every run_until_idle():
// - exactly the notified tasks were polled, once per notification, in FIFO
//   order of notification (a self-wake queues at the back); a task that was
//   not woken is not polled; the return value is the number of task runs
//   (an aborted task's run drops its future without a poll);
// - a future is dropped exactly once: when it returned Ready or threw, when
//   it was aborted (at its next scheduling point), or with the executor;
// - pending_tasks() counts the unfinished tasks;
// - a handle is Ready iff its task finished, with the value, cancelled
//   (aborted before it completed) or the panic; a join waker that saw
//   Pending is woken when the task finishes;
// - after the executor is dropped, every unfinished task's handle yields
//   cancelled, and every value and waker clone is released.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "executor/join_handle.h"
#include "executor/local_executor.h"
#include "future/context.h"
#include "future/poll.h"
#include "future/testing/counted.h"
#include "future/testing/counting_waker.h"
#include "future/waker.h"
#include "tests/fuzz/byte_reader.h"

namespace {

using pollux::Budget;
using pollux::Context;
using pollux::JoinHandle;
using pollux::JoinResult;
using pollux::LocalExecutor;
using pollux::Pending;
using pollux::Poll;
using pollux::Ready;
using pollux::Waker;
using pollux::fuzz::ByteReader;
using pollux::testing::Counted;
using pollux::testing::CountingWaker;

[[noreturn]] void fail(const char* what, int line) {
  std::fprintf(stderr, "executor_fuzz: %s (line %d)\n", what, line);
  std::abort();
}
#define CHECK(cond)                     \
  do {                                  \
    if (!(cond)) fail(#cond, __LINE__); \
  } while (false)

constexpr int kSlots = 8;

// What the harness and a Probe future share.
struct ProbeState {
  int id = 0;
  int polls = 0;
  bool dropped = false;
  bool complete = false;  // the next poll returns Ready(value)
  bool throw_next = false;
  bool yield_next = false;  // the next poll wakes itself and returns Pending
  int value = 0;
  Waker waker;  // of the last Pending poll
};

std::vector<int>* g_poll_log = nullptr;

class Probe {
 public:
  using Output = Counted;
  explicit Probe(std::shared_ptr<ProbeState> s) : s_(std::move(s)) {}
  Probe(Probe&&) noexcept = default;
  ~Probe() {
    if (!s_) return;
    CHECK(!s_->dropped);
    s_->dropped = true;
    s_->waker.reset();
  }
  Poll<Counted> poll(Context& cx) {
    CHECK(!s_->dropped);
    ++s_->polls;
    g_poll_log->push_back(s_->id);
    if (s_->throw_next) {
      s_->throw_next = false;
      throw std::runtime_error("probe");
    }
    if (s_->complete) return Ready<Counted>(Counted(s_->value));
    if (s_->yield_next) {
      s_->yield_next = false;
      cx.waker().wake_by_ref();
      return Pending{};
    }
    s_->waker = cx.waker();
    return Pending{};
  }

 private:
  std::shared_ptr<ProbeState> s_;
};

enum class Fate { kRunning, kValue, kCancelled, kPanic };

struct Slot {
  std::shared_ptr<ProbeState> state;
  std::optional<JoinHandle<Counted>> handle;
  CountingWaker join_cw;
  int64_t join_seen = 0;
  bool join_pending = false;  // a handle poll returned Pending since
  bool aborted = false;       // abort() before it finished
  Fate fate = Fate::kRunning;
  bool notified = false;  // queued to run (model)
  bool yield_armed = false;
  bool throw_armed = false;
};

struct Model {
  Slot slots[kSlots];
  std::deque<int> queue;  // notified tasks, in order
  void notify(int k) {
    Slot& s = slots[k];
    if (s.notified || s.fate != Fate::kRunning || !s.state) return;
    s.notified = true;
    queue.push_back(k);
  }
};

// Polls a handle from outside with the slot's join waker and checks the
// result against the model.
void poll_handle(Slot& s) {
  Budget budget = Budget::unlimited();
  Waker w = s.join_cw.waker();
  Context cx(w, budget);
  s.join_seen = s.join_cw.wakes();
  Poll<JoinResult<Counted>> p = s.handle->poll(cx);
  if (p.is_pending()) {
    CHECK(s.fate == Fate::kRunning);
    s.join_pending = true;
    return;
  }
  JoinResult<Counted> r = std::move(p).value();
  switch (s.fate) {
    case Fate::kRunning:
      fail("a handle was Ready before its task finished", __LINE__);
    case Fate::kValue:
      CHECK(r.ok());
      CHECK(r.value().value == s.state->value);
      break;
    case Fate::kCancelled:
      CHECK(r.is_cancelled());
      break;
    case Fate::kPanic:
      CHECK(r.is_panic());
      break;
  }
  s.handle.reset();
  s.join_pending = false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  Counted::reset();
  std::vector<int> log;
  g_poll_log = &log;
  Model m;
  int next_id = 0;
  {
    LocalExecutor ex;
    for (int ops = 0; !in.empty() && ops < 300; ++ops) {
      const uint8_t op = in.byte();
      const int k = (op >> 4) % kSlots;
      Slot& s = m.slots[k];
      switch (op % 9) {
        case 0: {  // spawn into a free slot
          if (s.state && (s.fate == Fate::kRunning || s.handle)) break;
          s.state = std::make_shared<ProbeState>();
          s.state->id = next_id++;
          s.state->value = 1000 + s.state->id;
          s.handle.emplace(ex.spawn_local(Probe(s.state)));
          s.aborted = s.join_pending = s.notified = false;
          s.yield_armed = s.throw_armed = false;
          s.fate = Fate::kRunning;
          s.join_seen = s.join_cw.wakes();
          m.notify(k);
          break;
        }
        case 1:  // complete the future and wake it
          if (!s.state || s.fate != Fate::kRunning || s.state->dropped) break;
          s.state->complete = true;
          if (s.state->waker) {
            s.state->waker.wake_by_ref();
            m.notify(k);
          }
          break;
        case 2:  // a spurious wake
          if (!s.state || !s.state->waker) break;
          s.state->waker.wake_by_ref();
          m.notify(k);
          break;
        case 3:  // arm a throw or a yield for the next poll
          if (!s.state || s.fate != Fate::kRunning || s.state->dropped) break;
          if (op & 0x80) {
            s.state->throw_next = s.throw_armed = true;
          } else {
            s.state->yield_next = s.yield_armed = true;
          }
          break;
        case 4:  // abort
          if (!s.handle) break;
          s.handle->abort();
          if (s.fate == Fate::kRunning && !s.aborted) {
            s.aborted = true;
            m.notify(k);
          }
          break;
        case 5:  // detach
          s.handle.reset();
          s.join_pending = false;
          break;
        case 6:  // join from outside
          if (!s.handle) break;
          {
            const bool woken = s.join_cw.wakes() > s.join_seen;
            const bool was_pending = s.join_pending;
            poll_handle(s);
            // A handle that was not woken does not become Ready.
            if (was_pending && !woken) CHECK(s.join_pending);
          }
          break;
        case 7:
        case 8: {  // run, and compare with the model
          std::vector<int> expected;
          size_t polls = 0;
          while (!m.queue.empty()) {
            const int j = m.queue.front();
            m.queue.pop_front();
            Slot& t = m.slots[j];
            t.notified = false;
            ++polls;  // a run of the task, also one that only drops it
            if (t.aborted) {  // dropped without a poll
              t.fate = Fate::kCancelled;
              continue;
            }
            expected.push_back(t.state->id);
            if (t.throw_armed) {
              t.throw_armed = false;
              t.fate = Fate::kPanic;
            } else if (t.state->complete) {
              t.fate = Fate::kValue;
            } else if (t.yield_armed) {
              t.yield_armed = false;
              m.notify(j);
            }
          }
          log.clear();
          const size_t ran = ex.run_until_idle();
          CHECK(log == expected);
          CHECK(ran == polls);
          break;
        }
      }
      size_t unfinished = 0;
      for (int j = 0; j < kSlots; ++j) {
        Slot& t = m.slots[j];
        if (!t.state) continue;
        unfinished += t.fate == Fate::kRunning;
        CHECK(t.state->dropped == (t.fate != Fate::kRunning));
        if (t.join_pending && t.fate != Fate::kRunning) CHECK(t.join_cw.wakes() > t.join_seen);
      }
      CHECK(ex.pending_tasks() == unfinished);
    }
    log.clear();
  }
  // The executor is gone: every unfinished future was dropped with it.
  for (Slot& s : m.slots) {
    if (!s.state) continue;
    CHECK(s.state->dropped);
    if (s.fate == Fate::kRunning) s.fate = Fate::kCancelled;
    if (s.handle) poll_handle(s);
    s.state->waker.reset();
  }
  for (Slot& s : m.slots) {
    s.handle.reset();
    CHECK(s.join_cw.live() == 0);
  }
  CHECK(Counted::live() == 0);
  g_poll_log = nullptr;
  return 0;
}
