// The waiter discipline every sync primitive follows (DESIGN §8), as code:
// an intrusive list of waiter nodes that live inside the waiting futures,
// and WakeList, the stack batch of wakers a notifier wakes after unlocking.
//
// The rules these types support (each primitive keeps them):
// - One lock per primitive guards its list, each node's links, each node's
//   state {Idle, Waiting, Notified} and each node's waker.
// - A notifier, under the lock, unlinks a node, marks it Notified with what
//   it was given (permits, a value), and moves its waker into a WakeList; it
//   wakes after unlocking and never touches the node again (the future may
//   be gone by then).
// - A future that ever queued takes the lock in its destructor: Waiting ->
//   unlink; Notified but not consumed -> pass on what it was given, so a
//   dropped waiter never swallows a wake-up.
// - Never under the lock: a wake, a waker drop (replace a node's waker by
//   swapping the old one out and dropping it after unlocking), a user
//   callback, an allocation, another primitive's lock.
// - A linked node cannot move: its future's move constructor CHECKs that it
//   was never queued.
//
// The list is circular with a sentinel, so a node unlinks itself from
// whichever list it is in (notify_waiters moves nodes to a list on its own
// stack) knowing only its neighbours. O(1) push, pop and removal.
//
// Under --config=model a node's links and state are RaceCells (LockGuarded
// below), so the model checker reports any access to them that the
// primitive's lock does not order: a notifier touching a node its future's
// destructor no longer protects, a destructor reading `state` unlocked. The
// waker is not one (its clones are checked by the models' wakers instead).
// Everywhere else they are the plain fields.
//
// Thread-safety: every operation under the owning primitive's lock.
#ifndef POLLUX_SYNC_INTERNAL_WAITERS_H_
#define POLLUX_SYNC_INTERNAL_WAITERS_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "future/assert.h"
#include "future/waker.h"

#if defined(POLLUX_MODEL)
#include <type_traits>

#include "future/internal/race_cell.h"
#endif

namespace pollux::sync::detail {

enum class WaitState : uint8_t { kIdle, kWaiting, kNotified };

#if defined(POLLUX_MODEL)
// A field the primitive's lock guards, as a RaceCell the model checker
// watches: reading it is a read access, assigning it a write access. It
// converts to and from T, so the code that uses the fields is the same in
// both builds.
template <class T>
class LockGuarded {
 public:
  LockGuarded(T v) noexcept : cell_(v) {}  // NOLINT: as the plain field
  LockGuarded(const LockGuarded&) = delete;
  LockGuarded& operator=(const LockGuarded& o) noexcept { return *this = static_cast<T>(o); }
  LockGuarded& operator=(T v) noexcept {
    cell_.get_mut() = v;
    return *this;
  }
  operator T() const noexcept { return cell_.get(); }  // NOLINT: as the plain field
  T operator->() const noexcept
    requires std::is_pointer_v<T>
  {
    return cell_.get();
  }

 private:
  pollux::detail::RaceCell<T> cell_;
};
#else
template <class T>
using LockGuarded = T;
#endif

// The links and state of one waiting future. Embedded (as a base or member)
// in the future; the primitive's lock guards all of it.
struct WaiterNode {
  LockGuarded<WaiterNode*> prev{nullptr};
  LockGuarded<WaiterNode*> next{nullptr};
  LockGuarded<WaitState> state{WaitState::kIdle};
  Waker waker;

  WaiterNode() = default;
  WaiterNode(const WaiterNode&) = delete;
  WaiterNode& operator=(const WaiterNode&) = delete;

  bool linked() const noexcept { return prev != nullptr; }
  // Takes this node out of whatever list holds it.
  void unlink() noexcept {
    POLLUX_DCHECK(linked(), "unlinking a waiter that is in no list");
    prev->next = next;
    next->prev = prev;
    prev = next = nullptr;
  }
};

// FIFO of waiters; `Node` derives from WaiterNode.
template <class Node>
class WaiterList {
 public:
  WaiterList() noexcept { head_.prev = head_.next = &head_; }
  WaiterList(const WaiterList&) = delete;
  WaiterList& operator=(const WaiterList&) = delete;
  ~WaiterList() { POLLUX_DCHECK(empty(), "a waiter list destroyed with waiters in it"); }

  bool empty() const noexcept { return head_.next == &head_; }
  void push_back(Node* n) noexcept {
    POLLUX_DCHECK(!n->linked(), "a waiter queued twice");
    n->prev = head_.prev;
    n->next = &head_;
    head_.prev->next = n;
    head_.prev = n;
  }
  Node* front() const noexcept {
    return empty() ? nullptr : static_cast<Node*>(static_cast<WaiterNode*>(head_.next));
  }
  Node* pop_front() noexcept {
    if (empty()) return nullptr;
    // SAFETY: every node but the sentinel was pushed as a Node.
    Node* n = static_cast<Node*>(static_cast<WaiterNode*>(head_.next));
    n->unlink();
    return n;
  }
  // Moves every waiter of this list to the back of `to`.
  void move_all_to(WaiterList& to) noexcept {
    while (Node* n = pop_front()) to.push_back(n);
  }

 private:
  WaiterNode head_;  // sentinel; never a Node
};

// Wakers collected under a lock and woken after it: at most kCapacity, so a
// notifier with more to wake does it in batches, relocking in between.
class WakeList {
 public:
  static constexpr size_t kCapacity = 32;

  WakeList() = default;
  WakeList(const WakeList&) = delete;
  WakeList& operator=(const WakeList&) = delete;
  ~WakeList() { wake_all(); }

  bool full() const noexcept { return n_ == kCapacity; }
  bool empty() const noexcept { return n_ == 0; }
  // Takes `w` to wake later (an empty waker is dropped at once: nothing).
  void push(Waker&& w) noexcept {
    POLLUX_DCHECK(!full(), "WakeList overflow: wake the batch first");
    if (w) wakers_[n_++] = std::move(w);
  }
  // Call with no lock held.
  void wake_all() noexcept {
    for (size_t i = 0; i < n_; ++i) std::move(wakers_[i]).wake();
    n_ = 0;
  }

 private:
  Waker wakers_[kCapacity];
  size_t n_ = 0;
};

// A waker dropped after the lock is released (a waker's drop may free a task
// whose future takes this same lock).
class DeferredWakerDrop {
 public:
  DeferredWakerDrop() = default;
  DeferredWakerDrop(const DeferredWakerDrop&) = delete;
  DeferredWakerDrop& operator=(const DeferredWakerDrop&) = delete;
  // Replaces `slot` with a clone of `w` unless it already wakes the same
  // task; the old waker is kept here and dropped with this object.
  void replace(Waker& slot, const Waker& w) noexcept {
    if (slot.will_wake(w)) return;
    old_ = std::exchange(slot, w);
  }
  // Takes `slot`'s waker to drop later.
  void take(Waker& slot) noexcept { old_ = std::move(slot); }

 private:
  Waker old_;
};

}  // namespace pollux::sync::detail

#endif  // POLLUX_SYNC_INTERNAL_WAITERS_H_
