// FuturesUnordered<F>: a set of futures polled as they become ready.
//
//   sync::FuturesUnordered<Op> set;
//   for (...) set.push(make_op(i));
//   while (std::optional<Result> r = co_await set.next()) use(*r);
//
// Each future gets a waker of its own; waking it queues that one future, so
// next() re-polls only the futures that were woken (not all of them, as a
// join over n futures would on every wake). Outputs come in the order the
// futures finish. next() is Ready(nullopt) once the set is empty.
//
// Wakes may come from any thread (a future whose I/O or channel completes
// elsewhere): the ready queue is behind a small lock, and each future's
// waker holds a reference to its node, so a waker that outlives the set is
// harmless.
//
// Coop: one next() polls at most kPollsPerNext woken futures before it
// yields (wakes itself and returns Pending), so a set that keeps waking its
// own futures cannot starve its task's neighbours.
//
// Cancellation: dropping a next() future loses nothing (a future that
// finished is only taken out when next() returns it). Dropping the set drops
// every future in it (cancelling them), on the dropping thread.
//
// Thread-safety: the set, push() and next() belong to one task at a time;
// only the futures' wakers are thread-safe. The set must not move while a
// next() future is alive (it borrows the set).
#ifndef POLLUX_SYNC_FUTURES_UNORDERED_H_
#define POLLUX_SYNC_FUTURES_UNORDERED_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "future/assert.h"
#include "future/future.h"
#include "future/internal/atomic.h"
#include "future/internal/mutex.h"
#include "sync/atomic_waker.h"

namespace pollux::sync {

// A set of futures, each re-polled only when woken; outputs in finishing order.
template <Future F>
class FuturesUnordered {
 public:
  using Item = output_t<F>;
  static_assert(!std::is_void_v<Item>, "FuturesUnordered needs futures with a value output");
  static constexpr int kPollsPerNext = 32;

  FuturesUnordered() : q_(new Queue) {}
  // Only while no next() future is alive (it points into the set).
  FuturesUnordered(FuturesUnordered&& o) noexcept
      : q_(std::exchange(o.q_, nullptr)), nodes_(std::move(o.nodes_)) {}
  FuturesUnordered(const FuturesUnordered&) = delete;
  FuturesUnordered& operator=(const FuturesUnordered&) = delete;
  FuturesUnordered& operator=(FuturesUnordered&&) = delete;
  ~FuturesUnordered() {
    clear();  // drops each future here
    if (q_ == nullptr) return;
    // Queue entries hold node references and nodes hold the queue: drop the
    // entries now, or the two would keep each other alive.
    std::vector<Node*> queued;
    {
      pollux::detail::MutexLock lock(q_->mu);
      queued.swap(q_->ready);
    }
    for (Node* n : queued) n->unref();
    q_->unref();
  }

  // Adds `f`; it is polled at the next next().
  void push(F f) {
    POLLUX_CHECK(q_ != nullptr, "push into a moved-from FuturesUnordered");
    Node* n = new Node(q_, std::move(f), nodes_.size());
    nodes_.push_back(n);
    n->schedule();  // a new future is ready to be polled
  }
  // Drops every future in the set (cancelling them).
  void clear() noexcept {
    for (Node* n : nodes_) retire(n);
    nodes_.clear();
  }
  size_t size() const noexcept { return nodes_.size(); }
  bool empty() const noexcept { return nodes_.empty(); }
  // Calls fn(F&) for every future still in the set (e.g. to abort them).
  template <class Fn>
  void for_each(Fn&& fn) {
    for (Node* n : nodes_) fn(*n->future);
  }

  // The future next() returns: the next output, or nullopt once the set is
  // empty.
  class [[nodiscard]] Next {
   public:
    using Output = std::optional<Item>;
    Poll<std::optional<Item>> poll(Context& cx) { return set_->poll_next(cx); }

   private:
    friend class FuturesUnordered;
    explicit Next(FuturesUnordered* s) noexcept : set_(s) {}
    FuturesUnordered* set_;
  };
  // The output of the next future to finish, or nullopt when the set is empty.
  Next next() noexcept { return Next(this); }

 private:
  struct Node;

  // Where woken nodes wait to be polled; shared with every node's wakers.
  struct Queue {
    pollux::detail::Atomic<size_t> refs{1};
    pollux::detail::Mutex mu;
    std::vector<Node*> ready ABSL_GUARDED_BY(mu);  // each entry holds a node reference
    AtomicWaker parent;
    void ref() noexcept {
      // relaxed: a reference is made from a reference.
      refs.fetch_add(1, std::memory_order_relaxed);
    }
    void unref() noexcept {
      // acq_rel: the last owner sees everything the others did. (No entry
      // can be left: an entry holds a node, which holds this queue.)
      if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
  };

