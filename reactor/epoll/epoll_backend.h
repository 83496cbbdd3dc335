// EpollBackend: the Backend (reactor/backend.h) on one epoll set, for hosts
// that refuse io_uring (Docker's and containerd's default seccomp profiles,
// kernel.io_uring_disabled, a low memlock limit). Every operation the
// io_uring backend has, with the same futures; Runtime::Builder picks it
// (runtime/runtime.h: BackendKind, POLLUX_BACKEND).
//
// Readiness, not completion (DESIGN §5). An op tries its syscall first, in
// its future's poll (socket calls with MSG_DONTWAIT, read and write with
// preadv2/pwritev2(RWF_NOWAIT); pollux never changes O_NONBLOCK on an fd it
// did not create). Only on EAGAIN does it wait: its
// fd is registered once, edge-triggered (EPOLLIN|EPOLLOUT|EPOLLRDHUP|
// EPOLLET), and the op waits in the fd's ScheduledIo for its direction
// (internal/slots.h has the readiness word and its tick protocol). An event
// wakes the op kReady, and its next poll makes the syscall again (resume).
// So a dropped read, write, send, recv or accept has had no effect. A read
// or write shorter than asked on a stream means the socket is drained (full)
// and clears that direction without a syscall that would only say EAGAIN,
// as tokio does; the next op then waits for the next edge.
//
// Registration lifetime (reactor/fd_owner.h). An fd that an FdOwner holds
// (every socket of net/, an AsyncFd's fd) keeps its one registration for as
// long as the owner does; both halves of a split stream share it. The
// owner's release removes it from the epoll set (EPOLL_CTL_DEL) on the
// releasing thread before the fd closes, and the ScheduledIo is freed at
// this backend's next tick. A registration remembers its fd's epoch, so a
// later file that reuses the fd number never finds it. An fd nobody owns
// (a raw reactor::read on the user's pipe) is registered only while an op
// waits on it and removed when the last such op ends. A registration never
// outlives its backend: the destructor frees them all and closes the set.
//
// Per kind: accept is accept4(SOCK_NONBLOCK|SOCK_CLOEXEC); incoming()
// (start_accept_multi) accepts until EAGAIN, at most 64 per poll, into the
// stream's queue. connect: EINPROGRESS, then writable, then SO_ERROR. nop and
// close complete at once; poll looks with poll(2) first; timeout is a timer
// in the backend (a heap bounding epoll_wait). An fd without O_NONBLOCK is
// never made to block the thread: reads and writes use RWF_NOWAIT; where
// the kernel or the file lacks it, a poll(2) look precedes each attempt and
// writes are capped at PIPE_BUF; a blocking socket's accept is looked
// before, its connect runs on the pool. File operations (openat, statx,
// fsync, read/write at an offset, or of a regular file, which epoll cannot
// watch) run on the blocking pool (executor/blocking/) as jobs that own
// their memory, and come back through an MPSC completion queue that unparks
// the backend. A positional read or write on a file that cannot seek (a
// FIFO) ignores the offset, as io_uring does.
//
// AsyncFd (reactor/async_fd.h) registrations are the same ScheduledIo as
// sockets', and its waits wait in the same lists.
//
// Cancellation differs from io_uring: a dropped read, write, send, recv or
// accept has had no effect (its syscall runs only inside its poll); a
// dropped connect may still have connected; a dropped file operation may
// still run to completion on the pool (an fd a dropped open delivers is
// closed).
//
// Unpark: ParkState (executor/internal/park_state.h) and a non-blocking
// eventfd in the set, edge-triggered and never read (every write is an
// edge). Errors that repeat end the backend: epoll_wait failing with
// anything but EINTR three times in a row sets status().
//
// Shutdown (the destructor): ops still waiting are dropped (they have had no
// effect), fds delivered and never taken are closed, file jobs are cancelled
// and waited for at most EpollOptions::drain_timeout; a job still running
// then is left to finish on its own and its memory is kept (counted in
// stats().leaked_ops, reported on stderr).
//
// Thread-safety: everything but unparker() belongs to the backend's thread.
#ifndef POLLUX_REACTOR_EPOLL_EPOLL_BACKEND_H_
#define POLLUX_REACTOR_EPOLL_EPOLL_BACKEND_H_

