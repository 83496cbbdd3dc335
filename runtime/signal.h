// Signals (DESIGN §9): a task waits for SIGTERM, SIGINT, SIGHUP, ... as a
// stream, and a signal handler of your own can wake a task.
//
//   absl::StatusOr<signal::Signal> term = signal::subscribe(SIGTERM);   // in a task
//   if (!term.ok()) co_return term.status();
//   for (;;) {
//     absl::Status s = co_await term->recv();   // OK: a SIGTERM came
//     if (!s.ok()) break;                       // Cancelled: the runtime went away
//     reload();
//   }
//   ...
//   co_await signal::ctrl_c();                  // the next SIGINT
//
// Mechanism. subscribe(signo) installs, once per process and for good, a
// sigaction handler for signo (SA_RESTART | SA_SIGINFO | SA_ONSTACK); the
// disposition that was there before is remembered. A process-wide registry
// (runtime/internal/signal_registry.h) keeps, per signal, 64 subscriber slots:
// each holds one runtime's pipe write end and a pending flag. The handler is
// async-signal-safe (atomics and write(2) only, errno kept): for each claimed
// slot it sets the flag and writes one byte to the pipe. Each runtime owns
// one pipe (O_NONBLOCK | O_CLOEXEC, made on its first subscribe), read by one
// internal task of that runtime through reactor::AsyncFd, so it works on
// io_uring and epoll, in every flavour, and with threads the user started
// before the runtime (no signal needs to be blocked anywhere: this is why it
// is not signalfd, which only sees a signal blocked in every thread). The
// task drains the pipe, takes the pending flags and wakes the subscribers. A
// full pipe loses no delivery: the flag carries it, the byte only wakes.
// At most 64 runtimes subscribe to one signal at once (ResourceExhausted).
//
// Which signals. subscribe() refuses (InvalidArgument) numbers outside
// 1..SIGRTMAX, SIGKILL and SIGSTOP (they cannot be caught), glibc's internal
// real-time signals (32, 33), and the fault signals SIGSEGV, SIGBUS, SIGFPE,
// SIGILL, SIGTRAP, SIGSYS and SIGABRT: a handler that returns from a fault
// runs the faulting instruction again, and abort() kills anyway.
//
// With no subscriber: while at least one Signal for signo is alive in some
// runtime, deliveries go to the subscribers only. When none is (every Signal
// dropped, or their runtimes gone), the handler passes the signal on to the
// disposition it replaced:
//   - a handler function: called with the same arguments (SA_SIGINFO or
//     not, as it was installed; under our handler's signal mask, not its own);
//   - SIG_IGN: nothing;
//   - SIG_DFL: the default action. For a signal whose default is to ignore
//     (SIGCHLD, SIGCONT, SIGURG, SIGWINCH) nothing; for a stop signal
//     (SIGTSTP, SIGTTIN, SIGTTOU) the process stops with SIGSTOP (a parent's
//     waitpid sees WSTOPSIG == SIGSTOP), and our handler stays; for every
//     other one (terminate, or terminate with a core dump) the handler puts
//     SIG_DFL back, raises the signal on this thread and unblocks it, so the
//     process dies of that signal, as without pollux (the exit status says
//     "killed by SIGTERM"). Our handler is gone then, but so is the process.
// A delivery that races the first subscribe goes to one side or the other;
// one that lands exactly as the last Signal of a runtime drops may go to
// nobody (that subscriber no longer wants it).
// Do not change the disposition of a subscribed signal yourself (sigaction,
// std::signal): the registry would stop seeing it.
//
// Coalescing: like Unix signals and tokio's streams, deliveries between two
// recv() calls (or since subscribe) make one OK. A signal raised after
// subscribe() returned and before recv() is kept, not lost. Every Signal of
// every runtime subscribed to signo sees each delivery: several tasks may
// each subscribe and await the same signal.
//
// Cost: a runtime's first subscribe makes its pipe (two fds) and spawns its
// reader, one internal task that lives as long as the runtime and holds one
// readiness registration (Backend::live_ops counts it; on multi_thread it
// is pinned to the worker that first polled it). Deliveries are a few
// syscalls each; this is for operating signals, not a data path.
//
// Runtime lifetime: the runtime keeps its pipe until it is destroyed, and
// its slot for a signal until its last Signal for it drops. When it is
// destroyed it unsubscribes (before it closes the pipe, so a handler never
// writes into a reused fd) and a Signal that outlives it yields Cancelled
// from every recv(). Subscribing needs a runtime with I/O (enable_io(), for
// the AsyncFd).
//
// fork(): in the child every slot is free (a pthread_atfork handler): it
// runs none of the parent's runtimes, so its signals go to the old
// dispositions (a SIGTERM kills it) and never into the parent's pipes,
// whose fds it still holds until exec (O_CLOEXEC). A runtime built in the
// child subscribes afresh.
//
// Thread-safety: subscribe() and ctrl_c()'s first poll in a task (or a
// block_on future) of a runtime with I/O. A Signal may be moved between
// tasks and threads of its runtime; one recv() at a time per Signal.
// SignalEvent::set() from anywhere, including a signal handler.
#ifndef POLLUX_RUNTIME_SIGNAL_H_
#define POLLUX_RUNTIME_SIGNAL_H_

