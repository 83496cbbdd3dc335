#include "runtime/internal/signal_registry.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "reactor/errno_status.h"
#include "runtime/internal/signal_slot.h"

namespace pollux::detail::signal_registry {

namespace {

struct PerSignal {
  SignalSlot slots[kSlotsPerSignal];
  // Written before the handler is installed (under g_install_mu), read by
  // the handler only after it saw `installed` (acquire).
  struct sigaction prev {};
  // release (install) / acquire (handler): publishes `prev`.
  std::atomic<bool> installed{false};
  // relaxed: a statistic for tests.
  std::atomic<unsigned long> chained{0};
};

// Static storage, zero-initialised at load: the handler never allocates.
PerSignal g_signals[kMaxSignal];
std::mutex g_install_mu;  // install() only; never taken by the handler

bool default_is_ignore(int signo) {
  return signo == SIGCHLD || signo == SIGCONT || signo == SIGURG || signo == SIGWINCH;
}
bool default_is_stop(int signo) {
  return signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU;
}

// The default action of `signo`, from inside its handler (async-signal-safe
// calls only). See signal.h, "With no subscriber".
void default_action(int signo) {
  if (default_is_ignore(signo)) return;
  if (default_is_stop(signo)) {
    // SIGSTOP cannot be blocked or caught: the process stops here and this
    // handler resumes on SIGCONT, still installed.
    ::kill(::getpid(), SIGSTOP);
    return;
  }
  // Terminate (or dump core): as if pollux had never caught it. SIG_DFL
  // back, the signal raised on this thread (it is blocked here, inside its
  // own handler, so it waits), then unblocked: it is delivered at once and
  // the process dies of it, with the exit status a parent expects.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(signo, &dfl, nullptr);
  ::raise(signo);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

void chain(PerSignal& s, int signo, siginfo_t* info, void* uctx) {
  // relaxed: a statistic.
  s.chained.fetch_add(1, std::memory_order_relaxed);
  // acquire: pairs with install()'s release store; `prev` is complete.
  if (!s.installed.load(std::memory_order_acquire)) return;
  const struct sigaction& p = s.prev;
  // sa_handler and sa_sigaction share storage: SIG_DFL / SIG_IGN are told
  // by value whatever the flags say.
  if (p.sa_handler == SIG_DFL) {
    default_action(signo);
  } else if (p.sa_handler == SIG_IGN) {
    return;
  } else if ((p.sa_flags & SA_SIGINFO) != 0) {
    p.sa_sigaction(signo, info, uctx);
  } else {
    p.sa_handler(signo);
  }
}

void on_signal(int signo, siginfo_t* info, void* uctx) {
  const int saved_errno = errno;
  if (signo > 0 && signo < kMaxSignal) {
    PerSignal& s = g_signals[signo];
    bool delivered = false;
    for (SignalSlot& slot : s.slots) {
      // The slot protocol (signal_slot.h). EAGAIN (pipe full) is fine: the
      // reader is due to wake anyway, and the pending flag carries the
      // delivery.
      delivered |= slot.deliver([signo](int fd) {
        const char byte = static_cast<char>(signo);
        [[maybe_unused]] ssize_t n = ::write(fd, &byte, 1);
      });
    }
    if (!delivered) chain(s, signo, info, uctx);
  }
  errno = saved_errno;
}

// pthread_atfork's child handler: the child runs none of the parent's
// runtimes, so every slot is free there and its signals go to the old
// dispositions (a SIGTERM kills it) instead of into the parent's pipes.
void reset_in_child() noexcept {
  for (PerSignal& s : g_signals) {
    for (SignalSlot& slot : s.slots) slot.reset_in_child();
  }
}

}  // namespace

absl::Status validate(int signo) {
  if (signo <= 0 || signo >= kMaxSignal || signo > SIGRTMAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signal::subscribe(", signo, "): not a signal number (1..", SIGRTMAX, ")"));
  }
  if (signo == SIGKILL || signo == SIGSTOP) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signal::subscribe(", signo, "): SIGKILL and SIGSTOP cannot be caught"));
  }
  if (signo > 31 && signo < SIGRTMIN) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signal::subscribe(", signo, "): reserved by the C library (threads); real-time "
        "signals start at SIGRTMIN = ", SIGRTMIN));
  }
  switch (signo) {
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
    case SIGTRAP:
    case SIGSYS:
    case SIGABRT:
      return absl::InvalidArgumentError(absl::StrCat(
          "signal::subscribe(", signo, "): a fault signal (", strsignal(signo),
          "); a handler returning from a fault re-runs it, and abort() kills anyway, so it "
          "cannot be awaited"));
    default:
      return absl::OkStatus();
  }
}

absl::Status install(int signo) {
  PerSignal& s = g_signals[signo];
  // acquire: pairs with the release store below (another thread installed).
  if (s.installed.load(std::memory_order_acquire)) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(g_install_mu);
  // relaxed: g_install_mu orders installers.
  if (s.installed.load(std::memory_order_relaxed)) return absl::OkStatus();
  static bool atfork_registered = false;  // under g_install_mu
  if (!atfork_registered) {
    if (int err = ::pthread_atfork(nullptr, nullptr, reset_in_child); err != 0) {
      return errno_status(err, "pthread_atfork for the signal registry");
    }
    atfork_registered = true;
  }
  struct sigaction ours {};
  ours.sa_sigaction = on_signal;
  ours.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&ours.sa_mask);
  // `prev` is read and published first, then our handler goes in: a
  // delivery can only reach on_signal after the second sigaction, and then
  // finds `prev` complete. (A sigaction of the user's on another thread
  // between the two calls would be overwritten: changing a disposition
  // while subscribing to it is outside the contract, signal.h.)
  if (::sigaction(signo, nullptr, &s.prev) != 0) {
    return errno_status(errno, absl::StrCat("sigaction(", signo, ") (reading)"));
  }
  // release: publishes `prev` to on_signal's acquire load.
  s.installed.store(true, std::memory_order_release);
  if (::sigaction(signo, &ours, nullptr) != 0) {
    const int err = errno;
    // relaxed: still under g_install_mu; on_signal is not installed.
    s.installed.store(false, std::memory_order_relaxed);
    return errno_status(err, absl::StrCat("sigaction(", signo, ")"));
  }
  return absl::OkStatus();
}

int claim(int signo, int fd) noexcept {
  PerSignal& s = g_signals[signo];
  for (int i = 0; i < kSlotsPerSignal; ++i) {
    if (s.slots[i].claim(fd)) return i;
  }
  return -1;
}

void release(int signo, int slot) noexcept { g_signals[signo].slots[slot].release(); }

bool take_pending(int signo, int slot) noexcept {
  return g_signals[signo].slots[slot].take_pending();
}

unsigned long chained_count(int signo) noexcept {
  // relaxed: a statistic.
  return g_signals[signo].chained.load(std::memory_order_relaxed);
}

}  // namespace pollux::detail::signal_registry