#include <sys/epoll.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "executor/blocking/blocking_pool.h"
#include "reactor/backend.h"
#include "reactor/epoll/internal/slots.h"
#include "reactor/internal/slab.h"

namespace pollux::reactor {

class EpollSyscalls;

// How the epoll backend is set up.
struct EpollOptions {
  // Where file operations run; null: the backend starts its own pool. A
  // pool given here must outlive the backend.
  blocking::BlockingPool* pool = nullptr;
  // At shutdown, how long to wait for file jobs still running (DESIGN §9).
  absl::Duration drain_timeout = absl::Seconds(10);
  // Events taken per epoll_wait.
  int max_events = 256;
  // The seam for fault injection (internal/epoll_syscalls.h); null means
  // the real syscalls. Must outlive the backend.
  EpollSyscalls* syscalls = nullptr;
};

// epoll's own counters, beside the ones every backend keeps.
struct EpollStats : BackendStats {
  uint64_t events = 0;          // epoll events handled
  uint64_t stale_events = 0;    // events for registrations already freed
  uint64_t deregistrations = 0; // registrations removed (owner released, last waiter left)
  uint64_t file_jobs = 0;       // operations handed to the blocking pool
  uint64_t short_clears = 0;    // short reads/writes that cleared readiness without a syscall
};

// Where the backend keeps EpollStats (owner-written, readable anywhere).
struct EpollCounters : BackendCounters {
  pollux::detail::OwnerCounter events;
  pollux::detail::OwnerCounter stale_events;
  pollux::detail::OwnerCounter deregistrations;
  pollux::detail::OwnerCounter file_jobs;
  pollux::detail::OwnerCounter short_clears;
};

// The Backend on one epoll set; owned by one thread.
class EpollBackend final : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<EpollBackend>> create(EpollOptions options = {});
  ~EpollBackend() override;

  // ---- Park ----
  bool park(std::optional<absl::Duration> timeout) override;
  void poll_now() override;
  std::shared_ptr<Unparker> unparker() override;
  absl::Status status() const override { return fatal_; }

  // ---- Backend ----
  OpId start_nop() override;
  OpId start_read(int fd, std::vector<char>& buf, size_t begin, size_t end,
                  uint64_t offset) override;
  OpId start_write(int fd, std::vector<char>& buf, size_t begin, size_t end,
                   uint64_t offset) override;
  OpId start_recv(int fd, std::vector<char>& buf, size_t begin, size_t end, int flags) override;
  OpId start_send(int fd, std::vector<char>& buf, size_t begin, size_t end, int flags) override;
  bool try_recv_send_now(bool send, int fd, std::vector<char>& buf, size_t begin, size_t end,
                         int flags, int32_t* res) override;
  OpId start_sendmsg(int fd, std::vector<char>& buf, size_t offset, const sockaddr_storage& to,
                     socklen_t to_len, int flags) override;
  OpId start_recvmsg(int fd, std::vector<char>& buf, int flags) override;
  OpId start_accept(int listen_fd) override;
  OpId start_accept_multi(int listen_fd) override;
  OpId start_connect(int fd, const sockaddr_storage& addr, socklen_t len) override;
  OpId start_close(int fd) override;
  OpId start_poll(int fd, uint32_t events) override;
  OpId start_timeout(absl::Duration d) override;
  OpId start_openat(int dirfd, std::string& path, int flags, mode_t mode) override;
  OpId start_fsync(int fd, bool datasync) override;
  OpId start_statx(int dirfd, std::string& path, int flags, unsigned mask) override;
  OpId start_ready_register(int fd) override;
  OpId start_ready_wait(OpId reg, uint32_t interest) override;
  void clear_ready(OpId reg, uint32_t interest, uint32_t tick) override;

  void resume(OpId id) override;
  MultiNext poll_multi(OpId id, const Waker& waker) override;
  size_t queued(OpId id) const override;
  int32_t take_result(OpId id) override;
  int32_t take_data(OpId id, std::vector<char>& buf) override;
  MsgCompletion take_msg(OpId id) override;
  AcceptCompletion take_accept(OpId id) override;
  PathCompletion take_path(OpId id) override;
  void cancel(OpId id) noexcept override;