#include <atomic>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "future/context.h"
#include "future/poll.h"
#include "reactor/async_fd.h"

namespace pollux {

namespace detail {
struct SignalSubscription;
}  // namespace detail

namespace signal {

// A subscription to one signal's deliveries to the current runtime: a
// stream read with recv() (see the header comment). Dropping the last
// Signal for a signal in a runtime unsubscribes that runtime from it.
class [[nodiscard]] Signal {
 public:
  // recv()'s future. Output: OK when a delivery arrived, Cancelled when the
  // runtime went away.
  //
  // Cancellation: dropping it loses nothing: a delivery that came stays
  // pending for the next recv().
  class [[nodiscard]] RecvFuture {
   public:
    using Output = absl::Status;
    RecvFuture(RecvFuture&&) noexcept = default;
    RecvFuture(const RecvFuture&) = delete;
    RecvFuture& operator=(const RecvFuture&) = delete;
    RecvFuture& operator=(RecvFuture&&) = delete;
    ~RecvFuture();
    // Ready once a delivery since the last recv (or subscribe) is there.
    Poll<absl::Status> poll(Context& cx);

   private:
    friend class Signal;
    explicit RecvFuture(std::shared_ptr<detail::SignalSubscription> sub) noexcept
        : sub_(std::move(sub)) {}
    std::shared_ptr<detail::SignalSubscription> sub_;
  };

  Signal(Signal&&) noexcept = default;
  Signal& operator=(Signal&&) noexcept = default;
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  ~Signal() = default;

  // The next delivery (coalesced; see the header comment). The future keeps
  // the subscription alive, so it may outlive the Signal.
  [[nodiscard]] RecvFuture recv() { return RecvFuture(sub_); }
  // The signal number this subscribes to.
  int signo() const noexcept;

 private:
  friend absl::StatusOr<Signal> subscribe(int signo);
  explicit Signal(std::shared_ptr<detail::SignalSubscription> sub) noexcept
      : sub_(std::move(sub)) {}
  std::shared_ptr<detail::SignalSubscription> sub_;
};

// Subscribes the current runtime to `signo` (see the header comment).
// Errors: InvalidArgument for a signal that cannot or must not be caught;
// FailedPrecondition outside a runtime or in one without I/O;
// ResourceExhausted when 64 runtimes already subscribe to it; the errno of
// pipe(2) or sigaction(2).
absl::StatusOr<Signal> subscribe(int signo);

// ctrl_c()'s future: subscribes to SIGINT on its first poll and completes
// on the next SIGINT after that. Output: OK, subscribe()'s error, or
// Cancelled when the runtime went away.
//
// Cancellation: dropping it unsubscribes (it held the only Signal); a SIGINT
// that came meanwhile is dropped with it.
class [[nodiscard]] CtrlC {
 public:
  using Output = absl::Status;
  CtrlC() = default;
  CtrlC(CtrlC&&) noexcept = default;
  CtrlC(const CtrlC&) = delete;
  CtrlC& operator=(const CtrlC&) = delete;
  CtrlC& operator=(CtrlC&&) = delete;
  // Subscribes on the first poll, then waits for a delivery.
  Poll<absl::Status> poll(Context& cx);

