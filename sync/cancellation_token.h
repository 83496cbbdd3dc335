// CancellationToken: a tree of cancellation signals (tokio-util's).
//
//   sync::CancellationToken stop;
//   sync::CancellationToken conn = stop.child_token();
//   co_await select(conn.cancelled(), serve(stream));   // ends on stop.cancel()
//
// - cancel() cancels this token and, recursively, every child token made
//   from it (before or after: a child of a cancelled token starts cancelled);
//   cancelling a child never cancels its parent. Idempotent.
// - cancelled() is a future that completes once the token is cancelled
//   (at once if it already is); is_cancelled() asks without waiting.
// - Copies share one token (cancelling one cancels all copies).
// - drop_guard() returns a guard that cancels the token when destroyed
//   (unless disarm()ed): a scope that must stop its workers when it exits.
//
// A child unregisters from its parent when its last copy goes, so a
// long-lived parent does not accumulate dead children.
//
// Cancellation: dropping a cancelled() future loses nothing (it is
// cancel-safe; another cancelled() sees the same state).
// Thread-safety: every method from any thread.
#ifndef POLLUX_SYNC_CANCELLATION_TOKEN_H_
#define POLLUX_SYNC_CANCELLATION_TOKEN_H_

#include <memory>
#include <optional>
#include <utility>

#include "future/future.h"
#include "sync/notify.h"

namespace pollux::sync {

namespace detail {
struct TokenNode;
}  // namespace detail

// A cancellation signal in a tree of them; copies share one token (see above).
class CancellationToken {
 public:
  // A new root token.
  CancellationToken();
  CancellationToken(const CancellationToken&) = default;
  CancellationToken& operator=(const CancellationToken&) = default;
  CancellationToken(CancellationToken&&) noexcept = default;
  CancellationToken& operator=(CancellationToken&&) noexcept = default;
  ~CancellationToken();

  // A token cancelled when this one is (see the header).
  CancellationToken child_token() const;
  void cancel() const noexcept;
  bool is_cancelled() const noexcept;

  // The future cancelled() returns: Ready once the token is cancelled.
  class [[nodiscard]] Cancelled {
   public:
    using Output = void;
    Poll<void> poll(Context& cx);

   private:
    friend class CancellationToken;
    explicit Cancelled(std::shared_ptr<detail::TokenNode> node);
    std::shared_ptr<detail::TokenNode> node_;
    Notified notified_;  // created first: a cancel after it is seen
  };
  // Completes once this token is cancelled.
  Cancelled cancelled() const;

  class DropGuard;
  // A guard that cancels this token when destroyed (see the header).
  DropGuard drop_guard() const;

 private:
  // Every copy of a token shares one handle; when the last copy goes, the
  // node leaves its parent (the node itself may live on in its children).
  struct Handle;
  explicit CancellationToken(std::shared_ptr<Handle> h) : handle_(std::move(h)) {}
  std::shared_ptr<Handle> handle_;
};

// Cancels its token when destroyed, unless disarm()ed.
class [[nodiscard]] CancellationToken::DropGuard {
 public:
  explicit DropGuard(CancellationToken token) : token_(std::move(token)) {}
  DropGuard(DropGuard&&) noexcept = default;
  DropGuard& operator=(DropGuard&&) = delete;
  ~DropGuard() {
    if (token_) token_->cancel();
  }
  // Keeps the token uncancelled and hands it back.
  CancellationToken disarm() && { return *std::exchange(token_, std::nullopt); }

 private:
  std::optional<CancellationToken> token_;
};

inline CancellationToken::DropGuard CancellationToken::drop_guard() const {
  return DropGuard(*this);
}

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_CANCELLATION_TOKEN_H_
