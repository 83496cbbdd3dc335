// FakeSockets: an in-memory "kernel" of connected sockets whose peers echo
// back every byte they are sent, and FakeBackend, a pollux Backend over it.
// Together they isolate the runtime's own cost per message (DESIGN §7,
// issue 17): an echo through FakeBackend against the same loop written by
// hand over the same FakeSockets (bench/fake_echo_bench.cc) differ only in
// what pollux adds: op futures, slots, wakers, tasks, ticks.
//
// The model follows io_uring's: an operation is submitted, completes at the
// next "kernel entry" (park / poll_now), and its waker is woken then. A recv
// with no data stays pending until a send on its socket gives the peer
// something to echo. Sockets are the fds 0 .. n-1; nothing is a real fd.
//
// FakeBackend supports nop, recv and send (what an echo needs); every other
// kind is a check failure naming it.
//
// Thread-safety: none; one thread, as every Backend.
#ifndef POLLUX_BENCH_FAKE_SOCKETS_H_
#define POLLUX_BENCH_FAKE_SOCKETS_H_

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "reactor/backend.h"

namespace pollux::bench {

// Connected sockets whose peers echo: what is sent on fd k comes back to be
// received on fd k.
class FakeSockets {
 public:
  static constexpr size_t kPeerBuffer = 64 * 1024;

  explicit FakeSockets(int n) : inbound_(static_cast<size_t>(n)) {}

  // The peer of `fd` sends `len` bytes of its own (a client's first message).
  void peer_sends(int fd, size_t len) {
    Inbound& in = inbound_[static_cast<size_t>(fd)];
    in.len += len;  // the bytes' value does not matter; the copies do
  }
  // recv(2): -EAGAIN with nothing to read, else the bytes copied.
  int32_t recv(int fd, char* dst, size_t len) {
    Inbound& in = inbound_[static_cast<size_t>(fd)];
    if (in.len == 0) return -EAGAIN;
    const size_t n = len < in.len ? len : in.len;
    std::memcpy(dst, in.data.get(), n);
    in.len -= n;
    if (in.len > 0) std::memmove(in.data.get(), in.data.get() + n, in.len);
    return static_cast<int32_t>(n);
  }
  // send(2): the peer echoes the bytes at once (so they can be received on
  // `fd`); all of them are taken.
  int32_t send(int fd, const char* src, size_t len) {
    Inbound& in = inbound_[static_cast<size_t>(fd)];
    if (in.len + len > kPeerBuffer) return -EAGAIN;
    std::memcpy(in.data.get() + in.len, src, len);
    in.len += len;
    return static_cast<int32_t>(len);
  }

 private:
  struct Inbound {
    // Not zeroed: the bytes' value does not matter, and zeroing 64 KiB per
    // socket would be counted in each run's cost per message.
    std::unique_ptr<char[]> data{new char[kPeerBuffer]};
    size_t len = 0;
  };
  std::vector<Inbound> inbound_;
};

// The "ring" of a loop written by hand over FakeSockets: at most one op in
// flight per connection, named by its fd, made at the next enter(). The
// hand-written echo and HTTP loops share it, so both baselines pay the same
// for their submission list.
class FakeSubmissions {
 public:
  struct Completion {
    int fd;
    int32_t res;
  };

  explicit FakeSubmissions(size_t connections) {
    submitted_.reserve(connections);
    still_pending_.reserve(connections);
    completed_.reserve(connections);
  }
  void submit(int fd) { submitted_.push_back(fd); }
  // The kernel entry: `attempt(fd)` makes each submitted op (a recv or send
  // on FakeSockets); those it does not answer with -EAGAIN complete, and
  // stay valid until the next enter() (submit() meanwhile is fine).
  template <class Attempt>
  const std::vector<Completion>& enter(Attempt&& attempt) {
    still_pending_.clear();
    completed_.clear();
    for (int fd : submitted_) {
      const int32_t res = attempt(fd);
      if (res == -EAGAIN) {
        still_pending_.push_back(fd);
      } else {
        completed_.push_back({fd, res});
      }
    }
    submitted_.swap(still_pending_);
    return completed_;
  }

