// The task cell: one allocation holding a spawned future, later its result.
//
// Layout: Header (hot: state word, vtable, run-queue link, scheduler), then
// Core (the future, whose storage the result reuses once it finishes), then
// Trailer (cold: owned-tasks list links and the JoinHandle's waker). The
// header is at most 64 bytes so it shares one cache line.
//
// Who touches what (see task_state.h for the bits):
// - Core (future or result): the thread that holds RUNNING, or, once
//   COMPLETE, the JoinHandle (reads/drops the result) or the last reference
//   (dealloc). A future is always destroyed on the thread that polls it.
// - Trailer.owned_*: the scheduler's OwnedTasks only.
// - Trailer.join_waker: the JoinHandle while JOIN_WAKER is clear; the task
//   side after it observed JOIN_WAKER set and the task COMPLETE.
//
// The harness below decides what happens to a task and acts on its
// executor only through Header::scheduler (the Schedule interface,
// schedule.h); it never touches an executor's fields.
//
// Everything here is private to executor/; users see JoinHandle and spawn.
#ifndef POLLUX_EXECUTOR_INTERNAL_TASK_H_
#define POLLUX_EXECUTOR_INTERNAL_TASK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "executor/context.h"
#include "executor/spawn_location.h"
#include "executor/internal/task_state.h"
#include "executor/join_result.h"
#include "future/context.h"
#include "future/future.h"
#include "future/internal/race_cell.h"
#include "future/waker.h"

namespace pollux::detail {

class Schedule;
struct Header;

struct TaskVTable {
  // Polls the future once. Returns true when it finished (Ready or threw): the
  // future is destroyed and the result stored.
  bool (*poll)(Header*, Context&);
  // Drops the future and stores a Cancelled result.
  void (*cancel)(Header*) noexcept;
  // Moves the result into `*(std::optional<JoinResult<T>>*)dst`.
  void (*read_output)(Header*, void* dst) noexcept;
  // Destroys an unclaimed result.
  void (*drop_output)(Header*) noexcept;
  // Frees the cell (last reference gone).
  void (*dealloc)(Header*) noexcept;
  // Offset of the Trailer from the Header.
  uint32_t trailer_offset;
};

struct Header {
  // The TaskPins (executor/context.h) held for the task: I/O op slots,
  // armed timer entries. While nonzero the task stays on `home`. Written
  // only on `home` (see TaskPin for the ordering). First, so that a pin
  // finds its task from its count (TaskPin::keep_waker).
  std::atomic<uint32_t> pins{0};
  // The multi_thread worker that polls it: set at the start of a poll made
  // with no pins, by the polling worker (a relaxed std::atomic_ref store, so
  // the task dump may load it from another thread). Unused by single-thread
  // executors.
  uint32_t home = 0;
  TaskState state;
  const TaskVTable* vtable;
  Header* queue_next = nullptr;  // intrusive link for whichever run queue holds the task
  Schedule* scheduler;           // one reference held for the cell's whole life
};
static_assert(sizeof(Header) <= 64, "the task header must fit one cache line");
static_assert(offsetof(Header, pins) == 0,
              "TaskPin::keep_waker finds the Header from its pin count (executor/context.h)");
// The trailer stores the spawn site by value: libstdc++'s source_location is
// one pointer to a static record, so that costs a pointer store per spawn
// (the stand-in under clang 14 is three words: spawn_location.h).
#if defined(__cpp_lib_source_location)
static_assert(sizeof(SpawnLocation) == sizeof(void*),
              "std::source_location is expected to be one pointer");
#endif

// Which of the future and the result a cell's storage holds.
enum class CellStage : uint8_t { kFuture, kResult, kConsumed };

struct Trailer {
  Header* owned_prev = nullptr;
  Header* owned_next = nullptr;
  // multi_thread: the OwnedTasks shard holding the task (at most 1024
  // workers, Runtime::Builder's limit), and its id (the spawning worker's
  // index in the high bits, DESIGN §4).
  uint16_t owned_shard = 0;
  // Cell<F>'s stage (see Cell::storage_), kept here beside owned_shard and
  // spawned_ms in one word: the smallest cells stay at 120 bytes, glibc's
  // largest fastbin request (a cell of 128 costs +40% per spawn+join in a
  // batch of 1,000, bench/executor_bench). Written by whoever holds
  // RUNNING, or by the JoinHandle once COMPLETE (task_state.h).
  RaceCell<CellStage> stage{CellStage::kFuture};
  // The spawning (or adopting) driver's tick time in ms (TickClock, mod
  // 2^32: ages up to 49 days), 0 when it had none; in what was padding.
  // For the task dump (Runtime::dump_tasks), like spawned_at below: both
  // written before the task is bound into its OwnedTasks, never after.
  uint32_t spawned_ms = 0;
  uint64_t id = 0;
  // Where the task was spawned (spawn's default source_location argument).
  SpawnLocation spawned_at;
  // Written by the JoinHandle while JOIN_WAKER is clear, read by the task
  // side once it saw JOIN_WAKER set (see task_state.h).
  RaceCell<Waker> join_waker;
};

inline Trailer* trailer_of(Header* h) noexcept {
  // SAFETY: every cell is laid out by Cell<F> below, with the Trailer at
  // vtable->trailer_offset bytes from the Header.
  return reinterpret_cast<Trailer*>(reinterpret_cast<char*>(h) + h->vtable->trailer_offset);
}

// ---- The type-independent harness (task.cc) ----

// Runs one poll of a task popped from a run queue (consumes the entry's
// reference), on the thread whose RuntimeContext names its scheduler. The
// budget is reset to Budget::kDefault first, unless `continue_budget` (a
// task run from a multi_thread worker's LIFO slot continues its waker's).
void run_task(Header* h, Budget& budget, bool continue_budget = false);
// Drops an idle task's future during executor shutdown (owner thread).
void shutdown_task(Header* h);
// As shutdown_task, for a task the caller has already taken out of its
// OwnedTasks: also releases the list's reference, which the caller now held.
void shutdown_unlisted_task(Header* h);
// Takes a task off a run queue at shutdown, before shutdown_task walks the
// owned tasks: one that is queued still RUNNING (its first poll, or a
// self-wake) is owned by the queue entry, so it is cancelled and completed
// here; any other only gives back the queue entry's reference.
void abandon_queued_task(Header* h) noexcept;
// Cancels a task no scheduler adopted (spawned onto a closed one): its
// never-polled future is dropped on the calling thread.
void cancel_unowned_task(Header* h) noexcept;
// Releases one reference, freeing the cell if it was the last.
void drop_reference(Header* h) noexcept;
// abort(): cancel the task, scheduling it if it is idle.
void abort_task(Header* h) noexcept;
// JoinHandle::poll: true when the result is ready to read (then call
// vtable->read_output); otherwise `waker` is registered.
bool join_poll_ready(Header* h, const Waker& waker) noexcept;
// JoinHandle destructor: drops the result if it is there, then the reference.
void join_drop(Header* h) noexcept;
// Counts live task cells (for tests and shutdown checks).
void count_task_alloc() noexcept;
void count_task_dealloc() noexcept;

// ---- The typed cell ----

template <Future F>
class Cell {
 public:
  using Output = stored_output_t<F>;
  using Result = JoinResult<Output>;

