#include "runtime/signal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "executor/context.h"
#include "executor/spawn.h"
#include "future/assert.h"
#include "future/internal/mutex.h"
#include "future/task.h"
#include "future/waker.h"
#include "reactor/errno_status.h"
#include "runtime/internal/signal_driver.h"
#include "runtime/internal/signal_registry.h"

namespace pollux {
namespace detail {

namespace sr = signal_registry;

// One runtime's signal state: its pipe, the registry slot it holds per
// signal, and the subscriptions waiting on each. Made on the runtime's first
// subscribe; the runtime's reader task (read_loop) and every subscription
// hold it; signals_runtime_gone() closes it.
//
// Lock order: mu is a leaf (the registry's release() spins under it but
// takes no lock). A Waker is never dropped or woken under mu: dropping the
// last reference to a task may drop a future holding a subscription, which
// takes mu.
class SignalDriver {
 public:
  SignalDriver(int rfd, int wfd) : rfd_(rfd), wfd_(wfd) {}
  ~SignalDriver() {
    // signals_runtime_gone() closed them, unless the runtime never started
    // the reader and is still alive (never: the map holds a reference).
    if (rfd_ >= 0) ::close(rfd_);
    if (wfd_ >= 0) ::close(wfd_);
  }
  SignalDriver(const SignalDriver&) = delete;
  SignalDriver& operator=(const SignalDriver&) = delete;

  int read_fd() const noexcept { return rfd_; }

  // Links `sub` to its signal, claiming the registry slot on the first one.
  absl::Status subscribe(SignalSubscription* sub);
  void unsubscribe(SignalSubscription* sub) noexcept;
  Poll<absl::Status> poll_recv(SignalSubscription* sub, Context& cx);
  // The subscription's waker, to drop outside mu.
  Waker take_waker(SignalSubscription* sub) noexcept;

  // The reader saw the pipe readable and drained it: hands each delivery to
  // the subscribers of its signal.
  void dispatch() noexcept;
  // Ends every subscription with `why` and gives the slots back (the reader
  // failed, or the runtime is gone). The fds stay open (the reader's AsyncFd
  // may still watch rfd_) until close_fds().
  void close(absl::Status why) noexcept;
  // After close() and once no AsyncFd watches the pipe (the runtime's tasks
  // are gone).
  void close_fds() noexcept {
    ::close(std::exchange(rfd_, -1));
    ::close(std::exchange(wfd_, -1));
  }

 private:
  struct PerSignal {
    int slot = -1;           // registry slot while `subs` is non-empty
    uint64_t deliveries = 0;  // dispatched so far
    std::vector<SignalSubscription*> subs;
  };

  int rfd_;
  int wfd_;
  Mutex mu_;
  absl::Status closed_ ABSL_GUARDED_BY(mu_);  // non-OK once closed
  std::array<PerSignal, sr::kMaxSignal> signals_ ABSL_GUARDED_BY(mu_);
};

// One Signal's subscription (Signal and its RecvFutures share it). Its
// fields after `signo` are guarded by driver->mu_.
struct SignalSubscription {
  SignalSubscription(std::shared_ptr<SignalDriver> d, int s) : driver(std::move(d)), signo(s) {}
  ~SignalSubscription() {
    if (linked) driver->unsubscribe(this);
  }
  SignalSubscription(const SignalSubscription&) = delete;
  SignalSubscription& operator=(const SignalSubscription&) = delete;

  const std::shared_ptr<SignalDriver> driver;
  const int signo;
  bool linked = false;    // in driver's list (set once, by subscribe)
  uint64_t seen = 0;      // the driver's delivery count this one has consumed
  Waker waker;            // of the recv() waiting, if any
};

absl::Status SignalDriver::subscribe(SignalSubscription* sub) {
  MutexLock lock(mu_);
  if (!closed_.ok()) return closed_;
  PerSignal& p = signals_[sub->signo];
  if (p.slot < 0) {
    p.slot = sr::claim(sub->signo, wfd_);
    if (p.slot < 0) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "signal::subscribe(", sub->signo, "): ", sr::kSlotsPerSignal,
          " runtimes already subscribe to this signal; share one runtime's Signal instead"));
    }
  }
  sub->seen = p.deliveries;
  sub->linked = true;
  p.subs.push_back(sub);
  return absl::OkStatus();
}

void SignalDriver::unsubscribe(SignalSubscription* sub) noexcept {
  Waker drop;
  {
    MutexLock lock(mu_);
    drop = std::move(sub->waker);
    PerSignal& p = signals_[sub->signo];
    std::erase(p.subs, sub);
    if (p.subs.empty() && p.slot >= 0) {
      // The last one: the old disposition applies again (signal.h).
      sr::release(sub->signo, p.slot);
      p.slot = -1;
    }
  }
}

