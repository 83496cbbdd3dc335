// LocalOwnedTasks: every not-yet-complete task of one single-thread
// scheduler, in an intrusive list through the task trailers, so shutdown can
// find and drop every future. Unlocked and with no atomics: bind, remove and
// the shutdown walk all happen on the owner thread (DESIGN §4: no locked
// instruction per spawn). The multi-thread flavour gets its own sharded,
// locked kind; the harness never sees which one it is (Schedule::release).
//
// The list holds one reference per task (TaskState's "owned-tasks list"
// reference), dropped by whoever removes the task.
// Thread-safety: owner thread only.
#ifndef POLLUX_EXECUTOR_INTERNAL_OWNED_TASKS_H_
#define POLLUX_EXECUTOR_INTERNAL_OWNED_TASKS_H_

#include <cstddef>

#include "executor/internal/task.h"

namespace pollux::detail {

class LocalOwnedTasks {
 public:
  LocalOwnedTasks() = default;
  LocalOwnedTasks(const LocalOwnedTasks&) = delete;
  LocalOwnedTasks& operator=(const LocalOwnedTasks&) = delete;

  // Adds a task that is in no list.
  void bind(Header* h) noexcept {
    Trailer* t = trailer_of(h);
    t->owned_prev = nullptr;
    t->owned_next = head_;
    if (head_ != nullptr) trailer_of(head_)->owned_prev = h;
    head_ = h;
    ++size_;
  }
  // Removes `h`; false when it was not in this list.
  bool remove(Header* h) noexcept {
    Trailer* t = trailer_of(h);
    if (t->owned_prev != nullptr) {
      trailer_of(t->owned_prev)->owned_next = t->owned_next;
    } else if (head_ == h) {
      head_ = t->owned_next;
    } else {
      return false;  // never bound (a spawn onto a closed scheduler), or removed already
    }
    if (t->owned_next != nullptr) trailer_of(t->owned_next)->owned_prev = t->owned_prev;
    t->owned_prev = t->owned_next = nullptr;
    --size_;
    return true;
  }
  // Any task in the list, or null when empty (the shutdown walk).
  Header* front() const noexcept { return head_; }
  size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return head_ == nullptr; }

 private:
  Header* head_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_OWNED_TASKS_H_