  // Allocates a cell owning `f` for `scheduler`. The caller then hands it to
  // the scheduler (ScheduleKind::kSpawn), which takes the cell's reference.
  static Header* allocate(F&& f, Schedule* scheduler) {
    auto* cell = new Cell(std::move(f), scheduler);
    count_task_alloc();
    return &cell->header_;
  }

 private:
  using Stage = CellStage;

  Cell(F&& f, Schedule* scheduler) {
    new (storage_) F(std::move(f));
    header_.vtable = &kVTable;
    header_.scheduler = scheduler;
    header_.state.set_queued_for_first_poll();
  }
  ~Cell() {
    if (trailer_.stage.get() == Stage::kFuture) future().~F();
    if (trailer_.stage.get() == Stage::kResult) result().~Result();
  }

  static Cell* self(Header* h) noexcept {
    // SAFETY: header_ is the first member of a standard-layout-like cell and
    // every Header* handed out by allocate() points at it.
    return reinterpret_cast<Cell*>(h);
  }

  void store(Result&& r) noexcept(std::is_nothrow_move_constructible_v<Output>) {
    new (storage_) Result(std::move(r));
    trailer_.stage.get_mut() = Stage::kResult;
  }
  void drop_future() noexcept {
    future().~F();
    trailer_.stage.get_mut() = Stage::kConsumed;
  }

  static bool poll(Header* h, Context& cx) {
    Cell* c = self(h);
    try {
      Poll<Output> p = detail::poll_unit(c->future(), cx);
      if (p.is_pending()) return false;
      Output v = std::move(p).value();
      c->drop_future();
      c->store(Result(std::move(v)));
    } catch (...) {
      // A future whose poll threw counts as finished (DESIGN §2).
      if (c->trailer_.stage.get() == Stage::kFuture) c->drop_future();
      c->store(Result(JoinError::panicked(std::current_exception())));
    }
    return true;
  }
  static void cancel(Header* h) noexcept {
    Cell* c = self(h);
    c->drop_future();
    c->store(Result(JoinError::cancelled()));
  }
  static void read_output(Header* h, void* dst) noexcept {
    Cell* c = self(h);
    static_cast<std::optional<Result>*>(dst)->emplace(std::move(c->result()));
    c->result().~Result();
    c->trailer_.stage.get_mut() = Stage::kConsumed;
  }
  static void drop_output(Header* h) noexcept {
    Cell* c = self(h);
    if (c->trailer_.stage.get() == Stage::kResult) {
      c->result().~Result();
      c->trailer_.stage.get_mut() = Stage::kConsumed;
    }
  }
  static void dealloc(Header* h) noexcept;

  static constexpr TaskVTable make_vtable();
  static const TaskVTable kVTable;

  Header header_;
  // SAFETY: storage_ holds the future while trailer_.stage is kFuture and the result
  // while it is kResult (the result reuses the future's bytes). Raw storage
  // instead of a union keeps Cell standard-layout, so offsetof is defined.
  F& future() noexcept { return *std::launder(reinterpret_cast<F*>(storage_)); }
  Result& result() noexcept { return *std::launder(reinterpret_cast<Result*>(storage_)); }
  alignas(F) alignas(Result) unsigned char storage_[sizeof(F) > sizeof(Result) ? sizeof(F)
                                                                              : sizeof(Result)];
  Trailer trailer_;
};

template <Future F>
constexpr TaskVTable Cell<F>::make_vtable() {
  return TaskVTable{&Cell::poll,
                    &Cell::cancel,
                    &Cell::read_output,
                    &Cell::drop_output,
                    &Cell::dealloc,
                    static_cast<uint32_t>(offsetof(Cell, trailer_))};
}

template <Future F>
const TaskVTable Cell<F>::kVTable = Cell<F>::make_vtable();

}  // namespace pollux::detail

#include "executor/internal/schedule.h"

namespace pollux::detail {
template <Future F>
void Cell<F>::dealloc(Header* h) noexcept {
  Cell* c = self(h);
  Schedule* scheduler = h->scheduler;
  delete c;
  count_task_dealloc();
  scheduler->drop_task_ref();
}
}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_TASK_H_