Poll<absl::Status> SignalDriver::poll_recv(SignalSubscription* sub, Context& cx) {
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  Waker drop;  // dropped after the lock
  MutexLock lock(mu_);
  if (!closed_.ok()) {
    drop = std::move(sub->waker);
    return Ready(closed_);
  }
  const PerSignal& p = signals_[sub->signo];
  if (p.deliveries != sub->seen) {
    sub->seen = p.deliveries;  // coalesced: every delivery so far is one
    drop = std::move(sub->waker);
    return Ready(absl::OkStatus());
  }
  if (!sub->waker.will_wake(cx.waker())) {
    drop = std::move(sub->waker);
    sub->waker = cx.waker();
  }
  cx.budget().refund();
  return Pending{};
}

Waker SignalDriver::take_waker(SignalSubscription* sub) noexcept {
  MutexLock lock(mu_);
  return std::move(sub->waker);
}

void SignalDriver::dispatch() noexcept {
  std::vector<Waker> wake;
  {
    MutexLock lock(mu_);
    if (!closed_.ok()) return;
    for (int signo = 1; signo < sr::kMaxSignal; ++signo) {
      PerSignal& p = signals_[signo];
      if (p.slot < 0 || !sr::take_pending(signo, p.slot)) continue;
      ++p.deliveries;
      for (SignalSubscription* s : p.subs) {
        if (s->waker) wake.push_back(std::move(s->waker));
      }
    }
  }
  for (Waker& w : wake) std::move(w).wake();
}

void SignalDriver::close(absl::Status why) noexcept {
  std::vector<Waker> wake;
  {
    MutexLock lock(mu_);
    if (!closed_.ok()) return;
    closed_ = std::move(why);
    for (int signo = 1; signo < sr::kMaxSignal; ++signo) {
      PerSignal& p = signals_[signo];
      if (p.slot >= 0) {
        // After this no handler writes to wfd_ (registry header).
        sr::release(signo, p.slot);
        p.slot = -1;
      }
      for (SignalSubscription* s : p.subs) {
        if (s->waker) wake.push_back(std::move(s->waker));
      }
    }
  }
  for (Waker& w : wake) std::move(w).wake();
}

namespace {

// Runtimes that subscribed, by their key (signal_driver.h).
struct Drivers {
  Mutex mu;
  std::vector<std::pair<const void*, std::shared_ptr<SignalDriver>>> list ABSL_GUARDED_BY(mu);
};
Drivers& drivers() {
  static Drivers* d = new Drivers();  // never destroyed: runtimes may outlive statics
  return *d;
}

// The runtime's reader: wakes on the pipe, drains it, dispatches.
Task<void> read_loop(std::shared_ptr<SignalDriver> d) {
  absl::StatusOr<reactor::AsyncFd> afd = reactor::AsyncFd::create(d->read_fd());
  if (!afd.ok()) {
    d->close(with_context(afd.status(), "signals: watching the runtime's signal pipe"));
    co_return;
  }
  std::array<char, 128> buf;
  for (;;) {
    absl::StatusOr<reactor::ReadyGuard> g = co_await afd->readable();
    if (!g.ok()) {
      d->close(with_context(g.status(), "signals: waiting on the runtime's signal pipe"));
      co_return;
    }
    bool drained = false;
    for (;;) {
      const ssize_t n = ::read(d->read_fd(), buf.data(), buf.size());
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      drained = n < 0 && errno == EAGAIN;
      break;
    }
    // Bytes read before the flags are taken: every byte's delivery is seen
    // by this dispatch, and a later one writes a new byte (a new edge).
    d->dispatch();
    if (!drained) {
      // EOF or an error on our own pipe: nothing will wake us properly.
      d->close(absl::InternalError("signals: the runtime's signal pipe failed"));
      co_return;
    }
    g->clear_ready();
  }
}

// The driver of the current runtime, made (with its pipe and reader task)
// on first use.
absl::StatusOr<std::shared_ptr<SignalDriver>> driver_for(const void* key) {
  Drivers& all = drivers();
  MutexLock lock(all.mu);
  for (auto& [k, d] : all.list) {
    if (k == key) return d;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return errno_status(errno, "signal::subscribe: pipe2 for the runtime's signal pipe");
  }
  auto d = std::make_shared<SignalDriver>(fds[0], fds[1]);
  all.list.emplace_back(key, d);
  // Detached: the runtime's shutdown drops it with every other task.
  [[maybe_unused]] auto reader = pollux::spawn(read_loop(d));
  return d;
}

}  // namespace