  size_t live_ops() const noexcept override;
  BackendStats stats() const noexcept override { return epoll_stats(); }
  const char* name() const noexcept override { return "epoll"; }

  // ---- epoll specifics ----
  EpollStats epoll_stats() const noexcept;
  // Drops every op still here and waits (at most EpollOptions::
  // drain_timeout) for the file jobs on the pool, keeping what does not come
  // back (stats().leaked_ops); frees every registration. Idempotent; the
  // destructor calls it. Every future must be gone first. On the backend's
  // thread (a multi-thread runtime's worker calls it as it stops).
  void shutdown() { shutdown(options_.drain_timeout); }
  // As shutdown(), waiting at most `drain_timeout` (Runtime::shutdown_timeout).
  void shutdown(absl::Duration drain_timeout);
  // Fds registered in the set right now (tests: back to 0 when every
  // socket is gone).
  size_t registered_fds() const noexcept { return sios_.live(); }

 private:
  class EventFdUnparker;
  class Link;
  template <class P>
  using SlotOf = epoll::Slot<P>;
  template <class P>
  using SlabOf = detail::Slab<epoll::Slot<P>>;

  EpollBackend(int epfd, EpollOptions options, std::shared_ptr<EventFdUnparker> unparker);

  template <class P>
  SlabOf<P>& slab() noexcept;
  template <class P>
  OpId allocate(OpKind kind, P** payload);
  // Calls visit(slab) on the slab `id` names and returns what it returns
  // (false for an id no slab has): the one map from SlabId to slab.
  template <class V>
  bool on_slab(epoll::SlabId id, V&& visit);
  template <class F>
  bool with_slot(uint64_t bits, F&& f);
  template <class F>
  void with_id(OpId id, F&& f);
  template <class F>
  void for_each_live_slot(F&& f);
  template <class S>
  void free_slot(S& s, uint64_t bits) noexcept;
  // Runs `drive_it(slot)`, the part of a start that may allocate after the
  // slot is taken (a readiness registration, a blocking-pool job). On
  // std::bad_alloc nothing has happened yet (every such allocation comes
  // before the op's syscall, or after an EAGAIN that had no effect): the
  // buffer goes back to `caller_buf`, the slot is freed, and the exception
  // goes on to the future (Backend: "a start that throws changed nothing").
  template <class P, class F>
  OpId guarded_start(OpId id, std::vector<char>* caller_buf, F&& drive_it);

  // ---- Registrations ----
  // This fd's registration if it is current (its epoch unchanged); a stale
  // one is dropped on the way.
  epoll::ScheduledIo* lookup(int fd);
  void drop_stale(int fd);
  // Registers `fd` (edge-triggered, both directions); null with *err set
  // when epoll refuses it. `waiting` starts not ready (the op that got
  // EAGAIN waits on it); the other direction starts ready ("try first")
  // unless the fd is blocking.
  epoll::ScheduledIo* register_fd(int fd, epoll::Dir waiting, int* err);
  epoll::ScheduledIo* sio_of(epoll::SlotHeader& s);
  void attach(epoll::SlotHeader& s, epoll::ScheduledIo* io);
  // The op no longer uses its registration (an fd nobody owns is removed
  // from the set once no op uses it).
  void detach(epoll::SlotHeader& s);
  void drop_sio(uint32_t index, bool remove_from_set);
  void link(epoll::SlotHeader& s, epoll::ScheduledIo* io, epoll::Dir d);
  void unlink(epoll::SlotHeader& s);
  // Clears `mask` if the tick is still the one in `seen`.
  void clear_if_tick(epoll::ScheduledIo* io, uint32_t mask, uint32_t seen);
  // Wakes every op waiting in `list` (unlinking it).
  void wake_list(epoll::WaitList& list);
  // Applies the releases owners made (on any thread) since the last tick.
  void apply_releases();

