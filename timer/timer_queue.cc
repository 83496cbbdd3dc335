#include "timer/timer_queue.h"

#include <string>
#include <utility>

#include "executor/context.h"

namespace pollux::timer {

namespace {

constexpr uint64_t kNanosPerTick = 1'000'000;

// Nanoseconds from `origin` to `t`, for t > origin (fits: both are int64).
uint64_t nanos_after(Instant origin, Instant t) noexcept {
  return static_cast<uint64_t>(t.nanos()) - static_cast<uint64_t>(origin.nanos());
}

TimerQueue& checked_current(const char* what) {
  TimerQueue* q = current_timer_queue();
  POLLUX_CHECK(q != nullptr, what);
  return *q;
}

}  // namespace

TimerQueue::TimerQueue()
    : wheel_(0), origin_(Instant::now()), now_(origin_), owner_(std::this_thread::get_id()) {
  tick_.now_ns = now_.nanos();
}

void TimerQueue::update_now() noexcept {
  if (paused_) return;
  const Instant t = clock_now();
  if (t > now_) now_ = t;  // CLOCK_MONOTONIC does not go back; this keeps resume() exact too
  tick_.now_ns = now_.nanos();
}

size_t TimerQueue::process() noexcept {
  uint64_t tick = elapsed_tick(now_);
  if (tick < wheel_.now()) tick = wheel_.now();  // now_ never decreases; defensive
  size_t fired = 0;
  wheel_.advance(tick, [this, tick, &fired](TimerEntry* te) noexcept {
    // SAFETY: only insert() puts nodes into wheel_, always an Entry's node_,
    // which is the first member of a standard-layout Entry, so the two are
    // pointer-interconvertible.
    Entry* e = reinterpret_cast<Entry*>(te);
    if (e->later_ != Instant::min()) {
      const uint64_t later = deadline_tick(std::exchange(e->later_, Instant::min()));
      if (later > tick) {
        // A reset() moved it later: file it there, quietly (insertion order
        // among equal deadlines then counts from this re-filing).
        wheel_.insert(te, later);
        return;
      }
    }
    e->fired_ = true;
    ++fired;
    std::move(e->waker_).wake();  // leaves the entry's waker empty
  });
  return fired;
}

std::optional<Instant> TimerQueue::next_deadline() const noexcept {
  const std::optional<uint64_t> tick = wheel_.next_expiration();
  if (!tick) return std::nullopt;
  return tick_instant(*tick);
}

void TimerQueue::pause() noexcept {
  const absl::Status s = try_pause();
  POLLUX_CHECK(s.ok(), std::string(s.message()).c_str());
}

absl::Status TimerQueue::try_pause() noexcept {
  if (pause_forbidden_ != nullptr) return absl::FailedPreconditionError(pause_forbidden_);
  if (paused_) return absl::OkStatus();
  update_now();
  paused_ = true;
  return absl::OkStatus();
}

void TimerQueue::resume() noexcept {
  if (!paused_) return;
  paused_ = false;
  // From here on clock_now() == Instant::now() + offset_ns_ continues from
  // now_ (a paused clock is never ahead of the real one by 292 years).
  offset_ns_ = now_.nanos() - Instant::now().nanos();
}

void TimerQueue::advance(absl::Duration d) {
  POLLUX_CHECK(paused_,
               "timer::advance() needs a paused clock; call timer::pause() (or "
               "TimerQueue::pause()) first");
  POLLUX_CHECK(d >= absl::ZeroDuration(), "timer::advance() with a negative duration");
  now_ += d;
  tick_.now_ns = now_.nanos();
}

bool TimerQueue::auto_advance() noexcept {
  if (!paused_) return false;
  bool jumped = false;
  // next_deadline() may be a point where the wheel only moves entries down a
  // level; keep jumping until something fires or nothing is left.
  while (std::optional<Instant> next = next_deadline()) {
    if (*next <= now_) {
      // Already due (or a tick beyond Instant::max(), which never comes).
      process();
      break;
    }
    now_ = *next;
    tick_.now_ns = now_.nanos();
    jumped = true;
    if (process() > 0) break;
  }
  return jumped;
}

void TimerQueue::insert(Entry* e, Instant deadline) noexcept {
  POLLUX_DCHECK(is_owner_thread(),
                "TimerQueue::insert called off the queue's owner thread (a Sleep must be polled "
                "on the thread whose driver it registered with)");
  e->fired_ = false;
  e->later_ = Instant::min();
  wheel_.insert(&e->node_, deadline_tick(deadline));
}

void TimerQueue::reset(Entry* e, Instant deadline) noexcept {
  POLLUX_DCHECK(e->is_registered(), "TimerQueue::reset of an entry that is not registered");
  if (deadline_tick(deadline) > e->node_.deadline()) {
    e->later_ = deadline;
    return;
  }
  wheel_.cancel(&e->node_);
  insert(e, deadline);
}

void TimerQueue::cancel(Entry* e) noexcept {
  if (!e->is_registered()) return;
  POLLUX_DCHECK(is_owner_thread(),
                "TimerQueue::cancel called off the queue's owner thread (a Sleep must be dropped "
                "on the thread whose driver it registered with)");
  wheel_.cancel(&e->node_);
}

uint64_t TimerQueue::deadline_tick(Instant t) const noexcept {
  if (t <= origin_) return 0;
  // Past every tick elapsed_tick() can reach (it is at most INT64_MAX / 1e6),
  // so Instant::max() never fires, even once the clock saturates there.
  if (t == Instant::max()) return static_cast<uint64_t>(INT64_MAX) / kNanosPerTick + 1;
  const uint64_t ns = nanos_after(origin_, t);
  return ns / kNanosPerTick + (ns % kNanosPerTick != 0 ? 1 : 0);
}

uint64_t TimerQueue::elapsed_tick(Instant t) const noexcept {
  if (t <= origin_) return 0;
  return nanos_after(origin_, t) / kNanosPerTick;
}

Instant TimerQueue::tick_instant(uint64_t tick) const noexcept {
  constexpr uint64_t kMaxTick = static_cast<uint64_t>(INT64_MAX) / kNanosPerTick;
  if (tick > kMaxTick) return Instant::max();
  return origin_ + absl::Nanoseconds(static_cast<int64_t>(tick * kNanosPerTick));
}

namespace {
RuntimeContext with_timers(TimerQueue* queue) noexcept {
  RuntimeContext ctx = RuntimeContext::current();
  ctx.timers = queue;
  return ctx;
}
}  // namespace

CurrentTimerQueueGuard::CurrentTimerQueueGuard(TimerQueue* queue) noexcept
    : entered_(with_timers(queue)) {
  if (queue != nullptr) queue->bind_to_current_thread();
}

Instant now() noexcept {
  TimerQueue* q = current_timer_queue();
  return q != nullptr ? q->clock_now() : Instant::now();
}

namespace {
constexpr char kPauseNeedsAQueue[] =
    "timer::pause() needs a TimerQueue on this thread (a runtime with time enabled, or a "
    "TimeDriver entered with TimeDriver::enter())";
}  // namespace

absl::Status try_pause() { return checked_current(kPauseNeedsAQueue).try_pause(); }

void pause() { checked_current(kPauseNeedsAQueue).pause(); }

void resume() {
  checked_current(
      "timer::resume() needs a TimerQueue on this thread (a runtime with time enabled, or a "
      "TimeDriver entered with TimeDriver::enter())")
      .resume();
}

void advance(absl::Duration d) {
  checked_current(
      "timer::advance() needs a TimerQueue on this thread (a runtime with time enabled, or a "
      "TimeDriver entered with TimeDriver::enter())")
      .advance(d);
}

}  // namespace pollux::timer
