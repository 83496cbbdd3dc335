#include "bench/fake_sockets.h"

#include <utility>

#include "future/assert.h"

namespace pollux::bench {

using reactor::OpId;
using reactor::OpState;

FakeBackend::~FakeBackend() {
  POLLUX_CHECK(live_ == submitted_.size(), "FakeBackend destroyed with results nobody took");
}

FakeBackend::Slot& FakeBackend::allocate(Kind kind) {
  uint32_t index;
  if (free_.empty()) {
    index = static_cast<uint32_t>(slots_.size());
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->index = index;
  } else {
    index = free_.back();
    free_.pop_back();
  }
  Slot& s = *slots_[index];
  s.core.state = OpState::kInFlight;
  s.kind = kind;
  ++live_;
  submitted_.push_back(index);
  return s;
}

void FakeBackend::free_slot(Slot& s) {
  ++s.core.generation;
  s.core.waker.reset();
  --live_;
  free_.push_back(s.index);
}

FakeBackend::Slot& FakeBackend::slot_of(OpId id) { return *slots_[id.bits]; }

OpId FakeBackend::start_nop() {
  Slot& s = allocate(Kind::kNop);
  return OpId{&s.core, s.index};
}

OpId FakeBackend::start_data(Kind kind, int fd, std::vector<char>& buf, size_t begin, size_t end) {
  Slot& s = allocate(kind);
  s.fd = fd;
  s.buf = std::move(buf);
  s.begin = begin;
  s.end = end < s.buf.size() ? end : s.buf.size();
  return OpId{&s.core, s.index};
}

OpId FakeBackend::start_recv(int fd, std::vector<char>& buf, size_t begin, size_t end, int) {
  return start_data(Kind::kRecv, fd, buf, begin, end);
}

OpId FakeBackend::start_send(int fd, std::vector<char>& buf, size_t begin, size_t end, int) {
  return start_data(Kind::kSend, fd, buf, begin, end);
}

bool FakeBackend::enter() {
  ++stats_.kernel_entries;
  bool any = false;
  still_pending_.clear();
  for (uint32_t index : submitted_) {
    Slot& s = *slots_[index];
    if (s.core.state == OpState::kIgnored) {
      free_slot(s);
      continue;
    }
    switch (s.kind) {
      case Kind::kNop:
        s.res = 0;
        break;
      case Kind::kRecv:
        s.res = sockets_.recv(s.fd, s.buf.data() + s.begin, s.end - s.begin);
        break;
      case Kind::kSend:
        s.res = sockets_.send(s.fd, s.buf.data() + s.begin, s.end - s.begin);
        break;
    }
    if (s.res == -EAGAIN) {
      still_pending_.push_back(index);
      continue;
    }
    s.core.state = OpState::kCompleted;
    ++stats_.completions;
    any = true;
    std::move(s.core.waker).wake();
  }
  submitted_.swap(still_pending_);
  return any;
}

bool FakeBackend::park(std::optional<absl::Duration>) {
  const bool unparked = std::exchange(unparker_->pending, false);
  const bool completed = enter();
  POLLUX_CHECK(completed || unparked || !submitted_.empty() || live_ > 0,
               "FakeBackend parked with nothing that could ever complete");
  return completed || unparked;
}

int32_t FakeBackend::take_result(OpId id) {
  Slot& s = slot_of(id);
  const int32_t res = s.res;
  free_slot(s);
  return res;
}

int32_t FakeBackend::take_data(OpId id, std::vector<char>& buf) {
  Slot& s = slot_of(id);
  const int32_t res = s.res;
  buf = std::move(s.buf);
  free_slot(s);
  return res;
}

void FakeBackend::cancel(OpId id) noexcept {
  Slot& s = slot_of(id);
  if (s.core.state == OpState::kCompleted) {
    free_slot(s);  // not in submitted_ any more
  } else {
    s.core.state = OpState::kIgnored;  // freed by the next enter()
  }
}

namespace {
[[noreturn]] void not_in_the_fake(const char* what) {
  POLLUX_CHECK(false, what);
  __builtin_unreachable();
}
}  // namespace

OpId FakeBackend::start_read(int, std::vector<char>&, size_t, size_t, uint64_t) {
  not_in_the_fake("FakeBackend: read is not in the fake");
}
OpId FakeBackend::start_write(int, std::vector<char>&, size_t, size_t, uint64_t) {
  not_in_the_fake("FakeBackend: write is not in the fake");
}
OpId FakeBackend::start_sendmsg(int, std::vector<char>&, size_t, const sockaddr_storage&,
                                socklen_t, int) {
  not_in_the_fake("FakeBackend: sendmsg is not in the fake");
}
OpId FakeBackend::start_recvmsg(int, std::vector<char>&, int) {
  not_in_the_fake("FakeBackend: recvmsg is not in the fake");
}
OpId FakeBackend::start_accept(int) { not_in_the_fake("FakeBackend: accept is not in the fake"); }
OpId FakeBackend::start_accept_multi(int) {
  not_in_the_fake("FakeBackend: accept is not in the fake");
}
OpId FakeBackend::start_connect(int, const sockaddr_storage&, socklen_t) {
  not_in_the_fake("FakeBackend: connect is not in the fake");
}
OpId FakeBackend::start_close(int) { not_in_the_fake("FakeBackend: close is not in the fake"); }
OpId FakeBackend::start_poll(int, uint32_t) {
  not_in_the_fake("FakeBackend: poll is not in the fake");
}
OpId FakeBackend::start_timeout(absl::Duration) {
  not_in_the_fake("FakeBackend: timeout is not in the fake");
}
OpId FakeBackend::start_openat(int, std::string&, int, mode_t) {
  not_in_the_fake("FakeBackend: openat is not in the fake");
}
OpId FakeBackend::start_fsync(int, bool) {
  not_in_the_fake("FakeBackend: fsync is not in the fake");
}
OpId FakeBackend::start_statx(int, std::string&, int, unsigned) {
  not_in_the_fake("FakeBackend: statx is not in the fake");
}
OpId FakeBackend::start_ready_register(int) {
  not_in_the_fake("FakeBackend: readiness is not in the fake");
}
OpId FakeBackend::start_ready_wait(OpId, uint32_t) {
  not_in_the_fake("FakeBackend: readiness is not in the fake");
}
void FakeBackend::clear_ready(OpId, uint32_t, uint32_t) {
  not_in_the_fake("FakeBackend: readiness is not in the fake");
}
void FakeBackend::resume(OpId) { not_in_the_fake("FakeBackend: readiness is not in the fake"); }
reactor::MultiNext FakeBackend::poll_multi(OpId, const Waker&) {
  not_in_the_fake("FakeBackend: multishot is not in the fake");
}
size_t FakeBackend::queued(OpId) const {
  not_in_the_fake("FakeBackend: multishot is not in the fake");
}
reactor::MsgCompletion FakeBackend::take_msg(OpId) {
  not_in_the_fake("FakeBackend: msg ops are not in the fake");
}
reactor::AcceptCompletion FakeBackend::take_accept(OpId) {
  not_in_the_fake("FakeBackend: accept is not in the fake");
}
reactor::PathCompletion FakeBackend::take_path(OpId) {
  not_in_the_fake("FakeBackend: path ops are not in the fake");
}

}  // namespace pollux::bench