  // ---- Ops ----
  // Tries the op (where its readiness allows), then completes it or leaves
  // it waiting; called from its future's poll (start_*, resume).
  template <class P>
  void drive(SlotOf<P>& s, uint64_t bits);
  template <class P>
  int32_t attempt_syscall(SlotOf<P>& s, epoll::ScheduledIo* io);
  template <class P>
  void complete_now(SlotOf<P>& s, int32_t res, epoll::ScheduledIo* io, uint32_t seen);
  // Every completion ends here: the result, the state the future polls for,
  // the count. Waking is the caller's (a completion inside the future's own
  // poll has nobody to wake).
  void complete(epoll::SlotHeader& s, int32_t res);
  // drive()'s cold paths (epoll_backend.cc says when each runs).
  template <class P>
  bool prepare_raw(SlotOf<P>& s, uint64_t bits, epoll::ScheduledIo** io);
  bool without_nowait(SlotOf<epoll::DataPayload>& s, uint64_t bits, epoll::ScheduledIo** io);
  template <class P>
  bool register_on_eagain(SlotOf<P>& s, uint64_t bits, epoll::ScheduledIo** io);
  // A read or write that must run on the blocking pool after all (a
  // regular file).
  void to_job(SlotOf<epoll::DataPayload>& s, uint64_t bits);
  // AsyncFd: the registration slot `bits` names, or null.
  SlotOf<epoll::BarePayload>* ready_registration(uint64_t bits);
  // A readiness wait: completes it if its registration is ready for it,
  // else leaves it waiting.
  void ready_wait_drive(SlotOf<epoll::BarePayload>& s);
  // multishot accept: up to 64 accepts while the listener is ready.
  void accept_burst(SlotOf<epoll::MultiPayload>& s);
  // start_read and start_write: a positional one goes to the blocking pool
  // (a file), a stream one is tried at once (drive).
  OpId start_read_or_write(OpKind kind, int fd, std::vector<char>& buf, size_t begin, size_t end,
                           uint64_t offset);
  // Hands the op to the blocking pool as `job` (which owns its memory).
  template <class P>
  void submit_job(SlotOf<P>& s, uint64_t bits, std::unique_ptr<epoll::FileJob> job);
  // Moves what a finished job owns back into the op's slot.
  template <class P>
  void absorb_job(SlotOf<P>& s, epoll::FileJob& job);
  void drain_completions();
  void fire_timers();
  int64_t next_timer_ns() const noexcept;

  // ---- Kernel entry ----
  // epoll_wait with `timeout_ms` (-1: no limit); handles the events.
  // Returns the events handled (the unparker's included).
  int wait_and_dispatch(int timeout_ms);
  void note_wait_error(int err);
  // Completions, releases and timers; true if anything completed.
  bool housekeeping();

  int epfd_;
  EpollOptions options_;
  EpollSyscalls* sys_;  // never null
  std::unique_ptr<blocking::BlockingPool> own_pool_;
  blocking::BlockingPool* pool_;
  std::shared_ptr<EventFdUnparker> unparker_;
  std::shared_ptr<Link> link_;
  std::shared_ptr<epoll::CompletionQueue> completions_;
  std::vector<epoll_event> events_;
  bool unpark_seen_ = false;

  // Registrations by fd number: the ScheduledIo index (kNoSio: none) and
  // the fd's epoch when it was registered.
  struct FdEntry {
    uint32_t sio = epoll::kNoSio;
    uint32_t epoch = 0;
  };
  std::vector<FdEntry> by_fd_;
  detail::Slab<epoll::ScheduledIo> sios_;

  struct TimerEntry {
    int64_t deadline_ns;
    uint64_t bits;
  };
  std::vector<TimerEntry> timers_;  // a min-heap on deadline_ns (stale entries skipped)

  size_t jobs_in_flight_ = 0;
  int consecutive_wait_errors_ = 0;
  absl::Status fatal_;
  bool shut_down_ = false;

  SlabOf<epoll::BarePayload> bare_;
  SlabOf<epoll::DataPayload> data_;
  SlabOf<epoll::MsgPayload> msg_;
  SlabOf<epoll::AddrPayload> addr_;
  SlabOf<epoll::MultiPayload> multi_;
  SlabOf<epoll::TimeoutPayload> timeout_;
  SlabOf<epoll::PathPayload> path_;
  EpollCounters stats_;
};

}  // namespace pollux::reactor

#endif  // POLLUX_REACTOR_EPOLL_EPOLL_BACKEND_H_
