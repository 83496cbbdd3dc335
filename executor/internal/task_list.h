// TaskList: an intrusive FIFO of task headers through Header::queue_next.
// No atomics and no allocation: a run queue of one thread, or a list kept
// under a lock. Thread-safety: whoever owns the list (one thread, or the
// holder of the lock that guards it).
#ifndef POLLUX_EXECUTOR_INTERNAL_TASK_LIST_H_
#define POLLUX_EXECUTOR_INTERNAL_TASK_LIST_H_

#include <cstddef>

#include "executor/internal/task.h"

namespace pollux::detail {

class TaskList {
 public:
  TaskList() = default;
  TaskList(TaskList&& o) noexcept : head_(o.head_), tail_(o.tail_), size_(o.size_) {
    o.head_ = o.tail_ = nullptr;
    o.size_ = 0;
  }
  TaskList& operator=(TaskList&&) = delete;

  void push_back(Header* h) noexcept {
    h->queue_next = nullptr;
    if (tail_ == nullptr) {
      head_ = tail_ = h;
    } else {
      tail_->queue_next = h;
      tail_ = h;
    }
    ++size_;
  }
  Header* pop_front() noexcept {
    Header* h = head_;
    if (h == nullptr) return nullptr;
    head_ = h->queue_next;
    if (head_ == nullptr) tail_ = nullptr;
    h->queue_next = nullptr;
    --size_;
    return h;
  }
  // Moves all of `other` to the back of this list.
  void append(TaskList& other) noexcept {
    if (other.head_ == nullptr) return;
    if (tail_ == nullptr) {
      head_ = other.head_;
    } else {
      tail_->queue_next = other.head_;
    }
    tail_ = other.tail_;
    size_ += other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }
  bool empty() const noexcept { return head_ == nullptr; }
  size_t size() const noexcept { return size_; }

 private:
  Header* head_ = nullptr;
  Header* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pollux::detail

#endif  // POLLUX_EXECUTOR_INTERNAL_TASK_LIST_H_