  struct Node {
    Node(Queue* queue, F f, size_t i) : q(queue), future(std::move(f)), index(i) { q->ref(); }
    pollux::detail::Atomic<uint32_t> refs{1};     // the set's, wakers', queue entries'
    pollux::detail::Atomic<bool> queued{false};   // in q->ready (or about to be)
    Queue* q;
    std::optional<F> future;  // the set's thread only; empty once retired
    size_t index;             // position in nodes_ (the set's thread only)

    void ref() noexcept {
      // relaxed: a reference is made from a reference.
      refs.fetch_add(1, std::memory_order_relaxed);
    }
    void unref() noexcept {
      // acq_rel: the last owner sees the others' writes before the delete.
      if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      Queue* queue = q;
      delete this;
      queue->unref();
    }
    // Queues this node once (until the set takes it out to poll it).
    void schedule() noexcept {
      // acq_rel: the set's release store of false (before polling) pairs
      // with this, so a wake during or after that poll queues it again.
      if (queued.exchange(true, std::memory_order_acq_rel)) return;
      ref();  // the queue entry's
      {
        pollux::detail::MutexLock lock(q->mu);
        q->ready.push_back(this);
      }
      q->parent.wake();
    }

    static Waker clone(void* p) noexcept {
      static_cast<Node*>(p)->ref();
      return Waker::from_raw(p, &kVTable);
    }
    static void wake(void* p) noexcept {
      static_cast<Node*>(p)->schedule();
      static_cast<Node*>(p)->unref();
    }
    static void wake_by_ref(void* p) noexcept { static_cast<Node*>(p)->schedule(); }
    static void drop(void* p) noexcept { static_cast<Node*>(p)->unref(); }
    static constexpr WakerVTable kVTable = {&clone, &wake, &wake_by_ref, &drop};
  };

  // Takes `n` out of the set: its future is dropped here, the set's
  // reference released (wakers and queue entries may keep the node).
  void retire(Node* n) noexcept {
    n->future.reset();
    n->unref();
  }
  void remove(Node* n) noexcept {
    const size_t i = n->index;
    nodes_[i] = nodes_.back();
    nodes_[i]->index = i;
    nodes_.pop_back();
    retire(n);
  }

  Poll<std::optional<Item>> poll_next(Context& cx) {
    if (!cx.budget().try_take()) {
      cx.waker().wake_by_ref();
      return Pending{};
    }
    q_->parent.register_waker(cx.waker());
    int polls = 0;
    for (;;) {
      std::vector<Node*> batch;
      {
        pollux::detail::MutexLock lock(q_->mu);
        batch.swap(q_->ready);
      }
      if (batch.empty()) {
        if (nodes_.empty()) return Ready(std::optional<Item>());
        cx.budget().refund();
        return Pending{};
      }
      for (size_t k = 0; k < batch.size(); ++k) {
        Node* n = batch[k];
        if (!n->future) {  // retired since it was queued
          n->unref();
          continue;
        }
        if (polls == kPollsPerNext) {
          // Yield: put the rest back, poll them at the next next().
          pollux::detail::MutexLock lock(q_->mu);
          q_->ready.insert(q_->ready.end(), batch.begin() + static_cast<ptrdiff_t>(k), batch.end());
          cx.waker().wake_by_ref();
          return Pending{};
        }
        ++polls;
        // release: pairs with schedule()'s exchange: a wake from here on
        // queues the node again.
        n->queued.store(false, std::memory_order_release);
        Waker borrowed = Waker::from_raw(n, &Node::kVTable);
        Poll<Item> p = [&] {
          Context child = cx.with_waker(borrowed);
          return n->future->poll(child);
        }();
        borrowed.release();  // the queue entry's reference is still held
        if (p.is_ready()) {
          // Put back the rest of the batch before returning.
          if (k + 1 < batch.size()) {
            pollux::detail::MutexLock lock(q_->mu);
            q_->ready.insert(q_->ready.end(), batch.begin() + static_cast<ptrdiff_t>(k + 1),
                             batch.end());
          }
          remove(n);
          n->unref();  // the queue entry's
          return Ready(std::optional<Item>(std::move(p).value()));
        }
        n->unref();  // the queue entry's
      }
    }
  }

  Queue* q_;
  std::vector<Node*> nodes_;  // the set's references
};

}  // namespace pollux::sync

#endif  // POLLUX_SYNC_FUTURES_UNORDERED_H_
