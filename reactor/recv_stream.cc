#include "reactor/recv_stream.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "future/assert.h"
#include "reactor/errno_status.h"

namespace pollux::reactor {

void RecvBuf::return_to_backend() noexcept {
  // A provided buffer belongs to its backend's ring, which only its own
  // thread may touch (DESIGN §5).
  POLLUX_CHECK(current_backend() == backend_,
               "a RecvBuf was dropped on a thread other than its backend's (drop a lease on "
               "the worker whose RecvStream produced it)");
  std::exchange(backend_, nullptr)->return_buffer(std::exchange(buf_, -1));
}

void RecvBuf::return_to_stream() noexcept {
  std::shared_ptr<detail::RecvSpare> home = std::move(home_);
  // Only the stream's thread touches its spare (a lease may have moved).
  if (current_backend() == home->backend && home->buf.empty()) home->buf = std::move(owned_);
}

RecvStream::~RecvStream() {
  if (!id_.valid()) return;
  POLLUX_CHECK(current_backend() == backend_,
               "a RecvStream was dropped on a thread other than its backend's");
  // The backend puts the buffers of arrivals nobody took back in its ring.
  backend_->cancel(id_);
}

size_t RecvStream::queued() const noexcept {
  return id_.valid() ? backend_->queued(id_) : 0;
}

bool RecvStream::poll_fallback(Context& cx, std::optional<absl::StatusOr<RecvBuf>>& out) {
  if (!fallback_) {
    // The buffer the last lease gave back, if it did: one allocation per
    // lease still out, none in a steady loop.
    std::vector<char> buf = std::move(spare_->buf);
    spare_->buf = std::vector<char>();
    if (buf.size() != kRecvStreamFallbackBytes) buf = std::vector<char>(kRecvStreamFallbackBytes);
    fallback_.emplace(recv(fd_, std::move(buf)));
  }
  std::optional<IoResult> r;
  if (!fallback_->poll_into(cx, r)) return false;
  fallback_.reset();
  if (!r->n.ok() || *r->n == 0) {
    if (spare_->buf.empty()) spare_->buf = std::move(r->buf);
    if (!r->n.ok()) {
      out.emplace(std::move(r->n).status());
      return true;
    }
    eof_ = true;
    out.emplace(RecvBuf());
    return true;
  }
  out.emplace(RecvBuf(std::move(r->buf), *r->n, spare_));
  return true;
}

bool RecvStream::poll_next(Context& cx, std::optional<absl::StatusOr<RecvBuf>>& out) {
  if (eof_) {
    out.emplace(RecvBuf());
    return true;
  }
  if (backend_ == nullptr) {
    backend_ = current_backend();
    if (backend_ == nullptr) {
      out.emplace(absl::FailedPreconditionError(
          "RecvStream polled on a thread with no I/O backend; run it inside a runtime "
          "built with Runtime::Builder().enable_io()"));
      return true;
    }
    mode_ = backend_->supports_recv_multi() ? Mode::kMultishot : Mode::kFallback;
    if (mode_ == Mode::kFallback) {
      spare_ = std::make_shared<detail::RecvSpare>();
      spare_->backend = backend_;
    }
  }
  POLLUX_CHECK(current_backend() == backend_,
               "a RecvStream was polled on a thread other than its backend's");
  if (mode_ == Mode::kFallback) return poll_fallback(cx, out);
  if (!cx.budget().try_take()) {
    cx.waker().wake_by_ref();
    return false;
  }
  // At most twice: a multishot that ended with nothing left is armed again.
  for (int round = 0; round < 2; ++round) {
    if (!id_.valid()) {
      id_ = backend_->start_recv_multi(fd_);
      if (!id_.valid()) {
        cx.waker().wake_by_ref();  // no room this tick: try again next tick
        return false;
      }
      pin_ = TaskPin::current_keeping_task();  // the multishot lives in this worker's backend
    }
    const MultiNext next = backend_->poll_multi(id_, cx.waker());
    switch (next.kind) {
      case MultiNext::Kind::kItem:
        if (next.res > 0) {
          const char* data = backend_->provided_buffer(next.buf).data();
          out.emplace(RecvBuf(backend_, next.buf, data, static_cast<size_t>(next.res)));
          return true;
        }
        if (next.res == 0) {
          // The end: the multishot is over too; release its slot now. The
          // pin stays until the stream goes: leases still out must be
          // dropped on this worker, so the task must not move.
          eof_ = true;
          backend_->cancel(std::exchange(id_, OpId{}));
          out.emplace(RecvBuf());
          return true;
        }
        out.emplace(errno_status(-next.res, absl::StrCat("recv from fd ", fd_)));
        return true;
      case MultiNext::Kind::kPending:
        cx.budget().refund();
        return false;
      case MultiNext::Kind::kEnded:
        // The kernel ended the multishot and everything it sent was handed out.
        backend_->cancel(std::exchange(id_, OpId{}));
        pin_.reset();
        break;
    }
  }
  cx.waker().wake_by_ref();
  return false;
}

}  // namespace pollux::reactor