void signals_runtime_gone(const void* runtime_key) noexcept {
  std::shared_ptr<SignalDriver> d;
  {
    Drivers& all = drivers();
    MutexLock lock(all.mu);
    for (size_t i = 0; i < all.list.size(); ++i) {
      if (all.list[i].first == runtime_key) {
        d = std::move(all.list[i].second);
        all.list.erase(all.list.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  if (!d) return;
  d->close(absl::CancelledError(
      "signal::Signal: the runtime it subscribed in was destroyed"));
  d->close_fds();  // the reader task (and its AsyncFd) went with the runtime's tasks
}

}  // namespace detail

namespace signal {

absl::StatusOr<Signal> subscribe(int signo) {
  if (absl::Status s = detail::signal_registry::validate(signo); !s.ok()) return s;
  const RuntimeContext& ctx = RuntimeContext::current();
  if (ctx.scheduler == nullptr || ctx.blocking == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "signal::subscribe(", signo, ") outside a runtime: call it from a task (or a "
        "block_on future) of the runtime that should receive the signal"));
  }
  if (ctx.backend == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "signal::subscribe(", signo, "): the runtime has no I/O (build it with enable_io() or "
        "enable_all()); signals are read from a pipe the I/O backend watches"));
  }
  if (absl::Status s = detail::signal_registry::install(signo); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<detail::SignalDriver>> d = detail::driver_for(ctx.blocking);
  if (!d.ok()) return d.status();
  auto sub = std::make_shared<detail::SignalSubscription>(std::move(*d), signo);
  if (absl::Status s = sub->driver->subscribe(sub.get()); !s.ok()) return s;
  return Signal(std::move(sub));
}

int Signal::signo() const noexcept { return sub_->signo; }

Signal::RecvFuture::~RecvFuture() {
  // A recv dropped before Ready: forget its waker; the deliveries stay
  // counted for the next recv (seen is unchanged).
  if (sub_) Waker drop = sub_->driver->take_waker(sub_.get());
}

Poll<absl::Status> Signal::RecvFuture::poll(Context& cx) {
  POLLUX_CHECK(sub_ != nullptr, "Signal::RecvFuture polled after it was moved from");
  return sub_->driver->poll_recv(sub_.get(), cx);
}

Poll<absl::Status> CtrlC::poll(Context& cx) {
  if (!sig_) {
    absl::StatusOr<Signal> s = subscribe(SIGINT);
    if (!s.ok()) return Ready(s.status());
    sig_.emplace(std::move(*s));
    recv_.emplace(sig_->recv());
  }
  return recv_->poll(cx);
}

SignalEvent::SignalEvent() {
  efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) error_ = errno;
}

SignalEvent::~SignalEvent() {
  if (efd_ >= 0) ::close(efd_);
}

void SignalEvent::set() noexcept {
  const int saved_errno = errno;
  // seq_cst (release would do): stored before the write that wakes a
  // waiter, which exchanges it after its read (WaitFuture::poll).
  pending_.store(true, std::memory_order_seq_cst);
  if (efd_ >= 0) {
    const uint64_t one = 1;
    // EAGAIN only at a counter of 2^64-2: the fd is readable then anyway.
    [[maybe_unused]] ssize_t n = ::write(efd_, &one, sizeof one);
  }
  errno = saved_errno;
}

bool SignalEvent::drain() noexcept {
  uint64_t v;
  return ::read(efd_, &v, sizeof v) == static_cast<ssize_t>(sizeof v);
}

SignalEvent::WaitFuture::~WaitFuture() {
  ready_.reset();  // before the AsyncFd it points to
  afd_.reset();    // deregisters before its fd closes
  if (dup_fd_ >= 0) ::close(dup_fd_);
}

Poll<absl::Status> SignalEvent::WaitFuture::poll(Context& cx) {
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return Pending{};
  }
  if (ev_->efd_ < 0) {
    return Ready(errno_status(ev_->error_, "signal::SignalEvent: eventfd"));
  }
  for (;;) {
    // seq_cst: pairs with set()'s store (made before its write).
    if (ev_->pending_.exchange(false, std::memory_order_seq_cst)) {
      ev_->drain();  // fewer spurious wakes for other waiters
      return Ready(absl::OkStatus());
    }
    if (!afd_) {
      // Our own fd: several waiters (on several workers) each watch one.
      dup_fd_ = ::fcntl(ev_->efd_, F_DUPFD_CLOEXEC, 0);
      if (dup_fd_ < 0) return Ready(errno_status(errno, "signal::SignalEvent::wait: dup"));
      absl::StatusOr<reactor::AsyncFd> a = reactor::AsyncFd::create(dup_fd_);
      if (!a.ok()) return Ready(a.status());
      afd_.emplace(std::move(*a));
    }
    if (!ready_) ready_.emplace(afd_->readable());
    cx.budget().refund();  // the readiness wait takes its own unit
    Poll<absl::StatusOr<reactor::ReadyGuard>> p = ready_->poll(cx);
    if (p.is_pending()) return Pending{};
    absl::StatusOr<reactor::ReadyGuard> g = std::move(p).value();
    ready_.reset();
    if (!g.ok()) return Ready(g.status());
    // Read, then look at the flag: a set() that wrote what we read stored
    // the flag first.
    const bool read_some = ev_->drain();
    if (ev_->pending_.exchange(false, std::memory_order_seq_cst)) return Ready(absl::OkStatus());
    // Another waiter took it (or a spurious edge). When the counter was
    // already zero, wait for the next edge; clear_ready keeps one that came
    // since the guard was made.
    if (!read_some) g->clear_ready();
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
  }
}

}  // namespace signal
}  // namespace pollux
