#include "sync/cancellation_token.h"

#include <vector>

#include "absl/base/thread_annotations.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"

namespace pollux::sync {

using pollux::detail::MutexLock;

namespace detail {

// One token of the tree. Children are held by shared_ptr (a parent cancels
// them), the parent by a plain pointer guarded by the parent's lifetime: a
// node unregisters from its parent before the parent can go (the child's
// Handle keeps a reference to the parent node).
struct TokenNode {
  pollux::detail::Atomic<bool> cancelled{false};
  Notify notify;
  pollux::detail::Mutex mu;
  std::vector<std::shared_ptr<TokenNode>> children ABSL_GUARDED_BY(mu);
  std::shared_ptr<TokenNode> parent;  // set once, at creation

  void cancel() noexcept {
    // acq_rel: the first cancel wins; the flag is seen by is_cancelled's acquire.
    if (cancelled.exchange(true, std::memory_order_acq_rel)) return;
    notify.notify_waiters();
    std::vector<std::shared_ptr<TokenNode>> to_cancel;
    {
      MutexLock lock(mu);
      to_cancel.swap(children);
    }
    // Outside the lock: a child's cancel takes its own lock.
    for (const std::shared_ptr<TokenNode>& c : to_cancel) c->cancel();
  }

  // Registers `child`; a cancelled parent cancels it at once instead.
  void adopt(const std::shared_ptr<TokenNode>& child) {
    {
      MutexLock lock(mu);
      // acquire: pairs with cancel()'s exchange; under mu, a cancel that
      // already swapped the children out has set the flag first.
      if (!cancelled.load(std::memory_order_acquire)) {
        children.push_back(child);
        return;
      }
    }
    child->cancel();
  }

  void forget(const TokenNode* child) {
    MutexLock lock(mu);
    for (size_t i = 0; i < children.size(); ++i) {
      if (children[i].get() == child) {
        children[i] = std::move(children.back());
        children.pop_back();
        return;
      }
    }
  }
};

}  // namespace detail

struct CancellationToken::Handle {
  std::shared_ptr<detail::TokenNode> node = std::make_shared<detail::TokenNode>();
  ~Handle() {
    if (node->parent) node->parent->forget(node.get());
  }
};

CancellationToken::CancellationToken() : handle_(std::make_shared<Handle>()) {}
CancellationToken::~CancellationToken() = default;

CancellationToken CancellationToken::child_token() const {
  auto h = std::make_shared<Handle>();
  h->node->parent = handle_->node;
  handle_->node->adopt(h->node);
  return CancellationToken(std::move(h));
}

void CancellationToken::cancel() const noexcept { handle_->node->cancel(); }

bool CancellationToken::is_cancelled() const noexcept {
  // acquire: pairs with cancel()'s exchange.
  return handle_->node->cancelled.load(std::memory_order_acquire);
}

CancellationToken::Cancelled CancellationToken::cancelled() const {
  return Cancelled(handle_->node);
}

CancellationToken::Cancelled::Cancelled(std::shared_ptr<detail::TokenNode> node)
    : node_(std::move(node)), notified_(node_->notify.notified()) {}

Poll<void> CancellationToken::Cancelled::poll(Context& cx) {
  // The flag first: a cancel before this future was made already happened.
  // acquire: pairs with cancel()'s exchange.
  if (node_->cancelled.load(std::memory_order_acquire)) return Ready{};
  // notified_ was created before this check, so a cancel (flag, then
  // notify_waiters) after it completes it. It keeps the budget protocol.
  return notified_.poll(cx);
}

}  // namespace pollux::sync