 private:
  std::optional<Signal> sig_;
  std::optional<Signal::RecvFuture> recv_;
};

// The next SIGINT (see CtrlC).
[[nodiscard]] inline CtrlC ctrl_c() { return CtrlC(); }

// An auto-reset, coalescing event that a signal handler may set: the
// async-signal-safe sibling of sync::UserEvent (sync/user_event.h).
//
//   static signal::SignalEvent usr1;                  // outlives every handler call
//   void on_usr1(int) { usr1.set(); }                 // your own sigaction handler
//   ... in a task:  absl::Status s = co_await usr1.wait();
//
// set() stores a pending flag and writes to an eventfd (both
// async-signal-safe; errno is kept); wait() completes when the event is (or
// becomes) pending and consumes it: one waiter per set, sets while pending
// coalesce, a set() before the wait() is not lost. A waiting wait() watches
// its own dup of the eventfd through reactor::AsyncFd (so it pins its task
// to its worker while it waits, and holds one more fd).
//
// Thread-safety: set() from anywhere (any thread, a signal handler); wait()
// from tasks of a runtime with I/O, any number at once. Not movable: a
// handler finds it by address; it must outlive every set() and wait().
class SignalEvent {
 public:
  // wait()'s future. Output: OK when it consumed a set(); the error that
  // made the eventfd, the dup or the AsyncFd fail (e.g. FailedPrecondition
  // outside a runtime with I/O, ResourceExhausted at the fd limit).
  //
  // Cancellation: dropping it loses nothing: a set() it did not consume
  // stays pending for the next wait().
  class [[nodiscard]] WaitFuture {
   public:
    using Output = absl::Status;
    WaitFuture(WaitFuture&& o) noexcept : ev_(o.ev_) {}  // only before the first poll
    WaitFuture(const WaitFuture&) = delete;
    WaitFuture& operator=(const WaitFuture&) = delete;
    WaitFuture& operator=(WaitFuture&&) = delete;
    ~WaitFuture();
    // Ready once it consumed a set().
    Poll<absl::Status> poll(Context& cx);

   private:
    friend class SignalEvent;
    explicit WaitFuture(SignalEvent* ev) noexcept : ev_(ev) {}
    SignalEvent* ev_;
    int dup_fd_ = -1;                                   // closed after afd_ is gone
    std::optional<reactor::AsyncFd> afd_;               // on dup_fd_
    std::optional<reactor::AsyncFd::ReadyFuture> ready_;  // on *afd_
  };

  // Makes the eventfd (a failure shows in every wait()).
  SignalEvent();
  ~SignalEvent();
  SignalEvent(const SignalEvent&) = delete;
  SignalEvent& operator=(const SignalEvent&) = delete;

  // Makes the event pending and wakes a waiter. Async-signal-safe.
  void set() noexcept;
  // Completes once the event is (or becomes) pending, consuming it.
  [[nodiscard]] WaitFuture wait() noexcept { return WaitFuture(this); }

 private:
  // Reads the eventfd's counter to zero; false when it was already zero.
  bool drain() noexcept;

  // seq_cst: set() stores it before its write(2); a waiter exchanges it
  // after its read(2) of the eventfd (see signal.cc).
  std::atomic<bool> pending_{false};
  int efd_ = -1;
  int error_ = 0;  // eventfd's errno when efd_ < 0
};

}  // namespace signal
}  // namespace pollux

#endif  // POLLUX_RUNTIME_SIGNAL_H_