 private:
  std::vector<int> submitted_;
  std::vector<int> still_pending_;
  std::vector<Completion> completed_;
};

// A Backend over FakeSockets (see the header comment).
class FakeBackend final : public reactor::Backend {
 public:
  explicit FakeBackend(FakeSockets& sockets) : sockets_(sockets) {}
  ~FakeBackend() override;

  // ---- Park ----
  bool park(std::optional<absl::Duration> timeout) override;
  void poll_now() override { (void)enter(); }
  std::shared_ptr<Unparker> unparker() override { return unparker_; }

  // ---- Backend: what an echo uses ----
  reactor::OpId start_nop() override;
  reactor::OpId start_recv(int fd, std::vector<char>& buf, size_t begin, size_t end,
                           int flags) override;
  reactor::OpId start_send(int fd, std::vector<char>& buf, size_t begin, size_t end,
                           int flags) override;
  int32_t take_result(reactor::OpId id) override;
  int32_t take_data(reactor::OpId id, std::vector<char>& buf) override;
  void cancel(reactor::OpId id) noexcept override;
  size_t live_ops() const noexcept override { return live_; }
  reactor::BackendStats stats() const noexcept override { return stats_; }
  const char* name() const noexcept override { return "fake"; }

  // ---- The rest: not in the fake ----
  reactor::OpId start_read(int, std::vector<char>&, size_t, size_t, uint64_t) override;
  reactor::OpId start_write(int, std::vector<char>&, size_t, size_t, uint64_t) override;
  reactor::OpId start_sendmsg(int, std::vector<char>&, size_t, const sockaddr_storage&,
                              socklen_t, int) override;
  reactor::OpId start_recvmsg(int, std::vector<char>&, int) override;
  reactor::OpId start_accept(int) override;
  reactor::OpId start_accept_multi(int) override;
  reactor::OpId start_connect(int, const sockaddr_storage&, socklen_t) override;
  reactor::OpId start_close(int) override;
  reactor::OpId start_poll(int, uint32_t) override;
  reactor::OpId start_timeout(absl::Duration) override;
  reactor::OpId start_openat(int, std::string&, int, mode_t) override;
  reactor::OpId start_fsync(int, bool) override;
  reactor::OpId start_statx(int, std::string&, int, unsigned) override;
  reactor::OpId start_ready_register(int) override;
  reactor::OpId start_ready_wait(reactor::OpId, uint32_t) override;
  void clear_ready(reactor::OpId, uint32_t, uint32_t) override;
  void resume(reactor::OpId) override;
  reactor::MultiNext poll_multi(reactor::OpId, const Waker&) override;
  size_t queued(reactor::OpId) const override;
  reactor::MsgCompletion take_msg(reactor::OpId) override;
  reactor::AcceptCompletion take_accept(reactor::OpId) override;
  reactor::PathCompletion take_path(reactor::OpId) override;

 private:
  enum class Kind : uint8_t { kNop, kRecv, kSend };
  struct Slot {
    reactor::OpCore core;
    Kind kind = Kind::kNop;
    int fd = -1;
    std::vector<char> buf;
    size_t begin = 0;
    size_t end = 0;
    int32_t res = 0;
    uint32_t index = 0;
  };
  class FlagUnparker final : public Unparker {
   public:
    void unpark() noexcept override { pending = true; }
    bool pending = false;
  };

  Slot& allocate(Kind kind);
  // A recv or send of buf[begin, min(end, size)): what the two starts share.
  reactor::OpId start_data(Kind kind, int fd, std::vector<char>& buf, size_t begin, size_t end);
  void free_slot(Slot& s);
  // The slot an id names: its bits are the slot's index.
  Slot& slot_of(reactor::OpId id);
  // Runs every submitted op that can complete; true if any did.
  bool enter();

  FakeSockets& sockets_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> submitted_;  // in flight (or ignored), in submission order
  std::vector<uint32_t> still_pending_;
  size_t live_ = 0;
  reactor::BackendStats stats_;
  std::shared_ptr<FlagUnparker> unparker_ = std::make_shared<FlagUnparker>();
};

}  // namespace pollux::bench

#endif  // POLLUX_BENCH_FAKE_SOCKETS_H_
